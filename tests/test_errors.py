"""Every mistake a user can make gets one PruneError with a clear message; input files are never touched."""

import hashlib

import pytest
from ultralytics.nn.tasks import DetectionModel

from conftest import tiny_detector
from yolo_prune import PruneError, prune_yolo


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "base.pt"
    prune_yolo(tiny_detector(), ratio=0.01, save=path, verbose=False)
    return path


def test_input_file_bytes_unchanged(checkpoint, tmp_path):
    digest = sha256(checkpoint)
    prune_yolo(checkpoint, ratio=0.3, save=tmp_path / "out.pt", verbose=False)
    assert sha256(checkpoint) == digest


def test_missing_file():
    with pytest.raises(PruneError, match="not found"):
        prune_yolo("does/not/exist.pt", verbose=False)


def test_empty_file(tmp_path):
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(PruneError, match="empty"):
        prune_yolo(tmp_path / "empty.pt", verbose=False)


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b"PK\x03\x04truncated zip"])
def test_corrupt_file(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(PruneError, match="Could not load"):
        prune_yolo(tmp_path / "bad.pt", verbose=False)


def test_truncated_checkpoint(checkpoint, tmp_path):
    data = checkpoint.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(PruneError, match="Could not load"):
        prune_yolo(tmp_path / "cut.pt", verbose=False)


def test_not_a_checkpoint_suffix(tmp_path):
    with pytest.raises(PruneError, match="not a PyTorch checkpoint"):
        prune_yolo(tmp_path / "model.onnx", verbose=False)


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5, "0.3", True])
def test_ratio_out_of_range(ratio):
    with pytest.raises(PruneError, match="strictly between 0 and 1"):
        prune_yolo(tiny_detector(), ratio=ratio, verbose=False)


@pytest.mark.parametrize("round_to", [0, 1, 4, 12, 8.0])
def test_round_to_the_yaml_cannot_hold(round_to):
    with pytest.raises(PruneError, match="multiple of 8"):
        prune_yolo(tiny_detector(), round_to=round_to, verbose=False)


def test_unknown_importance():
    with pytest.raises(PruneError, match="importance='taylorr' is not one of"):
        prune_yolo(tiny_detector(), importance="taylorr", verbose=False)


@pytest.mark.parametrize("imgsz", [100, 0, 16])
def test_imgsz_not_a_stride_multiple(imgsz):
    with pytest.raises(PruneError, match="multiple of 32"):
        prune_yolo(tiny_detector(), imgsz=imgsz, verbose=False)


@pytest.mark.parametrize(
    "cfg", ["yolov10n.yaml", "yolov8s-worldv2.yaml", "yoloe-11s-seg.yaml", "yolo26n-sem.yaml", "yolo26n-depth.yaml"]
)
def test_unsupported_model_names_what_is_supported(cfg):
    with pytest.raises(PruneError, match="supports YOLOv8, YOLO11 and YOLO26 detect, segment, pose, OBB and classify"):
        prune_yolo(cfg, verbose=False)


def test_unsupported_layers():
    with pytest.raises(PruneError, match="unsupported layers"):
        prune_yolo(DetectionModel("yolov9t.yaml", verbose=False), verbose=False)


def test_fused_model():
    with pytest.raises(PruneError, match="fused"):
        prune_yolo(tiny_detector().fuse(), verbose=False)


def test_not_a_model():
    with pytest.raises(PruneError, match="must be a .pt/.yaml path"):
        prune_yolo(42, verbose=False)


def test_existing_output_not_overwritten(checkpoint, tmp_path):
    out = tmp_path / "exists.pt"
    out.write_bytes(b"keep me")
    with pytest.raises(PruneError, match="already exists"):
        prune_yolo(checkpoint, save=out, verbose=False)
    assert out.read_bytes() == b"keep me"
    prune_yolo(checkpoint, save=out, overwrite=True, verbose=False)
    assert out.read_bytes() != b"keep me"


def test_save_onto_input_refused(checkpoint):
    digest = sha256(checkpoint)
    with pytest.raises(PruneError, match="is the input checkpoint"):
        prune_yolo(checkpoint, save=checkpoint, overwrite=True, verbose=False)
    assert sha256(checkpoint) == digest


def test_no_temporary_files_left(checkpoint, tmp_path):
    prune_yolo(checkpoint, save=tmp_path / "a.pt", verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"speed_up": 0.5}, "above 1"),
        ({"speed_up": 2, "target_gflops": 3.0}, "not both"),
        ({"ratio": 0.3, "speed_up": 2}, "not both"),
        ({"target_gflops": 1000.0}, "below the model's"),
        ({"target_gflops": -1}, "above 0"),
    ],
)
def test_bad_compute_targets(kwargs, message):
    with pytest.raises(PruneError, match=message):
        prune_yolo(tiny_detector(), verbose=False, **kwargs)
