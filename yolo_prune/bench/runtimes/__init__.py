"""The runtimes ``formats=`` can name, and the aliases users may type for them."""

from __future__ import annotations

from .base import LoadOptions, Runner, Runtime, artifact_bytes
from .cuda import TorchCUDA
from .litert import LiteRT
from .ncnn import NCNN
from .onnx import OnnxRuntime
from .openvino import OpenVINO
from .tensorrt import TensorRT
from .torch_cpu import TorchCPU

RUNTIMES: dict[str, type[Runtime]] = {
    cls.key: cls for cls in (TorchCPU, OnnxRuntime, OpenVINO, NCNN, LiteRT, TorchCUDA, TensorRT)
}
ALIASES = {
    "pytorch": "torch",
    "pt": "torch",
    "onnxruntime": "onnx",
    "ort": "onnx",
    "litert": "tflite",
    "engine": "tensorrt",
    "trt": "tensorrt",
    "gpu": "cuda",
}

__all__ = ["ALIASES", "RUNTIMES", "LoadOptions", "Runner", "Runtime", "artifact_bytes"]
