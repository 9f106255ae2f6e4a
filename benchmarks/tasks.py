"""Every Ultralytics task: compute and prune time per task x family, and base -> pruned -> fine-tuned on synthetic sets.

Two parts, each printed as markdown (``benchmarks/results/tasks.md`` when run as below):

* ``compute``: the stock yamls as Ultralytics ships them (80 classes, 17 keypoints, 1000 ImageNet classes), pruned
  data-free at ``ratio=0.3``: GFLOPs at 640 px (224 for classify), parameters, prune time, and the share of GFLOPs in
  widths no stock yaml can carry (the task branch ``cv4`` of the head).
* ``recovery``: per task, a yolov8n-family model trained on the task's synthetic shapes set from the real COCO
  yolov8n's backbone and neck (``../shared/models/yolov8n-coco.pt``; from scratch when it is absent), pruned at
  ``speed_up`` 1.25 and 1.5 without data and with the training images (label-free distillation), then fine-tuned
  briefly with stock ``yolo train``; the task's own metric on the val split (mask / pose / box mAP50-95, top-1).
  Results are cached in ``benchmarks/cache/tasks/``.
* ``export``: the fine-tuned data-free ``speed_up=1.5`` prune of each task (from ``recovery``) exported to ONNX in
  fp32 and int8 with ``yolo_prune.export`` and verified on the val images on what the task predicts (masks,
  keypoints, rotated boxes, top-1 classes).

Command (from the repository root):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/tasks.py compute recovery export > benchmarks/results/tasks.md
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics import YOLO  # noqa: E402
from ultralytics.utils.torch_utils import get_flops  # noqa: E402

from torch import nn  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402

from yolo_prune import prune_yolo  # noqa: E402
from yolo_prune.pruning.groups import output_pixels  # noqa: E402
from yolo_prune.data.synthetic import make_synthetic_dataset  # noqa: E402
from yolo_prune.recovery.finetune import task_accuracy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "cache" / "tasks"
FAMILIES = ("yolov8n", "yolo11n", "yolo26n")
SUFFIX = {"segment": "-seg", "pose": "-pose", "obb": "-obb", "classify": "-cls"}
METRIC = {"segment": "mask mAP50-95", "pose": "pose mAP50-95", "obb": "box mAP50-95", "classify": "top-1"}
IMGSZ = 128  # the synthetic sets' image size
DATA = {"n_train": 128, "n_val": 32, "imgsz": IMGSZ, "seed": 0}
TRAIN = {"imgsz": IMGSZ, "batch": 16, "workers": 0, "device": "cpu", "seed": 0, "plots": False, "val": False}
BASE_EPOCHS, FT_EPOCHS = 40, 5
SPEED_UPS = (1.25, 1.5)
PRETRAINED = ROOT.parent / "shared" / "models" / "yolov8n-coco.pt"  # backbone + neck for every task's base
TASK_BRANCHES = ("cv4", "cv4_kpts", "one2one_cv4", "one2one_cv4_kpts")  # inference-time task branches of the head
FT_RECIPE = {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 0}  # the short fine-tune recipe of the README


def task_branch_share(model, imgsz: int) -> float:
    """Share of the convolutions' multiply-accumulates in the head's task branch (``cv4``: masks, keypoints,
    angles), whose hidden widths Ultralytics derives from the P3 width and the task, so they are not pruned."""
    pixels = output_pixels(model, imgsz)
    macs = {conv: conv.weight.numel() * n for conv, n in pixels.items()}
    head = model.model[-1]
    branch = [m for name in TASK_BRANCHES for m in (getattr(head, name, None) or nn.ModuleList()).modules()]
    return sum(macs.get(m, 0) for m in branch) / sum(macs.values())


def compute() -> None:
    """The compute table: stock task yamls at ratio 0.3, data-free."""
    print("## Compute per task and family (stock yamls, `prune_yolo(cfg, ratio=0.3)`, no data)\n")
    print("| model | GFLOPs base | GFLOPs pruned | x base | params x base | task branch (cv4) share | prune time (s) |")
    print("|---|---|---|---|---|---|---|")
    for task, suffix in SUFFIX.items():
        for family in FAMILIES:
            cfg = f"{family}{suffix}.yaml"
            imgsz = 224 if task == "classify" else 640
            source = YOLO(cfg).model
            start = time.perf_counter()
            pruned = prune_yolo(source, ratio=0.3, verbose=False).model
            seconds = time.perf_counter() - start
            base, ours = get_flops(source, imgsz), get_flops(pruned, imgsz)
            params = sum(p.numel() for p in pruned.parameters()) / sum(p.numel() for p in source.parameters())
            share = task_branch_share(source, imgsz)
            print(f"| {cfg} @{imgsz} | {base:.2f} | {ours:.2f} | {ours / base:.3f} | {params:.3f} | {share:.1%} | "
                  f"{seconds:.1f} |")  # fmt: skip
    print()


def task_data(task: str) -> Path:
    """The task's synthetic set (data.yaml, or the folder for classify)."""
    return make_synthetic_dataset(CACHE / f"shapes-{task}", task=task, **DATA)


def cached(name: str, make) -> dict:
    """``make()``'s result, stored as JSON under ``CACHE``."""
    path = CACHE / f"{name}.json"
    if path.is_file():
        return json.loads(path.read_text())
    result = make()
    path.write_text(json.dumps(result, indent=1))
    return result


def accuracy(weights: Path, data: Path, imgsz: int = IMGSZ) -> float:
    """The task's metric on the val split, through stock ``YOLO.val``."""
    metrics = YOLO(str(weights)).val(data=str(data), imgsz=imgsz, batch=16, workers=0, device="cpu", plots=False,
                                     verbose=False, project=str(CACHE / "runs"), name="val", exist_ok=True)  # fmt: skip
    return task_accuracy(metrics)[0]


def train(model: str, data: Path, epochs: int, name: str, **recipe) -> Path:
    """Train with stock Ultralytics (once: a finished run is reused); return ``last.pt``."""
    folder = CACHE / "runs" / name
    if not (folder / "done").is_file():
        YOLO(model).train(data=str(data), epochs=epochs, project=str(CACHE / "runs"), name=name, exist_ok=True,
                          **TRAIN, **recipe)  # fmt: skip
        (folder / "done").touch()
    return folder / "weights" / "last.pt"


def recover(task: str, family: str = "yolov8n") -> dict:
    """Base; data-free prunes and prunes with data at each speed-up, each also after a short fine-tune."""
    data = task_data(task)
    start = {"pretrained": str(PRETRAINED)} if PRETRAINED.is_file() and family == "yolov8n" else {}
    base = train(f"{family}{SUFFIX[task]}.yaml", data, BASE_EPOCHS, f"{task}-base", **start)
    row = {"base": accuracy(base, data)}
    methods = (("data-free", {}), ("with data", {"data": str(data)}))
    for speed_up in SPEED_UPS:
        for method, extra in methods:
            name, key = f"{task}-{method.replace(' ', '_')}-{speed_up}", f"{method} {speed_up}"
            pruned = CACHE / f"{name}.pt"
            start = time.perf_counter()
            prune_yolo(str(base), speed_up=speed_up, imgsz=IMGSZ, save=pruned, overwrite=True, verbose=False, **extra)
            row[f"{key} time"] = time.perf_counter() - start
            row[key] = accuracy(pruned, data)
            row[f"{key} + ft"] = accuracy(train(str(pruned), data, FT_EPOCHS, f"{name}-ft", **FT_RECIPE), data)
    return row


def recovery() -> None:
    """The recovery table: one trained yolov8n-family model per task."""
    start = "the COCO yolov8n's backbone and neck" if PRETRAINED.is_file() else "scratch"
    print(f"## Per task on its synthetic set (yolov8n family, {DATA['n_train']} train / {DATA['n_val']} val images at "
          f"{IMGSZ} px; base {BASE_EPOCHS} epochs from {start}; fine-tune {FT_EPOCHS} epochs "
          f"`optimizer=AdamW lr0=0.001 warmup_epochs=0`; x base in brackets)\n")  # fmt: skip
    print("| task | metric | base | speed_up | no data | + fine-tune | with data | + fine-tune | prune time no data / "
          "data (s) |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for task in SUFFIX:
        r = cached(f"recovery-{task}", lambda task=task: recover(task))
        for s in SPEED_UPS:
            cells = [_cell(r, f"{method} {s}{ft}") for method in ("data-free", "with data") for ft in ("", " + ft")]
            keys = (f"data-free {s} time", f"with data {s} time")
            times = " / ".join(f"{r[k]:.0f}" if k in r else "n/a" for k in keys)
            print(f"| {task} | {METRIC[task]} | {r['base']:.3f} | {s} | {' | '.join(cells)} | {times} |")
    print()


def _cell(row: dict, key: str) -> str:
    """``value (x base)``, or ``n/a`` when not measured."""
    return f"{row[key]:.3f} ({row[key] / max(row['base'], 1e-9):.2f})" if key in row else "n/a"


def export_parity() -> None:
    """The export table: ONNX fp32 and int8 of each task's fine-tuned pruned model, verified against PyTorch."""
    from yolo_prune.export import export

    print(f"## Export parity per task (ONNX, {IMGSZ} px, the fine-tuned data-free `speed_up=1.5` prune of `recovery`, "
          f"verified on the {DATA['n_val']} val images)\n")  # fmt: skip
    print("| task | precision | compared | agreement | threshold | status |\n|---|---|---|---|---|---|")
    for task in SUFFIX:
        pt = CACHE / "runs" / f"{task}-data-free-1.5-ft" / "weights" / "last.pt"
        for int8 in (False, True):
            (row,) = export(pt, "onnx", imgsz=IMGSZ, int8=int8, data=task_data(task), strict=False, verbose=False)
            agreement = "" if row.agreement is None else f"{row.agreement:.3f}"
            print(f"| {task} | {row.precision} | {row.metric or row.note} | {agreement} | {row.threshold} | "
                  f"{row.status} |")  # fmt: skip
    print()


def main(parts: list[str]) -> None:
    LOGGER.setLevel("ERROR")  # the tables go to stdout; Ultralytics and the deep-prune warning would mix in
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"# Every task\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. "
          f"Command: `benchmarks/tasks.py {' '.join(parts)}`\n")  # fmt: skip
    for part in parts:
        {"compute": compute, "recovery": recovery, "export": export_parity}[part]()


if __name__ == "__main__":
    main(sys.argv[1:] or ["compute", "recovery", "export"])
