"""Recovery of a pruned checkpoint with nothing but stock Ultralytics: fine-tuning and distillation.

Both run in a fresh process where ``import yolo_prune`` fails (the ``STOCK_YOLO`` trick of
test_stock_checkpoint.py): what passes here works for any Ultralytics user.
"""

import re
import subprocess
import sys

import pytest
import torch
from ultralytics import YOLO

from conftest import tiny_detector
from test_stock_checkpoint import load_params, stock_yolo
from yolo_prune import prune_yolo

TINY = ["epochs=1", "imgsz=64", "batch=8", "workers=0", "device=cpu", "amp=False", "plots=False", "warmup_epochs=0"]
STOCK_PYTHON_TRAIN = """
import sys; sys.modules['yolo_prune'] = None
from ultralytics import YOLO
model, data, project = sys.argv[1:4]
YOLO(model).train(data=data, epochs=1, imgsz=64, batch=8, workers=0, device='cpu', amp=False, plots=False,
                  warmup_epochs=0, project=project, name='finetune', exist_ok=True)
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """An unpruned 3-class yolov8n checkpoint (the teacher) and its ratio-0.3 pruned student."""
    folder = tmp_path_factory.mktemp("recovery")
    model = YOLO("yolov8n.yaml")
    model.model = tiny_detector()
    model.save(folder / "base.pt")
    prune_yolo(folder / "base.pt", ratio=0.3, imgsz=64, save=folder / "pruned.pt", verbose=False)
    return folder / "base.pt", folder / "pruned.pt"


def assert_pruned_student(weights, pruned_pt, trained: bool):
    """``weights`` is a plain DetectionModel with exactly the pruned architecture (and moved weights if trained)."""
    before, pruned = load_params(pruned_pt)
    after, model = load_params(weights)
    assert type(model).__name__ == "DetectionModel"  # not the DistillationModel wrapper
    assert model.yaml == pruned.yaml
    assert after.keys() == before.keys()
    assert all(after[k].shape == before[k].shape for k in before)
    if trained:
        assert any(not torch.allclose(after[k], before[k], atol=1e-3) for k in before)


def assert_all_transferred(log):
    transferred = re.search(r"Transferred (\d+)/(\d+) items", log)
    assert transferred and transferred[1] == transferred[2], log[-2000:]


@pytest.mark.slow
def test_stock_python_finetune_of_pruned_checkpoint(checkpoints, dataset_yaml, tmp_path):
    _, pruned_pt = checkpoints
    command = [sys.executable, "-c", STOCK_PYTHON_TRAIN, str(pruned_pt), str(dataset_yaml), str(tmp_path)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert_all_transferred(log)
    for name in ("last.pt", "best.pt"):
        assert_pruned_student(tmp_path / "finetune" / "weights" / name, pruned_pt, trained=True)


@pytest.mark.slow
def test_stock_cli_distillation_from_unpruned_teacher(checkpoints, dataset_yaml, tmp_path):
    base_pt, pruned_pt = checkpoints
    log = stock_yolo("train", f"model={pruned_pt}", f"distill_model={base_pt}", f"data={dataset_yaml}", *TINY,
                     f"project={tmp_path}", "name=distill", "exist_ok=True", cwd=tmp_path)  # fmt: skip
    assert_all_transferred(log)
    results = (tmp_path / "distill" / "results.csv").read_text().splitlines()
    dis_loss = float(results[1].split(",")[results[0].split(",").index("train/dis_loss")])
    assert dis_loss > 0  # the teacher's features really were distilled
    for name in ("last.pt", "best.pt"):
        assert_pruned_student(tmp_path / "distill" / "weights" / name, pruned_pt, trained=True)
