"""Export a checkpoint with Ultralytics' own exporter, the way a user would (``YOLO(pt).export(...)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ultralytics import YOLO

from .quiet import quiet


def export_with_ultralytics(pt: Path, fmt: str, imgsz: int, **kwargs: Any) -> Path:
    """Export ``pt`` to ``fmt`` next to it and return the exported file or folder.

    Args:
        pt: The checkpoint; the export is written beside it, named after its stem.
        fmt: Ultralytics export format (``onnx``, ``openvino``, ``ncnn``, ``litert``, ``engine``).
        imgsz: Square input size baked into the export.
        **kwargs: Further Ultralytics export arguments (``batch``, ``half``, ``device``...).

    Returns:
        Path of the export.

    Raises:
        RuntimeError: If Ultralytics reports no output.
    """
    with quiet():
        out = YOLO(str(pt), task="detect").export(format=fmt, imgsz=imgsz, verbose=False, **kwargs)
    if not out or not Path(out).exists():
        raise RuntimeError(f"Ultralytics {fmt} export of {pt.name} produced no file")
    return Path(out)
