"""Interleaved latency measurement: every model runs once per round, so load on a shared machine hits all alike."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .runtimes import Runner

Timer = Callable[[], float]


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one model's timed runs, in milliseconds."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int

    @classmethod
    def of(cls, seconds: list[float]) -> LatencyStats:
        """Summarize run times given in seconds."""
        ms = np.asarray(seconds, dtype=float) * 1e3
        return cls(float(np.median(ms)), float(np.percentile(ms, 90)), float(ms.mean()), float(ms.min()), len(ms))


def time_interleaved(
    runners: Mapping[str, Runner],
    runs: int,
    warmup: int,
    *,
    timer: Timer = time.perf_counter,
    on_round: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Time every runner ``runs`` times, round-robin (A B A B ...), after ``warmup`` untimed rounds.

    Args:
        runners: Label -> callable doing one inference; called in this order within each round.
        runs: Timed rounds (each runner is timed once per round).
        warmup: Untimed rounds before timing (also interleaved).
        timer: Clock in seconds (injectable for tests).
        on_round: Called after every round, warm-up included (progress bars).

    Returns:
        Label -> list of ``runs`` durations in seconds, in round order.

    Examples:
        >>> times = time_interleaved({"a": lambda: None, "b": lambda: None}, runs=3, warmup=1)
        >>> [len(t) for t in times.values()]
        [3, 3]
    """
    times: dict[str, list[float]] = {label: [] for label in runners}
    with _gc_paused():
        for round_index in range(warmup + runs):
            for label, run in runners.items():
                if round_index < warmup:
                    run()
                    continue
                start = timer()
                run()
                times[label].append(timer() - start)
            if on_round is not None:
                on_round()
    return times


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep Python's cyclic garbage collector from pausing inside a timed run."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
