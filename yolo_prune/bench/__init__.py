"""Benchmarks of pruned models: latency per runtime, throughput, size, GFLOPs and mAP, with a report and a figure.

Modules, one job each: ``api`` (``benchmark``, ``benchmark_cli``), ``options`` (argument checks), ``models`` (the
compared checkpoints, sweep pruning), ``runtimes`` (one module per runtime: export + native loader), ``timing``
(interleaved timing), ``accuracy`` (mAP), ``result`` (data), ``report`` (table, markdown, JSON), ``plots`` (PNG),
``machine`` (CPU, versions, load).
"""

from .api import CLI_DEFAULTS, benchmark, benchmark_cli
from .result import BenchResult, Row, Skip

__all__ = ["CLI_DEFAULTS", "BenchResult", "Row", "Skip", "benchmark", "benchmark_cli"]
