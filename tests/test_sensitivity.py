"""Layer sensitivity (yolo_prune.recovery.sensitivity): groups, a row per (group, ratio), files, layer_ratios."""

import csv
from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.utils.torch_utils import get_flops

from conftest import FAMILIES, tiny_detector
from yolo_prune import PruneError, prune_yolo
from yolo_prune.pruning.core import PruneOptions, prune_detection_model
from yolo_prune.recovery.sensitivity import (
    SensitivityResult,
    SensitivityRow,
    layer_groups,
    sensitivity,
    sensitivity_cli,
    suggest_layer_ratios,
)

VAL = {"batch": 8, "workers": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory):
    path = tmp_path_factory.mktemp("sensitivity") / "base.pt"
    model = YOLO("yolov8n.yaml")
    model.model = tiny_detector()
    model.save(path)
    return path


@pytest.mark.parametrize("cfg", FAMILIES)
def test_groups_cover_every_weighted_layer_once_and_end_with_detect(cfg):
    model = tiny_detector(cfg)
    groups = layer_groups(model)
    layers = [i for g in groups for i in g.layers]
    weighted = [i for i, m in enumerate(model.model) if any(True for _ in m.parameters())]
    assert layers == weighted
    assert groups[-1].layers == (len(model.model) - 1,) and groups[-1].name.endswith("Detect")


def test_yolov8n_groups_are_stages_and_blocks():
    names = [g.name for g in layer_groups(tiny_detector("yolov8n.yaml"))]
    assert names == ["0-2 C2f", "3-4 C2f", "5-6 C2f", "7-8 C2f", "9 SPPF", "12 C2f", "15 C2f", "16-18 C2f",
                     "19-21 C2f", "22 Detect"]  # fmt: skip


def rows(drops: dict[str, dict[float, float]]) -> list[SensitivityRow]:
    layers = {"a": (0, 1, 2), "b": (22,)}
    return [SensitivityRow(g, layers[g], r, 0.5 - d, d, 1.0, 1) for g, by in drops.items() for r, d in by.items()]


def test_suggest_takes_the_largest_ratio_whose_smaller_ratios_all_pass():
    result = SensitivityResult(0.5, 1.0, rows({"a": {0.2: 0.0, 0.4: 0.02, 0.6: 0.001}, "b": {0.2: 0.003, 0.4: 0.005}}),
                               Path("."))  # fmt: skip
    assert suggest_layer_ratios(result, 0.01) == {0: 0.2, 1: 0.2, 2: 0.2, 22: 0.4}  # a: 0.4 fails, so 0.6 is out
    assert suggest_layer_ratios(result, 0.0) == {0: 0.2, 1: 0.2, 2: 0.2, 22: 0.0}  # 0.0 = untouched
    with pytest.raises(PruneError, match="target_drop"):
        suggest_layer_ratios(result, -0.1)


def test_leave_tolerant_lists_only_the_groups_a_compute_target_must_spare():
    result = SensitivityResult(0.5, 1.0, rows({"a": {0.2: 0.0, 0.4: 0.02}, "b": {0.2: 0.003, 0.4: 0.005}}), Path("."))
    assert suggest_layer_ratios(result, 0.01, leave_tolerant=True) == {0: 0.2, 1: 0.2, 2: 0.2}  # b passed 0.4: left out
    assert suggest_layer_ratios(result, 0.001, leave_tolerant=True) == {0: 0.2, 1: 0.2, 2: 0.2, 22: 0.0}
    model = tiny_detector("yolov8n.yaml")
    spared = {0: 0.0, 1: 0.0, 2: 0.0}
    pruned = prune_detection_model(model, PruneOptions(gflops_fraction=1 / 1.5, layer_ratios=spared, imgsz=64))
    assert get_flops(pruned, 64) / get_flops(model, 64) == pytest.approx(1 / 1.5, rel=0.03)
    for i in spared:  # the listed layers keep their widths; the compute target took the saving elsewhere
        assert [p.shape for p in pruned.model[i].parameters()] == [p.shape for p in model.model[i].parameters()]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ratios": (0.2, 1.0)}, "ratios"),
        ({"ratios": ()}, "ratios"),
        ({"fraction": 0.0}, "fraction"),
        ({"layers": [99]}, "layer index"),
        ({"epochs": 3}, "epochs"),
    ],
)
def test_bad_options_raise_prune_error(base_pt, dataset_yaml, kwargs, match):
    with pytest.raises(PruneError, match=match):
        sensitivity(base_pt, dataset_yaml, **kwargs)


def test_rows_per_group_and_ratio_files_and_usable_suggestion(base_pt, dataset_yaml, tmp_path):
    result = sensitivity_cli({"model": str(base_pt), "data": str(dataset_yaml), "ratios": "0.3,0.6",
                              "layers": [[0, 1, 2], 22], "imgsz": 64, "fraction": 0.5, "project": str(tmp_path),
                              "name": "sens", "target_drop": 0.0, "leave_tolerant": True, **VAL})  # fmt: skip
    assert [(r.group, r.ratio) for r in result.rows] == [
        ("0-2 C2f", 0.3), ("0-2 C2f", 0.6), ("22 Detect", 0.3), ("22 Detect", 0.6)]  # fmt: skip
    assert all(r.gflops < result.base_gflops for r in result.rows)
    with result.files["csv"].open() as f:
        table = list(csv.DictReader(f))
    assert [(r["group"], float(r["ratio"])) for r in table] == [(r.group, r.ratio) for r in result.rows]
    assert result.files["png"].stat().st_size > 0

    suggested = suggest_layer_ratios(result, target_drop=0.0)  # random weights: mAP 0, so every ratio passes
    assert suggested == {0: 0.6, 1: 0.6, 2: 0.6, 22: 0.6}
    pruned = prune_yolo(base_pt, layer_ratios=suggested, imgsz=64, verbose=False)
    assert sum(p.numel() for p in pruned.model.parameters()) < sum(p.numel() for p in YOLO(base_pt).model.parameters())
