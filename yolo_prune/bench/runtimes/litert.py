"""TFLite (LiteRT) on the CPU through ``ai_edge_litert``'s Interpreter (XNNPACK, ``threads`` threads)."""

from __future__ import annotations

from pathlib import Path

from ..exporting import export_with_ultralytics
from .base import LoadOptions, Runner, Runtime, package_version, sample_input


class LiteRT(Runtime):
    """The float32 ``.tflite`` Ultralytics exports with litert-torch (NCHW input), run by the LiteRT interpreter."""

    key = "tflite"
    title = "LiteRT (TFLite) CPU"
    requires = (("litert_torch", "litert-torch"), ("ai_edge_litert", "ai-edge-litert"))

    def version(self) -> str:
        return f"LiteRT {package_version('ai_edge_litert')} CPU (XNNPACK)"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return export_with_ultralytics(pt, "litert", imgsz, batch=batch)

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(artifact), num_threads=options.threads)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        x = sample_input(options)
        if tuple(detail["shape"]) != x.shape:  # a legacy NHWC export
            x = x.transpose(0, 2, 3, 1).copy()
        interpreter.set_tensor(detail["index"], x)
        return interpreter.invoke
