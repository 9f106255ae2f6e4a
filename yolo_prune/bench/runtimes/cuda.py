"""PyTorch on a CUDA GPU in fp16, replayed from a captured CUDA graph (torch.compile when capture fails).

Eager PyTorch on a large GPU is launch-bound for small models (yolov8n: about 5.8 ms at batch 1 whatever its width),
so eager timings would show no pruning gain; a CUDA graph replays every kernel with one launch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from ultralytics.utils import LOGGER

from .base import LoadOptions, Runner, Runtime
from .torch_cpu import load_fused

GRAPH_WARMUP = 3  # eager runs on a side stream before capture (cuDNN autotuning, lazy allocations, Detect anchors)


def no_cuda_reason() -> str | None:
    """Why the GPU path cannot run here, or None when a CUDA device is usable."""
    if not torch.cuda.is_available():
        return (
            "no CUDA device (torch.cuda.is_available() is False); GPU rows need an NVIDIA GPU and a CUDA build of torch"
        )
    return None


class TorchCUDA(Runtime):
    """PyTorch fp16 on ``cuda:0`` at batch 1 and ``gpu_batch``; the input stays on the device (model time only)."""

    key = "cuda"
    title = "PyTorch CUDA fp16"
    gpu = True

    def __init__(self) -> None:
        self.mode = "CUDA graph"

    def _unavailable_extra(self) -> str | None:
        return no_cuda_reason()

    def batches(self, batch: int, gpu_batch: int) -> tuple[int, ...]:
        return (1, gpu_batch) if gpu_batch > 1 else (1,)

    def version(self) -> str:
        return f"PyTorch {torch.__version__} {torch.cuda.get_device_name(0)} fp16 ({self.mode})"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return pt

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        model = load_fused(artifact).half().cuda()
        x = torch.rand(options.batch, 3, options.imgsz, options.imgsz, device="cuda", dtype=torch.half)
        try:
            return _graph_runner(model, x)
        except RuntimeError as e:  # an op that syncs with the host cannot be captured
            LOGGER.warning(f"CUDA graph capture failed ({e}); timing torch.compile(mode='reduce-overhead') instead")
            self.mode = "torch.compile reduce-overhead"
            return _compiled_runner(model, x)


def _graph_runner(model: torch.nn.Module, x: torch.Tensor) -> Runner:
    """Capture one forward pass into a CUDA graph; the runner replays it and waits for the GPU."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.no_grad():
        with torch.cuda.stream(stream):
            for _ in range(GRAPH_WARMUP):
                model(x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            output = model(x)

    def run(_keep_alive=(output, x)) -> object:
        graph.replay()
        torch.cuda.synchronize()

    return run


def _compiled_runner(model: torch.nn.Module, x: torch.Tensor) -> Runner:
    """torch.compile with CUDA graphs (``reduce-overhead``); compiled during the caller's warm-up runs."""
    compiled = torch.compile(model, mode="reduce-overhead")

    def run() -> object:
        with torch.no_grad():
            y = compiled(x)
        torch.cuda.synchronize()
        return y

    return run
