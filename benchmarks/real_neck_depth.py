"""Depth in the neck: whole C2f bottlenecks of the real COCO yolov8n's neck dropped, the rest of the compute by width.

The neck's C2f blocks have no shortcut, so a stock C2f with ``n=0`` (no bottleneck; a valid yaml) computes what the
block computes when its bottleneck's output chunk is a constant: ``cv2(cat(a, b, const))``. The channel ranking
cannot reach that architecture, because a stock C2f ties its bottleneck's widths to its hidden width. Here the
bottlenecks of ``--drop`` (yaml layers) fade to their expectation with the channels the ranking drops, the ranking
saving what the drops do not (searched so that the whole model lands at ``--speed-up``), and the faded full-width
model distils for ``--epochs`` (fade over the first 30%, no cut: the faded model computes the cut model's function).
``--no-train`` measures the drops alone, on the source, without distillation. GFLOPs are those of the model cut with
each dropped bottleneck kept at one channel (the stock ``n=0`` block is a few MFLOPs cheaper still).
Run from the repository root with ``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_neck_depth.py --no-train --drop 15
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_neck_depth.py --speed-up 1.25 --drop 15,18
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_neck_depth.py --speed-up 1.25 --drop ""   # the control
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from dataclasses import replace

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
from real_ablations import SHARED, evaluate  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from yolo_prune.pruning.core import PruneOptions, prune_keeping, prune_with_channel_map  # noqa: E402
from yolo_prune.pruning.summary import ModelStats  # noqa: E402
from yolo_prune.recovery import distillation, fading  # noqa: E402
from yolo_prune.recovery.distillation import DISTILLED_COST_EXPONENT, DISTILLED_PROTECTED_STRIDE  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(SHARED / "models" / "yolov8n-coco.pt"))
    p.add_argument("--data", default=str(SHARED / "datasets" / "coco128" / "split.yaml"))
    p.add_argument("--speed-up", type=float, default=1.25)
    p.add_argument("--drop", default="15", help="yaml layers (C2f without shortcut) whose bottleneck is dropped")
    p.add_argument("--epochs", type=int, default=distillation.EPOCHS)
    p.add_argument("--no-train", action="store_true", help="the source with the drops alone: no ranking, no training")
    return p.parse_args()


def bottleneck_norms(layers: list[int]) -> list[str]:
    """The BatchNorms of the (single) bottleneck of each C2f in ``layers``."""
    return [f"model.{layer}.m.0.{conv}.bn" for layer in layers for conv in ("cv1", "cv2")]


def ranked(source, fraction: float) -> dict[str, torch.Tensor]:
    """The library's distilled ranking's channel map at ``fraction`` of the GFLOPs."""
    options = PruneOptions(0.3, "damage", global_pruning=True, cost_exponent=DISTILLED_COST_EXPONENT,
                           protected_stride=DISTILLED_PROTECTED_STRIDE)
    return prune_with_channel_map(source, replace(options, gflops_fraction=fraction))[1]


def gflops_with_drops(source, kept: dict, dropped: list[str]) -> float:
    """GFLOPs of ``source`` cut to ``kept`` with each dropped bottleneck at one channel."""
    narrow = {**kept, **{name: torch.tensor([0]) for name in dropped}}
    return ModelStats.of(prune_keeping(copy.deepcopy(source), narrow)[0], 640).gflops


def channel_map(source, speed_up: float, dropped: list[str]) -> tuple[dict, float]:
    """A channel map that drops the bottlenecks and lands at ``speed_up`` (bisection on the ranking's fraction)."""
    full = ModelStats.of(source, 640).gflops
    low, high = 1 / speed_up, 1.0
    for _ in range(6 if dropped else 0):
        middle = (low + high) / 2
        kept = ranked(source, middle)
        low, high = (middle, high) if gflops_with_drops(source, kept, dropped) < full / speed_up else (low, middle)
    kept = ranked(source, low)
    return {**kept, **{name: torch.tensor([], dtype=torch.long) for name in dropped}}, gflops_with_drops(
        source, kept, dropped)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    source = YOLO(args.model).model.float().eval()
    dropped = bottleneck_norms([int(x) for x in args.drop.split(",") if x])
    start = time.perf_counter()
    if args.no_train:
        kept, gflops = {name: torch.tensor([], dtype=torch.long) for name in dropped}, float("nan")
    else:
        kept, gflops = channel_map(source, args.speed_up, dropped)
    student = copy.deepcopy(source)
    mimicked = {name: channels for name, channels in kept.items() if len(channels)}
    with fading.ChannelFade(student, kept) as fade:
        if args.no_train:
            fade.progress = 1.0
        else:
            images = distillation.distillation_images(args.data, 640, verbose=False)
            distillation.distill(student, source, images, args.epochs, kept=mimicked, verbose=False, fade=fade)
        score = evaluate(student, args.model, args.data)
    print(f"{vars(args)}: mAP50-95 {score:.4f}, {gflops:.2f} GFLOPs ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
