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


MIN_TIMED_ROUNDS = 3  # a time limit never cuts timing below this
WARMUP_SHARE = 0.25  # share of a time limit that warm-up may use (at least one warm-up round always runs)


def time_interleaved(
    runners: Mapping[str, Runner],
    runs: int,
    warmup: int,
    *,
    time_limit: float | None = None,
    timer: Timer = time.perf_counter,
    on_round: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Time every runner ``runs`` times, round-robin (A B A B ...), after ``warmup`` untimed rounds.

    Args:
        runners: Label -> callable doing one inference; called in this order within each round.
        runs: Timed rounds (each runner is timed once per round).
        warmup: Untimed rounds before timing (also interleaved).
        time_limit: Seconds for warm-up and timing together: warm-up ends early after a quarter of it (one round at
            least) and timing after all of it (three rounds at least), so a stalling runtime cannot hold a run up.
        timer: Clock in seconds (injectable for tests).
        on_round: Called after every round, warm-up included (progress bars).

    Returns:
        Label -> list of durations in seconds, in round order (``runs`` of them unless the time limit cut in).

    Examples:
        >>> times = time_interleaved({"a": lambda: None, "b": lambda: None}, runs=3, warmup=1)
        >>> [len(t) for t in times.values()]
        [3, 3]
    """
    times: dict[str, list[float]] = {label: [] for label in runners}
    start = time.monotonic()
    with _gc_paused():
        for done in range(warmup):
            if done and time_limit is not None and time.monotonic() - start > WARMUP_SHARE * time_limit:
                break
            _round(runners, None, timer, on_round)
        for done in range(runs):
            if done >= MIN_TIMED_ROUNDS and time_limit is not None and time.monotonic() - start > time_limit:
                break
            _round(runners, times, timer, on_round)
    return times


def _round(
    runners: Mapping[str, Runner],
    times: dict[str, list[float]] | None,
    timer: Timer,
    on_round: Callable[[], None] | None,
) -> None:
    """Run every runner once, in order; record each duration into ``times`` unless it is None (warm-up)."""
    for label, run in runners.items():
        if times is None:
            run()
            continue
        start = timer()
        run()
        times[label].append(timer() - start)
    if on_round is not None:
        on_round()


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
