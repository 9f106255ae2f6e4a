"""Child process: run Ultralytics' own exporter on a checkpoint, one or more formats in a row.

Run as a plain script (``python worker.py request.json result.json``), so it imports Ultralytics and never
yolo_prune: what it exports, a stock ``yolo export`` exports too. Each target gets its own process, which keeps
TensorFlow (loaded by the Edge TPU path) and its TFLite runtime away from the caller, where they crash the LiteRT
interpreter used for verification.

The request is ``{"model": abs .pt, "imgsz": int, "exports": [{"format", "quantize", "data", "options", "compile"}]}``;
the result is ``{"exports": [{"paths": [...]} | {"error": "..."}]}``, one entry per export, written before exit.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def run_exports(request: dict) -> list[dict]:
    """Run every export of ``request`` in order; an export's exception becomes its ``error`` entry.

    Checkpoints load through Ultralytics' restricted (``weights_only``) loader: ``ULTRALYTICS_SAFE_LOAD`` is set before
    Ultralytics is imported (this process cannot import yolo_prune's ``restricted_loading``).
    """
    os.environ["ULTRALYTICS_SAFE_LOAD"] = "1"
    from ultralytics import YOLO

    outcomes = []
    for spec in request["exports"]:
        try:
            model = YOLO(request["model"])  # fresh per export: the exporter must start from the saved weights
            outcomes.append({"paths": export_one(model, request["imgsz"], spec)})
        except Exception as e:  # report and go on with the next format
            outcomes.append({"error": f"{type(e).__name__}: {e}".strip()})
    return outcomes


def export_one(model, imgsz: int, spec: dict) -> list[str]:
    """Export ``model`` to one format; return the artifact paths (two for a compiled Edge TPU model)."""
    kwargs = {"format": spec["format"], "imgsz": imgsz, "quantize": spec["quantize"], **spec.get("options", {})}
    if spec["quantize"] == 8:
        kwargs["data"] = spec["data"]
    if spec["format"] == "engine":
        kwargs["device"] = 0
    if spec["format"] == "edgetpu":
        return export_edgetpu(model, kwargs, compile=spec.get("compile", True))
    return [str(model.export(**kwargs))]


def export_edgetpu(model, kwargs: dict, compile: bool) -> list[str]:
    """Ultralytics' Edge TPU export; without the compiler it stops at the full-integer int8 TFLite."""
    from ultralytics.engine.exporter import Exporter
    from ultralytics.utils import colorstr

    class FullIntegerTFLiteExporter(Exporter):
        """The stock exporter, minus the Edge TPU compiler call that needs the missing compiler."""

        def export_edgetpu(self, tflite_model, prefix=colorstr("Edge TPU:")):  # noqa: B008
            return str(tflite_model)

    exporter = Exporter if compile else FullIntegerTFLiteExporter
    # Arguments exactly as ``Model.export`` builds them
    custom = {"imgsz": model.model.args.get("imgsz"), "batch": 1, "data": None, "device": None, "verbose": False}
    args = {**model.overrides, **custom, **kwargs, "mode": "export"}
    out = Path(exporter(overrides=args, _callbacks=model.callbacks)(model=model.model))
    tflite = out.with_name(out.name.replace("_edgetpu.tflite", ".tflite"))  # what the compiler was given
    return [str(tflite), str(out)] if compile else [str(out)]


def main(argv: list[str]) -> int:
    """Read the request, export, write the result; exit 0 when the result was written."""
    request_file, result_file = Path(argv[0]), Path(argv[1])
    outcomes = run_exports(json.loads(request_file.read_text()))
    result_file.write_text(json.dumps({"exports": outcomes}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
