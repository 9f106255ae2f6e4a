"""Iterative prune -> fine-tune (yolo_prune.recovery.iterative): schedule, stop rule, kept checkpoint, report files."""

import csv

import pytest
import torch
from ultralytics import YOLO

from conftest import tiny_detector
from yolo_prune import PruneError
from yolo_prune.recovery.iterative import Schedule, iterative_cli, iterative_prune

TINY_TRAIN = {"batch": 8, "workers": 0, "device": "cpu", "plots": False, "amp": False, "warmup_epochs": 0}


@pytest.fixture(scope="module")
def base_pt(tmp_path_factory):
    """An unpruned 3-class yolov8n checkpoint (random init stands in for a trained model)."""
    path = tmp_path_factory.mktemp("iterative") / "base.pt"
    model = YOLO("yolov8n.yaml")
    model.model = tiny_detector()
    model.save(path)
    return path


def test_short_finetune_recipe_applies_unless_the_caller_sets_any_of_it():
    from yolo_prune.recovery.finetune import SHORT_FINETUNE, with_short_finetune_recipe

    assert with_short_finetune_recipe({"batch": 4}) == {**SHORT_FINETUNE, "batch": 4}
    assert with_short_finetune_recipe({"lr0": 0.01}) == {"lr0": 0.01}  # theirs alone: no AdamW forced on them
    assert SHORT_FINETUNE["warmup_epochs"] == 0


def test_speed_up_schedule_is_geometric_and_absolute():
    schedule = Schedule(steps=3, speed_up=8.0)
    assert schedule.prune_kwargs(1, 10.0, 10.0) == {"target_gflops": pytest.approx(5.0)}
    assert schedule.prune_kwargs(2, 10.0, 5.2) == {"target_gflops": pytest.approx(2.5)}  # corrects step 1's miss
    assert schedule.prune_kwargs(3, 10.0, 1.2) is None  # already below 1.25: nothing to prune


def test_ratio_schedule_compounds_to_the_final_ratio():
    step = Schedule(steps=3, ratio=0.488).prune_kwargs(1, 10.0, 10.0)["ratio"]
    assert (1 - step) ** 3 == pytest.approx(1 - 0.488)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, "steps"),
        ({"ratio": 0.3, "speed_up": 2.0}, "either"),
        ({"speed_up": 1.0}, "speed_up"),
        ({"ratio": 1.0}, "ratio"),
        ({"epochs": 0}, "epochs"),
        ({"imgsz": 100}, "imgsz"),
        ({"name": "x", "project": "y", "resume": True}, "resume"),
    ],
)
def test_bad_options_raise_prune_error(base_pt, dataset_yaml, kwargs, match):
    with pytest.raises(PruneError, match=match):
        iterative_prune(base_pt, dataset_yaml, **kwargs)


def test_missing_model_or_data_is_a_prune_error(tmp_path, dataset_yaml, base_pt):
    with pytest.raises(PruneError, match="does not exist"):
        iterative_prune(tmp_path / "nope.pt", dataset_yaml)
    with pytest.raises(PruneError, match="does not exist"):
        iterative_prune(base_pt, tmp_path / "missing.yaml")
    with pytest.raises(PruneError, match="needs data"):
        iterative_cli({"model": str(base_pt), "data": None})


def read_steps(path):
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_steps_reach_speed_up_and_write_reports(base_pt, dataset_yaml, tmp_path):
    result = iterative_prune(base_pt, dataset_yaml, steps=2, speed_up=2.0, epochs=1, max_map_drop=1.0, imgsz=64,
                             project=tmp_path, name="run", **TINY_TRAIN)  # fmt: skip
    assert [s.step for s in result.steps] == [0, 1, 2]
    assert not result.stopped_early and result.best_step == 2
    base, final = result.steps[0], result.steps[-1]
    assert final.gflops / base.gflops == pytest.approx(0.5, abs=0.03)
    assert result.steps[1].gflops / base.gflops == pytest.approx(0.5**0.5, abs=0.03)
    assert result.best == result.run_dir / "best.pt" and result.best.is_file()
    assert YOLO(result.best).model.yaml == YOLO(final.weights).model.yaml  # the kept step, pruned widths included
    rows = read_steps(result.files["csv"])
    assert [int(r["step"]) for r in rows] == [0, 1, 2]
    assert result.files["png"].stat().st_size > 0
    assert "(kept)" in result.files["md"].read_text()


@pytest.mark.slow
def test_stops_when_the_drop_exceeds_max_map_drop(base_pt, dataset_yaml, tmp_path):
    result = iterative_prune(base_pt, dataset_yaml, steps=2, ratio=0.5, epochs=1, max_map_drop=-1.0, imgsz=64,
                             reconstruct=True, project=tmp_path, name="run", **TINY_TRAIN)  # fmt: skip
    assert torch.load(result.run_dir / "step1-pruned.pt", weights_only=False)["yolo_prune"]["reconstructed"]
    assert result.stopped_early
    assert [s.step for s in result.steps] == [0, 1]  # step 2 never ran
    assert not result.steps[1].admissible
    assert result.best_step == 0  # nothing admissible: the input is kept
    assert result.best.read_bytes() == base_pt.read_bytes()
    assert len(read_steps(result.files["csv"])) == 2 and result.files["png"].is_file()
