"""Channel importance criteria, all from torch-pruning, scoring whole DepGraph groups."""

from __future__ import annotations

import torch
import torch_pruning as tp

from ..errors import PruneError

IMPORTANCE = {
    "l1": lambda: tp.importance.GroupMagnitudeImportance(p=1),
    "l2": lambda: tp.importance.GroupMagnitudeImportance(p=2),
    "bn": lambda: tp.importance.BNScaleImportance(),
    "lamp": lambda: tp.importance.LAMPImportance(p=2),
    "random": lambda: tp.importance.RandomImportance(),
    "taylor": lambda: tp.importance.GroupTaylorImportance(),
    "hessian": lambda: tp.importance.GroupHessianImportance(),
}
DATA_DRIVEN = ("taylor", "hessian")  # score with gradients of the detection loss on calibration data


def make_importance(name: str) -> tp.importance.Importance:
    """Return the torch-pruning importance criterion called ``name``.

    Args:
        name: One of ``l1``, ``l2`` (group magnitude), ``bn`` (BatchNorm scale), ``lamp``, ``random``, or the
            data-driven ``taylor`` and ``hessian``, which read ``param.grad`` (see ``calibration``).

    Returns:
        A callable that scores every channel of a pruning group.

    Raises:
        PruneError: For an unknown name.

    Examples:
        >>> scorer = make_importance("l2")
    """
    if name not in IMPORTANCE:
        raise PruneError(f"importance='{name}' is not one of {', '.join(IMPORTANCE)}.")
    return IMPORTANCE[name]()


def score_group(scorer: tp.importance.Importance, group: tp.Group, seed: int) -> torch.Tensor:
    """Score every channel of ``group``; random scores come from ``seed`` so results are reproducible.

    Args:
        scorer: An importance criterion from ``make_importance``.
        group: A full DepGraph pruning group.
        seed: Seed for criteria that draw random numbers.

    Returns:
        A float tensor, one score per channel of the group's root.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        scores = scorer(group)
    return scores.detach().float().cpu()
