"""Check what ``export`` and ``verify`` are given, once, with messages that say what to pass instead."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import PruneError


def checkpoint_file(model: str | os.PathLike) -> Path:
    """The absolute path of an existing ``.pt`` checkpoint, or a PruneError that says what is wrong."""
    if not isinstance(model, (str, os.PathLike)):
        raise PruneError(f"model must be the path of a .pt checkpoint, not {type(model).__name__}.")
    path = Path(model).expanduser().resolve()
    if path.suffix.lower() != ".pt":
        raise PruneError(f"model='{model}' is not a PyTorch checkpoint (.pt); export starts from the .pt file.")
    if not path.is_file():
        raise PruneError(f"Checkpoint '{model}' not found.")
    return path


def calibration_data(data: str | os.PathLike | None, *, needed: bool, target: str) -> Path | None:
    """The absolute path of the dataset yaml (or classification folder), or None; PruneError when int8 needs one and
    there is none."""
    if data is None:
        if needed:
            why = "the Edge TPU runs only int8 models" if target == "coral" else "int8=True"
            raise PruneError(
                f"target={target}: {why}, and int8 calibration needs images: pass data=<dataset yaml> (its "
                "validation images calibrate the quantization and verify the export)."
            )
        return None
    path = Path(data).expanduser().resolve()
    if not path.exists():
        raise PruneError(f"data='{data}' not found; pass the path of a local dataset yaml (a folder for classify).")
    return path


def check_options(*, imgsz, half, int8, opset, conf, verify, strict) -> None:
    """Raise PruneError for an option of the wrong type or out of range."""
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
        raise PruneError(f"imgsz={imgsz!r} must be a positive multiple of 32 (the model's largest stride).")
    for name, value in {"half": half, "int8": int8, "verify": verify, "strict": strict}.items():
        if not isinstance(value, bool):
            raise PruneError(f"{name}={value!r} must be True or False.")
    if isinstance(opset, bool) or not isinstance(opset, int) or not 11 <= opset <= 21:
        raise PruneError(
            f"opset={opset!r} must be an ONNX opset from 11 to 21 (17 suits TensorRT 8.5+ and most runtimes)."
        )
    if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not 0 < conf < 1:
        raise PruneError(f"conf={conf!r} must be a number strictly between 0 and 1.")
