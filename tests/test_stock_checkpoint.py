"""The central promise: a pruned checkpoint trains, validates and exports in a process that never imports yolo_prune.

Each stock command runs in a subprocess whose ``sys.modules['yolo_prune']`` is None, so any import of the plugin
would fail: what works there works for any Ultralytics user, and in DDP workers, which rebuild the model the same way.
"""

import json
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import FAMILIES, TASK_FAMILIES, tiny_detector, tiny_task_model
from yolo_prune import prune_yolo

STOCK_YOLO = (
    "import sys; sys.modules['yolo_prune'] = None; "  # importing the plugin would now raise ImportError
    "from ultralytics.cfg import entrypoint; sys.argv = ['yolo', *sys.argv[1:]]; entrypoint()"
)


def stock_yolo(*args: str, cwd) -> str:
    """Run the stock ``yolo`` CLI in a fresh process without yolo_prune; return its output, failing on error."""
    result = subprocess.run(
        [sys.executable, "-c", STOCK_YOLO, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "YOLO_OFFLINE": "1"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


STOCK_SESSION = (  # several `yolo` CLI commands in one fresh process (one start-up instead of four), no yolo_prune
    "import json, sys; sys.modules['yolo_prune'] = None\n"
    "from ultralytics.cfg import entrypoint\n"
    "for argv in json.loads(sys.argv[1]):\n"
    "    entrypoint(' '.join(['yolo', *argv]))"  # the CLI's own parsing of a command line (split on spaces)
)
TASK_METRIC = {"segment": "Mask(P", "pose": "Pose(P", "obb": "mAP50-95", "classify": "top1_acc"}  # in val's table


def stock_session(*commands: list[str], cwd) -> str:
    """Run stock ``yolo`` CLI commands one after the other in a fresh process without yolo_prune."""
    assert not any(" " in word for command in commands for word in command)  # one command line per command
    result = subprocess.run(
        [sys.executable, "-c", STOCK_SESSION, json.dumps(commands)],
        cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, "YOLO_OFFLINE": "1"},
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


def load_params(path):
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = ckpt.get("ema") or ckpt["model"]
    return {k: v.float() for k, v in model.named_parameters()}, model


@pytest.mark.slow
@pytest.mark.parametrize("cfg", FAMILIES)
def test_stock_train_val_export_keep_pruned_tensors(cfg, dataset_yaml, tmp_path):
    pruned_pt = tmp_path / "pruned.pt"
    prune_yolo(tiny_detector(cfg), ratio=0.3, save=pruned_pt, verbose=False)
    before, _ = load_params(pruned_pt)

    last = tmp_path / "train" / "weights" / "last.pt"
    common = ["imgsz=64", "batch=8", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}", "exist_ok=True"]
    log = stock_session(
        ["train", f"model={pruned_pt}", f"data={dataset_yaml}", "epochs=1", "optimizer=SGD", "lr0=0",
         "warmup_epochs=0", "weight_decay=0", "amp=False", "name=train", "val=True", *common],
        ["val", f"model={last}", f"data={dataset_yaml}", "name=val", *common],
        ["export", f"model={last}", "format=onnx", "imgsz=64"],
        ["predict", f"model={last}", f"source={dataset_yaml.parent / 'images' / 'val'}", "name=predict", "save=False",
         *common],
        cwd=tmp_path,
    )  # fmt: skip
    transferred = re.search(r"Transferred (\d+)/(\d+) items", log)
    assert transferred and transferred[1] == transferred[2], log[-2000:]

    for weights in ("last.pt", "best.pt"):
        after, model = load_params(tmp_path / "train" / "weights" / weights)
        assert after.keys() == before.keys()
        for key in before:
            assert after[key].shape == before[key].shape, key
            assert torch.allclose(after[key], before[key], atol=1e-3), key
        assert "scales" not in model.yaml
    assert last.with_suffix(".onnx").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.parametrize("family,task", TASK_FAMILIES)
def test_every_task_trains_validates_predicts_and_exports_in_a_stock_process(family, task, task_dataset, tmp_path):
    data = task_dataset(task)
    pruned_pt, last = tmp_path / "pruned.pt", tmp_path / "train" / "weights" / "last.pt"
    prune_yolo(tiny_task_model(family, task), ratio=0.3, save=pruned_pt, verbose=False)
    before, _ = load_params(pruned_pt)
    images = data / "val" / "circle" if task == "classify" else data.parent / "images" / "val"
    common = ["imgsz=64", "batch=8", "workers=0", "device=cpu", "plots=False", f"project={tmp_path}", "exist_ok=True"]

    log = stock_session(
        ["train", f"model={pruned_pt}", f"data={data}", "epochs=1", "optimizer=SGD", "lr0=0", "warmup_epochs=0",
         "weight_decay=0", "amp=False", "name=train", *common],
        ["val", f"model={last}", f"data={data}", "name=val", *common],
        ["predict", f"model={last}", f"source={images}", "save=False", "name=predict", *common],
        ["export", f"model={last}", "format=onnx", "imgsz=64"],
        cwd=tmp_path,
    )  # fmt: skip

    transferred = re.search(r"Transferred (\d+)/(\d+) items", log)
    assert transferred and transferred[1] == transferred[2], log[-2000:]
    after, _ = load_params(last)
    assert torch.load(last, map_location="cpu", weights_only=False)["train_args"]["task"] == task
    assert after.keys() == before.keys()
    assert all(torch.allclose(after[k], before[k], atol=1e-3) for k in before)  # lr0=0: every pruned tensor kept
    assert TASK_METRIC[task] in log  # the task's own validator ran
    assert last.with_suffix(".onnx").stat().st_size > 0
