"""Export a checkpoint with Ultralytics' own exporter, the way a user would (``YOLO(pt).export(...)``).

Exports are remembered in ``exports.json`` beside the checkpoint, keyed by the checkpoint's content hash and the
export arguments, so re-running a benchmark in the same run directory (``exist_ok=True``) does not export again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..loading import restricted_yolo
from ..logs import quiet
from .quiet import captured_native_output

CACHE_FILE = "exports.json"


def export_with_ultralytics(pt: Path, fmt: str, imgsz: int, **kwargs: Any) -> Path:
    """Export ``pt`` to ``fmt`` next to it (or reuse the same export from an earlier run) and return its path.

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
    key = json.dumps([_sha256(pt), fmt, imgsz, sorted(kwargs.items())], default=str)
    cache_file = pt.parent / CACHE_FILE
    cache = _read(cache_file)
    if key in cache and Path(cache[key]).exists():
        return Path(cache[key])
    with quiet(), captured_native_output():
        yolo = restricted_yolo(pt)
        out = yolo.export(format=fmt, imgsz=imgsz, verbose=False, **kwargs)
    if not out or not Path(out).exists():
        raise RuntimeError(f"Ultralytics {fmt} export of {pt.name} produced no file")
    cache = {k: v for k, v in _read(cache_file).items() if v != str(out)}  # an overwritten export is stale elsewhere
    cache[key] = str(out)
    cache_file.write_text(json.dumps(cache, indent=1))
    return Path(out)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(cache_file: Path) -> dict[str, str]:
    try:
        return json.loads(cache_file.read_text())
    except (OSError, ValueError):
        return {}
