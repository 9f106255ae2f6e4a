"""NCNN on the CPU through ``ncnn.Net`` directly (Vulkan off, ``threads`` OpenMP threads)."""

from __future__ import annotations

from pathlib import Path

from ..exporting import export_with_ultralytics
from .base import LoadOptions, Runner, Runtime, package_version, sample_input


class NCNN(Runtime):
    """NCNN CPU inference of the PNNX export Ultralytics writes (``model.ncnn.param`` / ``model.ncnn.bin``).

    NCNN's Python Mat has no batch axis: only batch 1 is timed.
    """

    key = "ncnn"
    title = "NCNN CPU"
    requires = (("ncnn", "ncnn"), ("pnnx", "pnnx"))

    def version(self) -> str:
        return f"NCNN {package_version('ncnn')} CPU"

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        return export_with_ultralytics(pt, "ncnn", imgsz)

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        import ncnn

        net = ncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.num_threads = options.threads
        if net.load_param(str(artifact / "model.ncnn.param")) or net.load_model(str(artifact / "model.ncnn.bin")):
            raise RuntimeError(f"NCNN could not load {artifact}")
        image = sample_input(options)[0].copy()  # CHW; the Mat may share this memory, so keep it alive in the closure
        mat, inp, outs = ncnn.Mat(image), net.input_names()[0], sorted(net.output_names())

        def run(_keep_alive=image) -> object:
            with net.create_extractor() as ex:
                ex.input(inp, mat)
                return [ex.extract(name)[1] for name in outs]

        return run
