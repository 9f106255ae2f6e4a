"""TensorRT fp16 engines (exported by Ultralytics) run through the TensorRT Python API on ``cuda:0``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from ultralytics.nn.backends.base import BaseBackend

from ..exporting import export_with_ultralytics
from .base import LoadOptions, Runner, Runtime, package_version
from .cuda import no_cuda_reason


class TensorRT(Runtime):
    """One static fp16 engine per model and batch (batch 1 and ``gpu_batch``); input and outputs stay on the GPU."""

    key = "tensorrt"
    title = "TensorRT fp16"
    requires = (("tensorrt", "tensorrt"), ("onnx", "onnx"))
    gpu = True

    def _unavailable_extra(self) -> str | None:
        return no_cuda_reason()

    def batches(self, batch: int, gpu_batch: int) -> tuple[int, ...]:
        return (1, gpu_batch) if gpu_batch > 1 else (1,)

    def version(self) -> str:
        return f"TensorRT {package_version('tensorrt')} {torch.cuda.get_device_name(0)} fp16"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        if batch > 1:  # Ultralytics names the engine after the checkpoint: give each batch its own copy
            copy = pt.parent / f"batch{batch}" / pt.name
            copy.parent.mkdir(exist_ok=True)
            shutil.copy2(pt, copy)
            pt = copy
        return export_with_ultralytics(pt, "engine", imgsz, batch=batch, half=True, device=0)

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        import tensorrt as trt

        offset, _ = BaseBackend.engine_header(artifact)  # Ultralytics writes a JSON metadata header first
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(artifact.read_bytes()[offset:])
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize {artifact.name} (built by another TensorRT version?)")
        context = engine.create_execution_context()
        buffers = [_bind(engine, context, i, trt) for i in range(engine.num_io_tensors)]
        stream = torch.cuda.Stream()

        def run(_keep_alive=buffers) -> object:
            if not context.execute_async_v3(stream.cuda_stream):
                raise RuntimeError("TensorRT execution failed")
            stream.synchronize()

        return run


def _bind(engine, context, index: int, trt) -> torch.Tensor:
    """Allocate a device tensor for one engine input/output (random input data) and bind its address."""
    name = engine.get_tensor_name(index)
    shape = tuple(context.get_tensor_shape(name))
    dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
    tensor = torch.rand(shape, device="cuda").to(dtype)
    context.set_tensor_address(name, tensor.data_ptr())
    return tensor
