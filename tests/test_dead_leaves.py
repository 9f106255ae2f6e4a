"""Generated dead-leaves images: what ``prune_yolo(distill=True)`` distils on when no data is given."""

import numpy as np
import yaml

from yolo_prune.data.dead_leaves import dead_leaves_image, write_dead_leaves
from yolo_prune.recovery.calibration import calibration_batches


def test_an_image_is_a_pure_function_of_its_seed_and_spans_scales_and_colours():
    image = dead_leaves_image(np.random.default_rng(3), 128)
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert np.array_equal(image, dead_leaves_image(np.random.default_rng(3), 128))
    assert not np.array_equal(image, dead_leaves_image(np.random.default_rng(4), 128))
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 1000  # not a flat or few-colour image
    gradients = np.abs(np.diff(image.astype(float), axis=1)).mean(2)
    assert (gradients > 30).mean() > 0.005  # shape edges, not only smooth noise


def test_written_images_form_a_dataset_ultralytics_reads_without_labels(tmp_path):
    data = write_dead_leaves(tmp_path / "leaves", images=6, imgsz=64, extras={"kpt_shape": [4, 3]})
    info = yaml.safe_load(data.read_text())
    assert sorted(p.name for p in (tmp_path / "leaves" / "images").iterdir())[0] == "00000.jpg"
    assert info["kpt_shape"] == [4, 3] and len(list((tmp_path / "leaves" / "images").glob("*.jpg"))) == 6
    batches = calibration_batches(str(data), imgsz=64, images=6)
    assert sum(len(b["img"]) for b in batches) == 6 and sum(len(b["cls"]) for b in batches) == 0


def test_written_images_form_a_class_folder_dataset_for_a_classifier(tmp_path):
    root = write_dead_leaves(tmp_path / "leaves", images=3, imgsz=64, classify=True)
    assert root == tmp_path / "leaves"
    assert {split: len(list((root / split / "leaves").glob("*.jpg"))) for split in ("train", "val")} == {
        "train": 3, "val": 3}
    batches = calibration_batches(str(root), imgsz=64, images=3, task="classify")
    assert sum(len(b["img"]) for b in batches) == 3
