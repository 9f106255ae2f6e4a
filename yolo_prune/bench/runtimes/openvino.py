"""OpenVINO on the CPU through ``openvino.Core`` directly (latency hint, one stream, ``threads`` threads)."""

from __future__ import annotations

from pathlib import Path

from ..exporting import export_with_ultralytics
from .base import LoadOptions, Runner, Runtime, package_version, sample_input


class OpenVINO(Runtime):
    """OpenVINO CPU plugin; the inference precision it chose (f32, or bf16 on CPUs with AMX) goes into the report."""

    key = "openvino"
    title = "OpenVINO CPU"
    requires = (("openvino", "openvino"),)

    def __init__(self, precision: str | None = None) -> None:
        """Args: precision: ``INFERENCE_PRECISION_HINT`` to force (``f32``, ``bf16``); None keeps the default."""
        self.forced = precision
        self.precision = ""

    def version(self) -> str:
        detail = f", inference precision {self.precision}" if self.precision else ""
        return f"OpenVINO {package_version('openvino').split('-')[0]} CPU{detail}"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return export_with_ultralytics(pt, "openvino", imgsz, batch=batch)

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        import openvino as ov

        core = ov.Core()
        xml = next(artifact.glob("*.xml"))
        config = {"INFERENCE_NUM_THREADS": options.threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        if self.forced:
            config["INFERENCE_PRECISION_HINT"] = self.forced
        compiled = core.compile_model(core.read_model(xml), "CPU", config)
        precision = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.precision = precision.to_string() if hasattr(precision, "to_string") else str(precision)
        request = compiled.create_infer_request()
        request.set_input_tensor(ov.Tensor(sample_input(options)))
        return request.infer
