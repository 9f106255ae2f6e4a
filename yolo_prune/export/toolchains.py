"""Device toolchains an export may need (Edge TPU compiler, TensorRT), and what to tell the user without them."""

from __future__ import annotations

import importlib.util
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

EDGETPU_DOCS = "https://coral.ai/docs/edgetpu/compiler/"


@dataclass(frozen=True)
class Toolchains:
    """What this machine can build beyond plain CPU formats.

    Attributes:
        edgetpu_compiler: Path of the Edge TPU compiler, or None.
        tensorrt_missing: Why a TensorRT engine cannot be built here, or "" when it can.
    """

    edgetpu_compiler: str | None
    tensorrt_missing: str

    @classmethod
    def detect(cls) -> Toolchains:
        """Look for the Edge TPU compiler and for an NVIDIA GPU with TensorRT, without importing TensorRT."""
        return cls(find_edgetpu_compiler(), tensorrt_missing_reason())


def find_edgetpu_compiler() -> str | None:
    """The ``edgetpu_compiler`` on PATH, or the copy Ultralytics unpacks into its config folder, if any.

    Examples:
        >>> from yolo_prune.export.toolchains import find_edgetpu_compiler
        >>> find_edgetpu_compiler()  # None unless the Edge TPU compiler is installed  # doctest: +SKIP
    """
    from ultralytics.utils import USER_CONFIG_DIR

    if found := shutil.which("edgetpu_compiler"):
        return found
    bundled = USER_CONFIG_DIR / "edgetpu-compiler" / "usr" / "bin" / "edgetpu_compiler_bin" / "edgetpu_compiler"
    return str(bundled) if bundled.is_file() else None


def tensorrt_missing_reason() -> str:
    """Why no TensorRT engine can be built on this machine, or "" when an NVIDIA GPU and TensorRT are present.

    Examples:
        >>> from yolo_prune.export.toolchains import tensorrt_missing_reason
        >>> tensorrt_missing_reason()  # e.g. 'no NVIDIA GPU is visible to PyTorch'  # doctest: +SKIP
    """
    import torch

    if not torch.cuda.is_available():
        return "no NVIDIA GPU is visible to PyTorch (torch.cuda.is_available() is False)"
    if importlib.util.find_spec("tensorrt") is None:
        return "the 'tensorrt' Python package is not installed (on a Jetson it comes with JetPack)"
    return ""


def coral_supported_here() -> str:
    """Why Ultralytics' Edge TPU path cannot run on this machine, or "" when it can (Linux x86_64 only)."""
    if platform.system() != "Linux" or platform.machine() not in {"x86_64", "AMD64"}:
        return f"Ultralytics' Edge TPU export runs only on Linux x86_64, not {platform.system()} {platform.machine()}"
    return ""


def edgetpu_instructions(tflite: Path) -> str:
    """Tell the user that the full-integer TFLite is ready and how to compile it for the Coral Edge TPU.

    Args:
        tflite: The full-integer int8 ``.tflite`` written by the export.

    Returns:
        A message naming the file and the exact ``edgetpu_compiler`` command.
    """
    compiled = tflite.with_name(f"{tflite.stem}_edgetpu.tflite")
    return (
        f"Edge TPU compiler not found, so no Edge TPU model was compiled. The full-integer int8 TFLite is ready: "
        f"{tflite}. On a Linux x86_64 machine with the compiler ({EDGETPU_DOCS}), run "
        f"`cd {tflite.parent} && edgetpu_compiler -s {tflite.name}`; it writes {compiled.name} for the Coral."
    )


def tensorrt_instructions(onnx: Path, reason: str, int8: bool) -> str:
    """Tell the user why no engine was built and how to build it on the Jetson from the ONNX written here.

    Args:
        onnx: The ONNX file TensorRT will consume.
        reason: Why TensorRT is unavailable here (see ``tensorrt_missing_reason``).
        int8: Whether an int8 engine was asked for (it needs calibration on the device).

    Returns:
        A message with the exact ``trtexec`` command (and, for int8, the calibrating Ultralytics command).
    """
    engine = onnx.with_suffix(".engine")
    text = (
        f"TensorRT engine not built: {reason}. Engines are tied to the GPU and TensorRT version that build them, so "
        f"build it on the Jetson from the ONNX written here ({onnx}): "
        f"`trtexec --onnx={onnx.name} --saveEngine={engine.name} --fp16`."
    )
    if int8:
        text += (
            " For int8, calibrate on the Jetson with Ultralytics instead: "
            f"`yolo export model={onnx.with_suffix('.pt').name} format=engine quantize=8 data=<your data.yaml>`."
        )
    return text
