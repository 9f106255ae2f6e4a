"""Tests for the offline synthetic shapes dataset (yolo_prune.data.synthetic)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("YOLO_OFFLINE", "1")  # before Ultralytics is imported anywhere in this module's tests

from yolo_prune.data.synthetic import make_synthetic_dataset  # noqa: E402
from yolo_prune.errors import PruneError  # noqa: E402

SMALL = {"n_train": 6, "n_val": 3, "imgsz": 64}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small dataset shared by the read-only tests; returns its data.yaml."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("shapes"), **SMALL)


def read_labels(path: Path) -> list[list[float]]:
    """Rows ``[cls, cx, cy, w, h]`` of a YOLO label file."""
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip()]


def test_layout_and_counts(dataset: Path) -> None:
    root = dataset.parent
    for split, n in (("train", SMALL["n_train"]), ("val", SMALL["n_val"])):
        images = sorted(p.stem for p in (root / "images" / split).glob("*.jpg"))
        labels = sorted(p.stem for p in (root / "labels" / split).glob("*.txt"))
        assert len(images) == n
        assert images == labels
        assert (root / "annotations" / f"instances_{split}.json").is_file()


def test_data_yaml(dataset: Path) -> None:
    data = yaml.safe_load(dataset.read_text())
    assert Path(data["path"]).is_absolute() and Path(data["path"]) == dataset.parent.resolve()
    assert data["train"] == "images/train" and data["val"] == "images/val"
    assert data["names"] == {0: "circle", 1: "square", 2: "triangle"}


def test_labels_parse_and_lie_in_unit_box(dataset: Path) -> None:
    for label_file in (dataset.parent / "labels").glob("*/*.txt"):
        rows = read_labels(label_file)
        assert rows, f"{label_file} has no objects"
        for cls, cx, cy, w, h in rows:
            assert cls in (0, 1, 2)
            assert 0 < w <= 1 and 0 < h <= 1
            assert 0 <= cx - w / 2 and cx + w / 2 <= 1
            assert 0 <= cy - h / 2 and cy + h / 2 <= 1


def test_object_sizes_and_counts(tmp_path: Path) -> None:
    yaml_path = make_synthetic_dataset(tmp_path, n_train=20, n_val=1, imgsz=128, max_objects=2)
    for label_file in (tmp_path / "labels").glob("*/*.txt"):
        rows = read_labels(label_file)
        assert 1 <= len(rows) <= 2
        for _, _, _, w, h in rows:
            assert max(w, h) <= 0.52  # at most ~50% of the side (plus a pixel)
            assert max(w, h) >= 0.05
    assert yaml_path.is_file()


@pytest.mark.parametrize("split", ["train", "val"])
def test_coco_matches_yolo(dataset: Path, split: str) -> None:
    root = dataset.parent
    coco = json.loads((root / "annotations" / f"instances_{split}.json").read_text())
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3]
    assert [c["name"] for c in coco["categories"]] == ["circle", "square", "triangle"]
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        assert ann["iscrowd"] == 0 and ann["area"] > 0
        by_image.setdefault(ann["image_id"], []).append(ann)
    assert len(coco["images"]) == len(list((root / "images" / split).glob("*.jpg")))
    for image in coco["images"]:
        assert (root / "images" / split / image["file_name"]).is_file()
        rows = read_labels(root / "labels" / split / (Path(image["file_name"]).stem + ".txt"))
        anns = by_image.get(image["id"], [])
        assert len(anns) == len(rows)
        W, H = image["width"], image["height"]
        for ann, (cls, cx, cy, w, h) in zip(anns, rows):
            x, y, bw, bh = ann["bbox"]
            assert ann["category_id"] == cls + 1
            assert ann["area"] <= bw * bh
            expected = ((x + bw / 2) / W, (y + bh / 2) / H, bw / W, bh / H)
            assert expected == pytest.approx((cx, cy, w, h), abs=1e-3)


def label_texts(yaml_path: Path) -> dict[str, str]:
    root = yaml_path.parent
    return {str(p.relative_to(root)): p.read_text() for p in sorted((root / "labels").glob("*/*.txt"))}


def test_deterministic(tmp_path: Path) -> None:
    a = make_synthetic_dataset(tmp_path / "a", **SMALL, seed=1)
    b = make_synthetic_dataset(tmp_path / "b", **SMALL, seed=1)
    c = make_synthetic_dataset(tmp_path / "c", **SMALL, seed=2)
    assert label_texts(a) == label_texts(b)
    assert label_texts(a) != label_texts(c)


def test_cache_hit_does_not_rewrite(tmp_path: Path) -> None:
    first = make_synthetic_dataset(tmp_path, **SMALL)
    watched = [first, tmp_path / "labels" / "train" / "train_00000.txt", tmp_path / "images" / "val" / "val_00000.jpg"]
    mtimes = [p.stat().st_mtime_ns for p in watched]
    os.utime(watched[1], ns=(1, 1))  # an unchanged mtime is then unmistakable
    second = make_synthetic_dataset(tmp_path, **SMALL)
    assert second == first
    assert watched[1].stat().st_mtime_ns == 1
    assert [p.stat().st_mtime_ns for p in (watched[0], watched[2])] == [mtimes[0], mtimes[2]]


def test_changed_params_regenerate(tmp_path: Path) -> None:
    make_synthetic_dataset(tmp_path, **SMALL)
    make_synthetic_dataset(tmp_path, **{**SMALL, "n_train": 2})
    assert len(list((tmp_path / "images" / "train").glob("*.jpg"))) == 2
    assert len(list((tmp_path / "labels" / "train").glob("*.txt"))) == 2
    assert json.loads((tmp_path / "synthetic.json").read_text())["n_train"] == 2


def test_custom_classes(tmp_path: Path) -> None:
    yaml_path = make_synthetic_dataset(tmp_path, **SMALL, classes=("triangle", "blob"))
    assert yaml.safe_load(yaml_path.read_text())["names"] == {0: "triangle", 1: "blob"}
    classes = {row[0] for p in (tmp_path / "labels").glob("*/*.txt") for row in read_labels(p)}
    assert classes <= {0, 1}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_train": 0},
        {"n_val": -1},
        {"imgsz": 31},
        {"imgsz": 64.0},
        {"max_objects": 0},
        {"n_train": True},
        {"classes": ()},
        {"classes": ("a", "b", "c", "d")},
        {"classes": ("a", "a")},
        {"classes": ("",)},
    ],
)
def test_bad_args_raise(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(PruneError, match="make_synthetic_dataset"):
        make_synthetic_dataset(tmp_path / "ds", **kwargs)
    assert not (tmp_path / "ds").exists()


def test_refuses_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "mine.jpg").write_bytes(b"")
    with pytest.raises(PruneError, match="did not write"):
        make_synthetic_dataset(tmp_path, **SMALL)
    assert (tmp_path / "images" / "train" / "mine.jpg").exists()


def test_ultralytics_reads_it(dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(dataset))
    assert data["nc"] == 3
    assert data["names"] == {0: "circle", 1: "square", 2: "triangle"}
    assert Path(data["train"]) == dataset.parent / "images" / "train"
    assert Path(data["val"]) == dataset.parent / "images" / "val"


def test_ultralytics_verifies_every_pair(dataset: Path) -> None:
    from ultralytics.data.utils import img2label_paths, verify_image_label

    images = sorted(str(p) for p in (dataset.parent / "images").glob("*/*.jpg"))
    for image, label in zip(images, img2label_paths(images)):
        _, lb, shape, *_, n_corrupt, msg = verify_image_label((image, label, "", False, 3, 0, 0, False))
        assert n_corrupt == 0, msg
        assert shape == (SMALL["imgsz"], SMALL["imgsz"])
        assert len(lb) == len(read_labels(Path(label)))
