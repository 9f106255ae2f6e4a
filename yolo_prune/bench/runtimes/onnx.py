"""ONNX Runtime, CPU execution provider, with intra-op spinning off so interleaved sessions don't starve each other."""

from __future__ import annotations

from pathlib import Path

from ..exporting import export_with_ultralytics
from .base import LoadOptions, Runner, Runtime, package_version, sample_input


class OnnxRuntime(Runtime):
    """ONNX Runtime ``CPUExecutionProvider``: ``intra_op_num_threads=threads``, one inter-op thread, no spinning.

    Spinning threads of one session slow the next session interleaved with it (measured: 44 -> 70 ms on 2 cores),
    which would hide a speed-up, so ``session.intra_op.allow_spinning`` is 0.
    """

    key = "onnx"
    title = "ONNX Runtime CPU"
    requires = (("onnx", "onnx"), ("onnxslim", "onnxslim"), ("onnxruntime", "onnxruntime"))

    def version(self) -> str:
        return f"ONNX Runtime {package_version('onnxruntime')} CPUExecutionProvider"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return export_with_ultralytics(pt, "onnx", imgsz, batch=batch)

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = options.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(artifact), so, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: sample_input(options)}
        return lambda: session.run(None, feed)
