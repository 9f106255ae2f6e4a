"""Reach a compute target (a fraction of the source's GFLOPs) instead of a fixed ratio.

Pruned widths move in steps of ``round_to``, so GFLOPs fall in steps of a few percent as the ratio grows. The search
first bisects the ratio to the step that crosses the goal, then walks slot by slot (largest first) from the widths just
above the goal towards those just below it, and keeps whichever candidate lands closest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ultralytics.utils import LOGGER

from .architecture import Slot

MAX_RATIO = 0.95
TOLERANCE = 0.03  # relative distance to the goal that counts as reached
BISECTIONS = 12

Widths = dict[Slot, int]
Evaluate = Callable[[Widths], tuple[float, Any]]


def closest_plan(widths_at: Callable[[float], Widths], evaluate: Evaluate, goal: float) -> Any:
    """Return the plan whose GFLOPs fraction is closest to ``goal``.

    Args:
        widths_at: Widths for a pruning ratio (non-increasing in the ratio).
        evaluate: GFLOPs fraction and plan for given widths.
        goal: Wanted fraction of the source's GFLOPs, in (0, 1).

    Returns:
        The best plan found; a warning is logged when it misses the goal by more than ``TOLERANCE``.
    """
    above, below = _bracket(widths_at, evaluate, goal)
    candidates = [evaluate(w) for w in _interpolate(above, below, evaluate, goal)]
    fraction, plan = min(candidates, key=lambda c: abs(c[0] - goal))
    if abs(fraction - goal) > TOLERANCE * goal:
        LOGGER.warning(f"GFLOPs target {goal:.3f}x not reachable within {TOLERANCE:.0%}: closest is {fraction:.3f}x")
    return plan


def _bracket(widths_at: Callable[[float], Widths], evaluate: Evaluate, goal: float) -> tuple[Widths, Widths]:
    """Bisect the ratio: widths whose fraction is >= goal and the next step's, whose fraction is < goal."""
    lo, hi = 0.0, MAX_RATIO
    if evaluate(widths_at(hi))[0] >= goal:
        return widths_at(hi), widths_at(hi)
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        if evaluate(widths_at(mid))[0] >= goal:
            lo = mid
        else:
            hi = mid
    return widths_at(lo), widths_at(hi)


def _interpolate(above: Widths, below: Widths, evaluate: Evaluate, goal: float) -> list[Widths]:
    """Bisect how many differing slots (largest first) take their narrower width; return the two closest mixes."""
    changed = sorted((s for s in above if above[s] != below[s]), key=lambda s: (-above[s], s.layer, s.kind))

    def mix(k: int) -> Widths:
        return {**above, **{s: below[s] for s in changed[:k]}}

    lo, hi = 0, len(changed)  # evaluate(mix(lo)) >= goal, evaluate(mix(hi)) < goal (or equal mixes)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if evaluate(mix(mid))[0] >= goal:
            lo = mid
        else:
            hi = mid
    return [mix(lo), mix(hi)]
