"""Edge export of a pruned checkpoint (Raspberry Pi, Coral, Jetson, ONNX) through Ultralytics' exporter, each artifact
verified against the PyTorch model it came from.

Modules: ``targets`` (what each target exports), ``toolchains`` (Edge TPU compiler, TensorRT), ``extras`` (the
Python packages each export needs, and the extra that installs them), ``build`` and ``worker`` (the exports, in a
child process), ``quantization`` (int8 ONNX, per channel), ``samples`` (verification images), ``matching`` and
``verification`` (the comparison), ``results`` (the returned rows and the logged table).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from ultralytics.utils import LOGGER

from ..errors import PruneError
from .build import Artifact, run_builds
from .extras import check_installed
from .options import calibration_data, check_options, checkpoint_file
from .quantization import quantize_onnx
from .results import PREFIX, ExportResult, ExportVerificationError, disk_size_mb, log_table
from .samples import sample_images
from .targets import ONNX_OPSET, TARGETS, Plan, plan_target, quantized_here, resolve_target
from .toolchains import Toolchains, coral_supported_here, edgetpu_instructions, tensorrt_instructions
from .verification import Verifier

__all__ = ["TARGETS", "ExportResult", "ExportVerificationError", "export", "verify"]


def export(
    model: str | os.PathLike,
    target: str,
    *,
    imgsz: int = 640,
    half: bool = False,
    int8: bool = False,
    data: str | os.PathLike | None = None,
    opset: int = ONNX_OPSET,
    conf: float = 0.25,
    verify: bool = True,
    strict: bool = True,
    verbose: bool = True,
) -> list[ExportResult]:
    """Export a checkpoint for an edge device with Ultralytics' exporter, then verify every artifact that runs here.

    Targets (see ``yolo_prune.export.targets``):

    - ``rpi``: NCNN and TFLite (``litert``); ``half`` stores NCNN in fp16, ``int8`` quantizes the TFLite.
    - ``coral``: full-integer int8 TFLite, compiled for the Edge TPU when ``edgetpu_compiler`` is installed;
      otherwise the result says the TFLite is ready and gives the command that compiles it.
    - ``jetson``: TensorRT engine (fp16, or int8) with an NVIDIA GPU and TensorRT; otherwise the ONNX that
      ``trtexec`` builds the engine from on the Jetson, with the command.
    - ``onnx``: simplified ONNX at opset 17 (fp16 with ``half``; with ``int8``, Ultralytics' fp32 export quantized
      by ONNX Runtime with one scale per weight channel, calibrated on ``data``'s training images).

    Artifacts are written next to the checkpoint under Ultralytics' names (as ``yolo export`` does); the checkpoint
    itself is only read. Each export runs in a child process that never imports yolo_prune, so what it writes any
    Ultralytics user can write (the int8 ONNX is then quantized with ONNX Runtime, which any user can run too).
    Verification loads each artifact with ``YOLO(file)``, predicts on sample images (``data``'s validation images,
    else generated ones) and matches its detections with the PyTorch model's: same class and IoU > 0.7, agreement =
    F1 of the matches, at least 0.95 for fp32/fp16 and 0.85 for int8. When the PyTorch model detects nothing there
    (an untrained model), the raw prediction tensors are compared instead and the row says so. A table (format, file,
    size, agreement, latency on this CPU, result) is logged.

    Args:
        model: The ``.pt`` checkpoint to export, e.g. the output of ``prune_yolo``.
        target: ``rpi``, ``coral``, ``jetson`` or ``onnx`` (case-insensitive).
        imgsz: Export and verification image size, a multiple of 32.
        half: fp16 where the target's format stores it.
        int8: int8 quantization where the target's format has it; needs ``data`` for calibration.
        data: Dataset yaml whose validation images calibrate int8 (required for int8 and ``coral``) and are the
            verification images.
        opset: ONNX opset of ONNX exports (17 reads on TensorRT 8.5+, ONNX Runtime and OpenCV DNN).
        conf: Confidence threshold of the compared detections.
        verify: Compare every artifact that runs here with the PyTorch model.
        strict: Raise when an export or a verification fails (after logging the table).
        verbose: Show the exporter's output and the table.

    Returns:
        One ``ExportResult`` per artifact, plus ``not built`` rows (with the commands to build them) for what this
        machine cannot build.

    Raises:
        PruneError: For a bad argument or an unknown target (with a suggestion), or when a package the target's
            exports need is missing (naming the extra that installs it: ``pip install "yolo-prune[tflite]"`` or
            ``"yolo-prune[export]"``), before anything is exported.
        ExportVerificationError: A PruneError raised with ``strict`` when an export failed or an artifact disagrees
            with the PyTorch model; its ``results`` holds every row.

    Examples:
        >>> from yolo_prune.export import export
        >>> rows = export("yolov8n-pruned.pt", "rpi", imgsz=320)  # doctest: +SKIP
        >>> export("yolov8n-pruned.pt", "coral", imgsz=320, data="data.yaml")  # doctest: +SKIP
        >>> [r.status for r in export("yolov8n-pruned.pt", "jetson", imgsz=640)]  # no GPU here  # doctest: +SKIP
        ['pass', 'not built']
    """
    target = resolve_target(target)
    pt = checkpoint_file(model)
    check_options(imgsz=imgsz, half=half, int8=int8, opset=opset, conf=conf, verify=verify, strict=strict)
    data_file = calibration_data(data, needed=int8 or target == "coral", target=target)
    if target == "coral" and (reason := coral_supported_here()):
        raise PruneError(f"target=coral: {reason}.")
    if target == "coral" and half and verbose:
        LOGGER.warning(f"{PREFIX}the Edge TPU runs only int8 models; half=True is ignored for target=coral.")
    plan = plan_target(target, half=half, int8=int8, opset=opset, tools=Toolchains.detect())
    check_installed(target, plan.builds)

    with tempfile.TemporaryDirectory(prefix="yolo_prune_export_") as work:
        images, source = sample_images(data_file, imgsz, Path(work))
        artifacts = run_builds(pt, imgsz, plan.builds, data_file, Path(work), images, verbose)
        verifier = Verifier(pt, images, imgsz, conf)
        artifacts = [_quantized_here(a, data_file, imgsz, verifier.task, verbose) for a in artifacts]
        if verbose and verify:
            LOGGER.info(f"{PREFIX}verifying against {pt.name} on {source}")
        results = [verifier.check(a, target) if verify else _unverified(a, target) for a in artifacts]
    not_built = _not_built(plan, artifacts, int8)
    results += not_built
    if verbose:
        log_table(results, (pt, verifier.reference().latency_ms) if verify else None)
        for row in not_built:
            LOGGER.warning(f"{PREFIX}{row.note}")
    failed = [r for r in results if not r.passed]
    if strict and failed:
        names = ", ".join(f"{r.format} {r.precision}" for r in failed)
        raise ExportVerificationError(f"Export target={target} failed for {names}: see the table above.", results)
    return results


def verify(
    model: str | os.PathLike,
    artifact: str | os.PathLike,
    *,
    imgsz: int = 640,
    int8: bool = False,
    data: str | os.PathLike | None = None,
    conf: float = 0.25,
) -> ExportResult:
    """Verify any artifact exported from ``model`` (e.g. by a stock ``yolo export``) against the checkpoint.

    Args:
        model: The ``.pt`` checkpoint the artifact was exported from.
        artifact: The exported file or folder (``.onnx``, ``_openvino_model/``, ``_ncnn_model/``, ``.tflite``...).
        imgsz: The export image size.
        int8: The artifact is int8 (passes at agreement 0.85 instead of 0.95).
        data: Dataset yaml whose validation images to compare on (default: generated images).
        conf: Confidence threshold of the compared detections.

    Returns:
        The verification row (``target`` is empty); its ``status`` is ``pass`` or ``fail`` (``unverified`` when
        nothing could be compared).

    Examples:
        >>> from ultralytics import YOLO
        >>> from yolo_prune.export import verify
        >>> onnx = YOLO("yolov8n-pruned.pt").export(format="openvino", imgsz=320)  # doctest: +SKIP
        >>> verify("yolov8n-pruned.pt", onnx, imgsz=320).agreement  # doctest: +SKIP
        1.0
    """
    from ultralytics.nn.autobackend import AutoBackend

    pt = checkpoint_file(model)
    check_options(imgsz=imgsz, half=False, int8=int8, opset=ONNX_OPSET, conf=conf, verify=True, strict=True)
    path = Path(artifact)
    if not path.exists():
        raise PruneError(f"Artifact '{artifact}' not found.")
    data_file = calibration_data(data, needed=False, target="")
    fmt = AutoBackend._model_type(str(path))  # Ultralytics' own suffix -> format rule
    with tempfile.TemporaryDirectory(prefix="yolo_prune_verify_") as work:
        images, _ = sample_images(data_file, imgsz, Path(work))
        return Verifier(pt, images, imgsz, conf).check(Artifact(fmt, "int8" if int8 else "fp32", path), target="")


def _quantized_here(artifact: Artifact, data: Path | None, imgsz: int, task: str, verbose: bool) -> Artifact:
    """An int8 ONNX arrives as Ultralytics' fp32 export (``Build.quantized_here``): quantize it per channel."""
    if not quantized_here(artifact.format, artifact.precision) or artifact.path is None:
        return artifact
    if verbose:
        LOGGER.info(f"{PREFIX}quantizing {artifact.path.name} to int8 (ONNX Runtime, per channel)...")
    try:
        path = quantize_onnx(artifact.path, data, imgsz, task)
    except Exception as e:  # ONNX Runtime's errors, unreadable calibration images: the row says why
        return replace(artifact, path=None, error=f"int8 quantization failed: {type(e).__name__}: {e}")
    return replace(artifact, path=path, note="per-channel int8 (ONNX Runtime), calibrated on training images")


def _unverified(artifact: Artifact, target: str) -> ExportResult:
    """Row of an artifact that was not verified (verify=False)."""
    status, note = ("fail", f"export failed: {artifact.error}") if artifact.error else ("unverified", "verify=False")
    size = None if artifact.path is None else disk_size_mb(artifact.path)
    return ExportResult(target, artifact.format, artifact.precision, artifact.path, status, size, note=note)


def _not_built(plan: Plan, artifacts: list[Artifact], int8: bool) -> list[ExportResult]:
    """Rows for what this machine cannot build (Edge TPU model, TensorRT engine), with the commands that build it."""
    rows = []
    built = {a.format: a for a in artifacts if a.path is not None}
    if plan.target == "coral" and "edgetpu" not in built and "litert" in built:
        note = edgetpu_instructions(built["litert"].path)
        rows.append(ExportResult(plan.target, "edgetpu", "int8", None, "not built", note=note))
    if plan.target == "jetson" and plan.tensorrt_missing and "onnx" in built:
        note = tensorrt_instructions(built["onnx"].path, plan.tensorrt_missing, int8)
        rows.append(ExportResult(plan.target, "engine", "int8" if int8 else "fp16", None, "not built", note=note))
    return rows
