"""Check and normalize ``benchmark`` arguments once, with messages that say what to pass instead."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from ultralytics import YOLO

from ..errors import PruneError
from ..loading import ModelSource
from .runtimes import ALIASES, RUNTIMES

DEFAULT_FORMATS = ("torch", "onnx")


def parse_formats(formats: str | Sequence[str] | None) -> list[str]:
    """Runtime keys for ``formats`` (comma-separated string or sequence), aliases resolved, duplicates dropped.

    None means ``torch,onnx``, plus ``cuda`` when a CUDA device is present.

    Raises:
        PruneError: For an unknown format (with the closest valid name) or an empty list.
    """
    if formats is None:
        return [*DEFAULT_FORMATS, *(["cuda"] if torch.cuda.is_available() else [])]
    words = _split(formats)
    keys: list[str] = []
    for word in words:
        key = ALIASES.get(word.lower(), word.lower())
        if key not in RUNTIMES:
            close = difflib.get_close_matches(word.lower(), [*RUNTIMES, *ALIASES], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise PruneError(f"Unknown format '{word}'.{hint} Valid formats: {', '.join(RUNTIMES)}.")
        if key not in keys:
            keys.append(key)
    if not keys:
        raise PruneError(f"formats is empty; name at least one of {', '.join(RUNTIMES)}.")
    return keys


def _split(value: str | Sequence[Any]) -> list[str]:
    """Words of a comma-separated string (brackets allowed) or a sequence."""
    if isinstance(value, str):
        return [w.strip() for w in value.strip("[]() ").split(",") if w.strip()]
    return [str(w).strip() for w in value if str(w).strip()]


def parse_pruned(pruned: ModelSource | Sequence[ModelSource] | None) -> list[ModelSource]:
    """The pruned models as a list; a comma-separated string names several files."""
    if pruned is None:
        return []
    if isinstance(pruned, str):
        return _split(pruned)
    if isinstance(pruned, (os.PathLike, YOLO, nn.Module)):
        return [pruned]
    return list(pruned)


def parse_values(
    name: str, value: float | str | Sequence[float] | None, low: float, high: float | None
) -> tuple[float, ...]:
    """Sweep values (``ratios`` in (0, 1), ``speed_ups`` above 1) as a tuple of floats.

    Raises:
        PruneError: For a value that is not a number in range.
    """
    if value is None:
        return ()
    items = _split(value) if isinstance(value, str) else [value] if isinstance(value, (int, float)) else list(value)
    out = []
    for item in items:
        try:
            number = float(item)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(item, bool) or not (number > low and (high is None or number < high)):
            span = f"strictly between {low:g} and {high:g}" if high is not None else f"above {low:g}"
            raise PruneError(f"{name} has {item!r}; every value must be a number {span}.")
        out.append(number)
    return tuple(out)


def check_int(name: str, value: Any, minimum: int, multiple: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (and a multiple of ``multiple``), else PruneError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value % multiple:
        extra = f" and a multiple of {multiple}" if multiple > 1 else ""
        raise PruneError(f"{name}={value!r} must be an integer >= {minimum}{extra}.")
    return value


def check_seconds(name: str, value: Any) -> float | None:
    """A positive number of seconds, or None; else PruneError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PruneError(f"{name}={value!r} must be a positive number of seconds (or None for no limit).")
    return float(value)


SWEEP_OWNED = ("ratio", "speed_up", "target_gflops", "save", "overwrite", "imgsz", "verbose")


def check_prune_args(prune_args: Mapping[str, Any] | None) -> dict[str, Any]:
    """Extra ``prune_yolo`` arguments for sweep points, minus those the sweep sets itself (else PruneError)."""
    args = dict(prune_args or {})
    owned = sorted(set(args) & set(SWEEP_OWNED))
    if owned:
        raise PruneError(
            f"prune_args may not set {', '.join(owned)}: the sweep sets them (use ratios=/speed_ups= and imgsz=)."
        )
    return args
