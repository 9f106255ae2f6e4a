"""Data-driven importance (Taylor, Hessian through Ultralytics' loss) and per-layer ratios."""

import pytest
import torch

from conftest import FAMILIES, tiny_detector
from helpers import assert_stock_rebuild_keeps_every_tensor, slot_widths, ultralytics_messages
from yolo_prune import PruneError, prune_yolo
from yolo_prune.pruning.core import PruneOptions, prune_detection_model
from yolo_prune.recovery.calibration import calibration_batches, single_samples


@pytest.fixture(scope="module")
def batches(dataset_yaml):
    return calibration_batches(str(dataset_yaml), imgsz=64, images=16)


@pytest.mark.parametrize(
    "cfg, importance", [*((cfg, "taylor") for cfg in FAMILIES), ("yolov8n.yaml", "hessian")]
)  # hessian differs from taylor in the score, not in how gradients pass each family's blocks
def test_data_driven_importance_gives_a_stock_model(cfg, importance, batches):
    base = tiny_detector(cfg)
    pruned = prune_detection_model(base, PruneOptions(0.3, importance=importance, calibration=batches))
    assert_stock_rebuild_keeps_every_tensor(pruned)
    magnitude = prune_detection_model(base, PruneOptions(0.3)).state_dict()
    assert slot_widths(pruned) == slot_widths(prune_detection_model(base, PruneOptions(0.3)))
    assert any(not torch.equal(v, magnitude[k]) for k, v in pruned.state_dict().items())  # other channels kept


def test_calibration_leaves_batchnorm_statistics_alone(batches):
    base = tiny_detector()
    pruned = prune_detection_model(base, PruneOptions(0.01, importance="taylor", calibration=batches))
    assert torch.equal(pruned.model[0].bn.running_mean, base.model[0].bn.running_mean)


def test_single_samples_reindex_targets(batches):
    batch = batches[0]
    samples = single_samples(batch)
    assert len(samples) == len(batch["img"])
    assert sum(len(s["cls"]) for s in samples) == len(batch["cls"])
    assert all((s["batch_idx"] == 0).all() for s in samples)


def test_public_api_reads_data(dataset_yaml):
    pruned = prune_yolo(tiny_detector(), ratio=0.3, importance="taylor", data=dataset_yaml, imgsz=64, verbose=False)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)


def test_data_driven_importance_needs_data():
    with pytest.raises(PruneError, match="pass data=data.yaml"):
        prune_yolo(tiny_detector(), importance="hessian", verbose=False)


def test_unreadable_dataset(tmp_path):
    with pytest.raises(PruneError, match="Could not read dataset"):
        prune_yolo(tiny_detector(), importance="taylor", data=tmp_path / "none.yaml", verbose=False)


def test_layer_ratios_touch_only_listed_layers():
    base = tiny_detector()
    pruned = prune_detection_model(base, PruneOptions(0.0, layer_ratios={4: 0.5, 22: 0.25}))
    for i, (a, b) in enumerate(zip(base.model[:-1], pruned.model[:-1])):
        same = all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        assert same == (i not in (4, 5, 15)), i  # layer 4 shrinks; 5 and 15 (via concat 14) lose inputs
    assert pruned.model[4].cv2.conv.out_channels == 32 and pruned.model[4].cv1.conv.out_channels == 32
    assert [b[-1].in_channels for b in pruned.model[-1].cv3] == [48, 48, 48]  # 64 * (1 - 0.25)
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_layer_ratios_override_ratio():
    base = tiny_detector()
    pruned = prune_yolo(base, ratio=0.3, layer_ratios={7: 0.0}, verbose=False).model
    assert pruned.model[7].conv.out_channels == base.model[7].conv.out_channels
    assert pruned.model[5].conv.out_channels < base.model[5].conv.out_channels


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layer_ratios": {99: 0.3}}, "not a layer index"),
        ({"layer_ratios": {2: 1.0}}, r"must be in \[0, 1\)"),
        ({"layer_ratios": [0.3]}, "must be a dict"),
        ({"layer_ratios": {2: 0.3}, "global_pruning": True}, "cannot be combined"),
    ],
)
def test_bad_layer_ratios(kwargs, message):
    with pytest.raises(PruneError, match=message):
        prune_yolo(tiny_detector(), verbose=False, **kwargs)


def test_calibrate_bn_reestimates_batchnorm_of_the_pruned_model(dataset_yaml):
    base = tiny_detector()
    same = {"ratio": 0.3, "imgsz": 64, "data": dataset_yaml, "distill": False, "verbose": False}
    plain = prune_yolo(base, **same).model  # data alone (no distillation): weights and statistics as pruned
    tuned = prune_yolo(base, calibrate_bn=True, **same).model
    assert not torch.allclose(plain.model[2].cv2.bn.running_var, tuned.model[2].cv2.bn.running_var)
    assert torch.equal(plain.model[2].cv2.conv.weight, tuned.model[2].cv2.conv.weight)  # weights untouched
    assert_stock_rebuild_keeps_every_tensor(tuned)


def test_taylor_on_a_saved_checkpoint_with_frozen_parameters(dataset_yaml, tmp_path):
    base = tiny_detector()
    for p in base.parameters():
        p.requires_grad_(False)  # as Ultralytics stores checkpoints
    prune_yolo(base, ratio=0.01, save=tmp_path / "base.pt", verbose=False)
    pruned = prune_yolo(tmp_path / "base.pt", ratio=0.3, importance="taylor", data=dataset_yaml, imgsz=64, verbose=False)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)


def test_calibration_batches_are_reproducible_and_leave_random_state(dataset_yaml):
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    a = calibration_batches(str(dataset_yaml), imgsz=64, images=8)
    assert random.random() == expected  # caller's random stream untouched
    b = calibration_batches(str(dataset_yaml), imgsz=64, images=8)
    assert torch.equal(a[0]["img"], b[0]["img"]) and torch.equal(a[0]["bboxes"], b[0]["bboxes"])


def test_one_scanned_dataset_draws_what_a_fresh_scan_draws_whatever_was_drawn_before(dataset_yaml):
    from yolo_prune.recovery.calibration import CalibrationImages

    images = CalibrationImages(str(dataset_yaml), imgsz=64, images=8, mosaic=1.0)
    first = images.draw(seed=3, window=1)
    images.draw(seed=0, window=0)  # fills the mosaic buffer with other images
    again = images.draw(seed=3, window=1)
    fresh = calibration_batches(str(dataset_yaml), 64, 8, seed=3, mosaic=1.0, window=1)
    other = images.draw(seed=4, window=1)
    same = lambda x, y: all(torch.equal(a["img"], b["img"]) for a, b in zip(x, y))  # noqa: E731
    assert same(first, again) and same(first, fresh)
    assert not torch.equal(first[0]["img"], other[0]["img"])  # the seed draws the augmentation


def test_calibrate_bn_needs_data():
    with pytest.raises(PruneError, match="calibrate_bn=True"):
        prune_yolo(tiny_detector(), calibrate_bn=True, verbose=False)


def test_a_folder_of_unlabeled_images_calibrates_and_distils(dataset_yaml, tmp_path):
    import shutil

    import yaml

    images = tmp_path / "images"
    shutil.copytree(dataset_yaml.parent / "images" / "train", images)  # no labels folder anywhere near
    data = tmp_path / "unlabeled.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp_path), "train": "images", "val": "images", "names": {0: "a"}}))
    with ultralytics_messages() as records:
        batches = calibration_batches(str(data), imgsz=64, images=8)
    assert sum(len(b["img"]) for b in batches) == 8 and sum(len(b["cls"]) for b in batches) == 0
    assert records and not any("No labels found" in r or "Labels are missing" in r for r in records)  # not needed
    pruned = prune_yolo(tiny_detector(), ratio=0.3, data=data, imgsz=64, verbose=False)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)
    with pytest.raises(PruneError, match="importance='taylor' .* needs labels, and the images of .* have none"):
        prune_yolo(tiny_detector(), ratio=0.3, importance="taylor", data=data, imgsz=64, verbose=False)


def test_a_dataset_built_at_two_sizes_is_scanned_once_while_scans_are_shared(tmp_path, monkeypatch):
    from ultralytics.data import YOLODataset

    from yolo_prune.data.synthetic import make_synthetic_dataset
    from yolo_prune.recovery.calibration import CalibrationImages, sharing_scans

    data = make_synthetic_dataset(tmp_path, n_train=8, n_val=2, imgsz=64, seed=1)
    scan, scans = YOLODataset.cache_labels, []
    monkeypatch.setattr(YOLODataset, "cache_labels", lambda self, path: scans.append(path) or scan(self, path))

    def build_without_cache_file(imgsz: int) -> list[dict]:  # as in a read-only folder: no cache to read back
        for cache in tmp_path.rglob("*.cache"):
            cache.unlink()
        return CalibrationImages(str(data), imgsz, images=8).draw()

    with sharing_scans():
        small, full = build_without_cache_file(32), build_without_cache_file(64)
    assert len(scans) == 1
    assert small[0]["img"].shape[-1] == 32 and full[0]["img"].shape[-1] == 64
    assert torch.equal(small[0]["cls"], full[0]["cls"])  # the same labels at both sizes
    build_without_cache_file(64)
    assert len(scans) == 2  # outside the block, a build without a cache file scans again
