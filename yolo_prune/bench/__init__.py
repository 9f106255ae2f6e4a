"""Benchmarks of pruned models: latency per runtime, throughput, size, GFLOPs and mAP, with a report and a figure.

Modules, one job each: ``api`` (``benchmark``), ``cli`` (``benchmark_cli``, ``CLI_DEFAULTS``), ``options``
(argument checks), ``models`` (the compared checkpoints, sweep pruning), ``runtimes`` (one module per runtime:
export + native loader), ``exporting`` (cached Ultralytics exports), ``timing`` (interleaved timing), ``accuracy``
(mAP), ``result`` (data), ``report`` (table, markdown, JSON), ``plots`` (PNG), ``machine`` (CPU, versions, load),
``quiet`` (converters' native output; the log level is ``yolo_prune.logs``).
"""

from .api import benchmark
from .cli import CLI_DEFAULTS, benchmark_cli
from .result import BenchResult, Row, Skip

__all__ = ["CLI_DEFAULTS", "BenchResult", "Row", "Skip", "benchmark", "benchmark_cli"]
