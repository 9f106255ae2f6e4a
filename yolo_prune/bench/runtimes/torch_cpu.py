"""PyTorch on the CPU: the fused eval model, eager, at batch 1 and at a throughput batch."""

from __future__ import annotations

from pathlib import Path

import torch
from ultralytics.nn.tasks import DetectionModel

from .base import LoadOptions, Runner, Runtime, sample_input
from ...loading import restricted_yolo


def load_fused(pt: Path) -> DetectionModel:
    """The checkpoint's model in float32, Conv+BN fused, in eval mode (what ``YOLO.predict`` runs)."""
    yolo = restricted_yolo(pt)
    return yolo.model.float().fuse(verbose=False).eval()


class TorchCPU(Runtime):
    """Eager PyTorch on the CPU; threads via ``torch.set_num_threads`` (restored by the caller)."""

    key = "torch"
    title = "PyTorch CPU"

    def batches(self, batch: int, gpu_batch: int) -> tuple[int, ...]:
        return (1, batch) if batch > 1 else (1,)

    def version(self) -> str:
        return f"PyTorch {torch.__version__} CPU (eager, fused)"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return pt

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        torch.set_num_threads(options.threads)
        model = load_fused(artifact)
        x = torch.from_numpy(sample_input(options))

        def run() -> object:
            with torch.inference_mode():
                return model(x)

        return run
