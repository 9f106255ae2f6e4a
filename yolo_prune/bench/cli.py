"""``benchmark_cli``: the ``yolo-prune bench key=value ...`` entry point, with every key and its default."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import PruneError
from .api import benchmark
from .result import BenchResult

CLI_DEFAULTS: dict[str, Any] = {
    "model": None,
    "pruned": None,
    "formats": None,
    "imgsz": 640,
    "data": None,
    "threads": None,
    "runs": 100,
    "warmup": 10,
    "batch": 8,
    "gpu_batch": 32,
    "time_limit": None,
    "ratios": None,
    "speed_ups": None,
    "round_to": 8,
    "importance": "l2",
    "global_pruning": False,
    "project": "runs/prune",
    "name": "bench",
    "exist_ok": False,
    "verbose": True,
}
PRUNE_KEYS = ("round_to", "importance", "global_pruning")


def benchmark_cli(args: Mapping[str, Any]) -> BenchResult:
    """Run ``benchmark`` from ``yolo-prune bench key=value ...`` arguments (keys and defaults: ``CLI_DEFAULTS``).

    ``round_to``, ``importance`` and ``global_pruning`` go to ``prune_yolo`` for sweep points; list values may be
    comma-separated (``formats=onnx,openvino``, ``ratios=0.2,0.3,0.5``, ``pruned=a.pt,b.pt``).

    Args:
        args: Parsed key=value pairs; missing keys take their ``CLI_DEFAULTS`` value.

    Returns:
        The benchmark result (report already written and printed).

    Raises:
        PruneError: For an unknown key, a missing ``model`` or any invalid value.

    Examples:
        >>> benchmark_cli({"model": "yolov8n.pt", "ratios": (0.3, 0.5), "formats": "onnx"})  # doctest: +SKIP
    """
    unknown = sorted(set(args) - set(CLI_DEFAULTS))
    if unknown:
        raise PruneError(f"Unknown key(s) {', '.join(unknown)} for 'bench'. Valid keys: {', '.join(CLI_DEFAULTS)}.")
    values = {**CLI_DEFAULTS, **args}
    if values["model"] in (None, ""):
        raise PruneError("'bench' needs model=..., e.g. 'yolo-prune bench model=yolov8n.pt pruned=yolov8n-pruned.pt'.")
    prune_args = {k: values.pop(k) for k in PRUNE_KEYS}
    model = values.pop("model")
    return benchmark(model, values.pop("pruned"), **values, prune_args=prune_args)
