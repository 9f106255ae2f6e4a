"""Run a target's Ultralytics exports in a child process and collect the artifacts they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .results import Precision
from .samples import write_onnx2tf_sample
from .targets import Build

WORKER = Path(__file__).with_name("worker.py")
TF_FORMATS = {"edgetpu", "saved_model", "pb"}  # exports that go through TensorFlow and onnx2tf
LOG_TAIL = 2000  # characters of a crashed export's output kept in its error


@dataclass(frozen=True)
class Artifact:
    """One file or folder an export wrote, or the error that stopped it.

    Attributes:
        format: Ultralytics format of this artifact (the Edge TPU export writes a ``litert`` file and an ``edgetpu`` one).
        precision: Its precision.
        path: Where it is; None when the export failed.
        runs_here: Whether this machine can run it (the compiled Edge TPU model needs a Coral).
        note: Remark for the table.
        error: Why the export failed ("" when it did not).
    """

    format: str
    precision: Precision
    path: Path | None
    runs_here: bool = True
    note: str = ""
    error: str = ""


def run_builds(
    pt: Path, imgsz: int, builds: list[Build], data: Path | None, workdir: Path, samples: list[Path], verbose: bool
) -> list[Artifact]:
    """Export ``pt`` to every build in one child process; return the artifacts in build order.

    Args:
        pt: Absolute path of the checkpoint; artifacts are written next to it, as ``yolo export`` does.
        imgsz: Export image size.
        builds: The exports to run.
        data: Absolute path of the calibration dataset yaml (int8 builds).
        workdir: Private working directory of the child (TensorFlow exports find onnx2tf's sample file there).
        samples: Images the onnx2tf sample file is made from.
        verbose: Show the exporter's output; otherwise it is kept and shown only when the process crashes.

    Returns:
        One artifact per file written (an export that failed gives one artifact with its ``error``).
    """
    if any(b.format in TF_FORMATS for b in builds):
        write_onnx2tf_sample(samples, workdir)
    request = {
        "model": str(pt),
        "imgsz": imgsz,
        "exports": [
            {"format": b.format, "quantize": b.quantize, "data": str(data) if data else None, "options": b.options,
             "compile": b.compile}
            for b in builds
        ],
    }  # fmt: skip
    outcomes = _run_worker(request, workdir, verbose)
    return [artifact for build, outcome in zip(builds, outcomes) for artifact in _artifacts(build, outcome)]


def _run_worker(request: dict, workdir: Path, verbose: bool) -> list[dict]:
    """Run the worker script on ``request``; return its per-export outcomes (all errors if it crashed)."""
    request_file, result_file = workdir / "request.json", workdir / "result.json"
    request_file.write_text(json.dumps(request))
    result_file.unlink(missing_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    command = [sys.executable, str(WORKER), str(request_file), str(result_file)]
    output = None if verbose else subprocess.PIPE
    process = subprocess.run(
        command, cwd=workdir, env=env, stdout=output, stderr=subprocess.STDOUT, text=True, check=False
    )  # its outcome is read from the result file; a crash leaves none
    if result_file.is_file():
        return json.loads(result_file.read_text())["exports"]
    how = f"signal {-process.returncode}" if process.returncode < 0 else f"exit code {process.returncode}"
    tail = f"; its last output:\n{process.stdout[-LOG_TAIL:]}" if process.stdout else ""
    return [{"error": f"the export process died ({how}) before reporting{tail}"}] * len(request["exports"])


def _artifacts(build: Build, outcome: dict) -> list[Artifact]:
    """The artifacts one export produced, described for verification and the table."""
    if "error" in outcome:
        return [Artifact(build.format, build.precision, None, note=build.note, error=outcome["error"])]
    paths = [Path(p) for p in outcome["paths"]]
    if build.format != "edgetpu":
        return [Artifact(build.format, build.precision, paths[0], note=build.note)]
    tflite = Artifact("litert", "int8", paths[0], note="full-integer int8 TFLite (the Edge TPU compiler's input)")
    if len(paths) == 1:
        return [tflite]
    return [tflite, Artifact("edgetpu", "int8", paths[1], runs_here=False, note="runs only on a Coral Edge TPU")]
