"""Ablations on the real COCO yolov8n: one pruning choice changed at a time, mAP50-95 with no training at all.

Each spec is a set of ``PruneOptions`` fields plus ``speed_up`` (or ``ratio``) and ``comp`` (data-free compensation,
default on); ``importance='fisher'`` scores on 32 calibration images. ``--layers`` instead prunes one yaml layer at a
time at ``--layer-ratio`` (where the loss sits). mAP is measured at 640 px on the measuring split. Run from the
repository root with ``../shared`` (see REAL_DATA.md there); each line prints as it is measured:

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_ablations.py \\
        "speed_up=1.25,importance='l2',global_pruning=False" "speed_up=1.25,importance='damage',global_pruning=True"
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_ablations.py --layers --layer-ratio 0.3
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from ultralytics import YOLO  # noqa: E402
from ultralytics.utils import LOGGER  # noqa: E402
from ultralytics.utils.torch_utils import get_flops  # noqa: E402

from yolo_prune.pruning.compensation import compensate_removed_channels  # noqa: E402
from yolo_prune.pruning.core import PruneOptions, prune_with_channel_map  # noqa: E402
from yolo_prune.recovery.calibration import calibration_batches  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
LAYERS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 18, 19, 21, 22)


def evaluate(model, weights: str, data: str) -> float:
    holder = YOLO(weights)
    holder.model = model.float().eval()
    level = LOGGER.level
    LOGGER.setLevel(logging.ERROR)
    try:
        metrics = holder.val(data=data, imgsz=640, batch=16, device="cpu", workers=0, plots=False, verbose=False,
                             half=False)
    finally:
        LOGGER.setLevel(level)
    return float(metrics.box.map)


def measure(source, options: PruneOptions, compensate: bool, args: argparse.Namespace) -> tuple[float, float, float]:
    start = time.perf_counter()
    pruned, kept = prune_with_channel_map(source, options)
    if compensate:
        compensate_removed_channels(pruned, source, kept)
    seconds = time.perf_counter() - start
    return get_flops(pruned, 640) / get_flops(source, 640), evaluate(pruned, args.model, args.data), seconds


def options_from(spec: str, calibration) -> tuple[PruneOptions, bool]:
    fields = eval(f"dict({spec})", {})  # noqa: S307 - the benchmark's own command line
    compensate = fields.pop("comp", True)
    speed_up = fields.pop("speed_up", None)
    if fields.get("importance") == "fisher":
        fields["calibration"] = calibration
    options = PruneOptions(**fields)
    return (replace(options, gflops_fraction=1 / speed_up) if speed_up else options), compensate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("specs", nargs="*")
    p.add_argument("--model", default=str(SHARED / "models" / "yolov8n-coco.pt"))
    p.add_argument("--data", default=str(SHARED / "datasets" / "coco128" / "split.yaml"))
    p.add_argument("--layers", action="store_true")
    p.add_argument("--layer-ratio", type=float, default=0.3)
    p.add_argument("--importance", default="damage")
    args = p.parse_args()
    source = YOLO(args.model).model.float().eval()
    if args.layers:
        for layer in LAYERS:
            options = PruneOptions(0.0, args.importance, layer_ratios={layer: args.layer_ratio})
            flops, score, _ = measure(source, options, True, args)
            print(f"layer {layer:2d} alone at {args.layer_ratio}: GFLOPs x{flops:.3f} mAP50-95 {score:.3f}", flush=True)
    calibration = calibration_batches(args.data, 640, images=32) if any("fisher" in s for s in args.specs) else None
    for spec in args.specs:
        options, compensate = options_from(spec, calibration)
        flops, score, seconds = measure(source, options, compensate, args)
        print(f"{spec}: GFLOPs x{flops:.3f} mAP50-95 {score:.3f} ({seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
