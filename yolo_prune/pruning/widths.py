"""Decide how many channels every free slot keeps: uniformly per group, or ranked globally across layers."""

from __future__ import annotations

import math
from collections import defaultdict

import torch

from .architecture import Slot
from .groups import ChannelGroup

MAX_GROUP_RATIO = 0.9  # global pruning never removes more than this share of one slot's channels


def round_width(width: float, original: int, round_to: int) -> int:
    """Round ``width`` to the nearest multiple of ``round_to``, at least ``round_to`` and at most ``original``.

    Args:
        width: Wanted number of channels.
        original: Channels before pruning (never exceeded; a slot narrower than ``round_to`` keeps its width).
        round_to: Channel multiple.

    Returns:
        The number of channels to keep.
    """
    return min(original, max(round_to, math.floor(width / round_to + 0.5) * round_to))


def uniform_widths(
    original: dict[Slot, int], ratio: float, round_to: int, layer_ratios: dict[int, float] | None = None
) -> dict[Slot, int]:
    """Remove ``ratio`` of every slot's channels (torch-pruning's per-group meaning of a ratio).

    Args:
        original: Every free slot's width before pruning.
        ratio: Share of channels removed from slots of layers not in ``layer_ratios``.
        round_to: Channel multiple.
        layer_ratios: Per yaml layer index ratio (the Detect index covers its cls branch); 0 leaves a layer as is.

    Returns:
        Width for every slot.
    """
    layer_ratios = layer_ratios or {}
    return {
        slot: width if layer_ratios.get(slot.layer, ratio) == 0 else
        round_width(width * (1 - layer_ratios.get(slot.layer, ratio)), width, round_to)
        for slot, width in original.items()
    }


def global_widths(
    original: dict[Slot, int],
    groups: list[ChannelGroup],
    ratio: float,
    round_to: int,
    cost_exponent: float = 1.0,
    layer_adaptive: bool = False,
) -> dict[Slot, int]:
    """Remove ``ratio`` of all slot channels, the least important first, ranked across layers.

    Scores are the criterion's group scores divided by the compute one channel of the slot costs (its groups'
    ``cost``), so the ranking removes the least damage per GFLOP saved. A slot fed by two groups (the two halves of a C2f stem)
    counts a channel position as kept when its mean score passes the threshold. No slot loses more than
    ``MAX_GROUP_RATIO`` of its channels or drops below ``round_to``.

    Args:
        original: Every free slot's width before pruning.
        groups: Scored groups; those with a slot decide its ranking.
        ratio: Share of all slot channels to remove.
        round_to: Channel multiple.
        cost_exponent: Rank by ``score / cost ** cost_exponent``: 1 is damage per GFLOP; above 1 the ranking
            leans further towards the channels that save the most compute.
        layer_adaptive: Rank each group's channels by ``layer_adaptive_scores`` (their share of the damage of what
            the group keeps) instead of their absolute scores.

    Returns:
        Width for every slot.
    """
    per_slot: dict[Slot, list[torch.Tensor]] = defaultdict(list)
    for group in groups:
        if group.slot in original:
            scores = torch.sort(group.scores, descending=True).values
            per_slot[group.slot].append(layer_adaptive_scores(scores) if layer_adaptive else scores)
    costs = slot_costs(original, groups)
    ranked = {slot: torch.stack(scores).mean(0) / costs[slot] ** cost_exponent for slot, scores in per_slot.items()}
    pool = torch.cat(list(ranked.values())) if ranked else torch.zeros(0)
    n_remove = int(ratio * len(pool))
    threshold = torch.sort(pool).values[n_remove - 1] if n_remove else -math.inf
    widths = {}
    for slot, width in original.items():
        kept = int((ranked[slot] > threshold).sum()) if slot in ranked else math.ceil(width * (1 - ratio))
        kept = max(kept, math.ceil(width * (1 - MAX_GROUP_RATIO)))
        widths[slot] = round_width(kept, width, round_to)
    return widths


def layer_adaptive_scores(descending: torch.Tensor) -> torch.Tensor:
    """LAMP's normalisation (Lee et al. 2021) of one group's channel scores, sorted largest first: each score over the
    sum of the scores at least as large (its share of the damage of the channels kept up to it), so every group's
    top channel scores 1 and a group's place in the ranking depends on how its damage is spread, not on its scale.

    Examples:
        >>> layer_adaptive_scores(torch.tensor([3.0, 1.0]))
        tensor([1.0000, 0.2500])
    """
    return descending / torch.cumsum(descending.double(), 0).clamp_min(1e-30).to(descending.dtype)


def slot_costs(original: dict[Slot, int], groups: list[ChannelGroup]) -> dict[Slot, float]:
    """Compute one channel of each slot costs: the summed per-channel cost of the groups it sizes (never zero)."""
    costs = dict.fromkeys(original, 0.0)
    for group in groups:
        if group.slot in costs:
            costs[group.slot] += group.cost
    floor = 1e-9 * max(max(costs.values(), default=1.0), 1.0)
    return {slot: max(cost, floor) for slot, cost in costs.items()}
