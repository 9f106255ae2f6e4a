"""COCO-format data in (yolo_prune.data.coco): JSON -> Ultralytics labels + data.yaml, round trip and training."""

import json
import shutil

import numpy as np
import pytest
import yaml
from ultralytics import YOLO

from conftest import NAMES, tiny_detector
from yolo_prune import PruneError
from yolo_prune.data.coco import coco_to_yolo, convert_cli, dataset_cli


def labels(folder):
    """``{file name: rows}`` of every YOLO label file under ``folder``."""
    return {p.name: np.loadtxt(p, ndmin=2) for p in sorted(folder.glob("*.txt"))}


def assert_same_labels(expected_root, converted_root):
    for split in ("train", "val"):
        want, got = labels(expected_root / "labels" / split), labels(converted_root / "labels" / split)
        assert want.keys() == got.keys()
        for name, rows in want.items():
            assert got[name].shape == rows.shape, name
            assert np.abs(got[name] - rows).max() < 1e-3, name


def test_round_trip_matches_the_generators_yolo_labels(dataset_yaml, tmp_path):
    data = coco_to_yolo(dataset_yaml.parent, tmp_path / "converted")
    assert_same_labels(dataset_yaml.parent, data.parent)
    spec = yaml.safe_load(data.read_text())
    assert spec["names"] == NAMES and spec["train"] == "images/train" and spec["val"] == "images/val"
    assert len(list((data.parent / "images" / "val").glob("*.jpg"))) == 8


def test_non_contiguous_category_ids_map_to_classes_in_id_order(dataset_yaml, tmp_path):
    coco_dir = tmp_path / "coco"
    shutil.copytree(dataset_yaml.parent / "images", coco_dir / "images")
    new_id = {1: 7, 2: 12, 3: 90}  # circle, square, triangle keep their order by id
    for split in ("train", "val"):
        coco = json.loads((dataset_yaml.parent / "annotations" / f"instances_{split}.json").read_text())
        coco["categories"] = [{**c, "id": new_id[c["id"]]} for c in reversed(coco["categories"])]
        coco["annotations"] = [{**a, "category_id": new_id[a["category_id"]]} for a in coco["annotations"]]
        (coco_dir / "annotations").mkdir(exist_ok=True)
        (coco_dir / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
    data = coco_to_yolo(coco_dir, tmp_path / "out")
    assert yaml.safe_load(data.read_text())["names"] == NAMES
    assert_same_labels(dataset_yaml.parent, data.parent)


def test_out_dir_rules(dataset_yaml, tmp_path):
    out = tmp_path / "out"
    coco_to_yolo(dataset_yaml.parent, out)
    with pytest.raises(PruneError, match="overwrite=True"):
        coco_to_yolo(dataset_yaml.parent, out)
    assert_same_labels(dataset_yaml.parent, coco_to_yolo(dataset_yaml.parent, out, overwrite=True).parent)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(PruneError, match="not written by coco_to_yolo"):
        coco_to_yolo(dataset_yaml.parent, tmp_path / "foreign")
    with pytest.raises(PruneError, match="outside"):
        coco_to_yolo(dataset_yaml.parent, dataset_yaml.parent / "yolo")


def test_missing_annotations_or_images_are_prune_errors(dataset_yaml, tmp_path):
    with pytest.raises(PruneError, match="instances_"):
        coco_to_yolo(tmp_path, tmp_path / "out")
    coco_dir = tmp_path / "coco"
    shutil.copytree(dataset_yaml.parent / "annotations", coco_dir / "annotations")
    with pytest.raises(PruneError, match="no image folder"):
        coco_to_yolo(coco_dir, tmp_path / "out2")


def test_dataset_cli_writes_coco_layout_that_convert_cli_reads(tmp_path):
    annotations = dataset_cli({"out": str(tmp_path / "coco"), "n_train": 4, "n_val": 2, "imgsz": 64, "format": "coco"})
    assert sorted(p.name for p in annotations.iterdir()) == ["instances_train.json", "instances_val.json"]
    assert not (tmp_path / "coco" / "labels").exists()
    args = {"data": str(tmp_path / "coco"), "out": str(tmp_path / "yolo"), "images": None, "overwrite": False}
    data = convert_cli(args)
    assert len(list((data.parent / "labels" / "train").glob("*.txt"))) == 4
    assert dataset_cli({"out": str(tmp_path / "shapes"), "n_train": 2, "n_val": 1, "imgsz": 64}).name == "data.yaml"
    with pytest.raises(PruneError, match="format"):
        dataset_cli({"out": str(tmp_path / "x"), "format": "voc"})


@pytest.mark.slow
def test_converted_dataset_trains(dataset_yaml, tmp_path):
    data = coco_to_yolo(dataset_yaml.parent, tmp_path / "converted")
    model = YOLO("yolov8n.yaml")
    model.model = tiny_detector()
    model.save(tmp_path / "base.pt")
    YOLO(tmp_path / "base.pt").train(data=str(data), epochs=1, imgsz=64, batch=8, workers=0, device="cpu",
                                     plots=False, amp=False, project=str(tmp_path), name="train")  # fmt: skip
    assert (tmp_path / "train" / "weights" / "last.pt").is_file()
