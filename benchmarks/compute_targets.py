"""How closely ``speed_up=`` and ``target_gflops=`` are reached (GFLOPs at 640) on every family's n and s scale.

Command:
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/compute_targets.py > benchmarks/results/compute_targets.md
"""

from __future__ import annotations

import platform
import time

from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops

from yolo_prune.pruning.core import PruneOptions, prune_detection_model

MODELS = ("yolov8n", "yolo11n", "yolo26n", "yolov8s", "yolo11s", "yolo26s")
SPEED_UPS = (1.5, 2.0, 3.0)


def measure(name: str, speed_up: float) -> tuple[float, float]:
    """Return the reached GFLOPs ratio base/pruned and the pruning time in seconds."""
    base = DetectionModel(f"{name}.yaml", verbose=False)
    start = time.perf_counter()
    pruned = prune_detection_model(base, PruneOptions(gflops_fraction=1 / speed_up))
    seconds = time.perf_counter() - start
    return get_flops(base, 640) / get_flops(pruned, 640), seconds


def main() -> None:
    print(f"# Compute targets (speed_up = GFLOPs base/pruned at 640)\n\nMachine: {platform.machine()}, "
          f"{platform.python_version()}. Command: `python benchmarks/compute_targets.py`\n")
    print("| model | target | reached | error | within 3% | time (s) |\n|---|---|---|---|---|---|")
    for name in MODELS:
        for speed_up in SPEED_UPS:
            reached, seconds = measure(name, speed_up)
            error = reached / speed_up - 1
            print(f"| {name} | {speed_up:.1f}x | {reached:.3f}x | {error:+.1%} | {abs(error) <= 0.03} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
