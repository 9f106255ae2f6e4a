"""Channel pruning of a YOLO DetectionModel into a stock model: DepGraph groups, yaml widths, stock rebuild."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch
import torch_pruning as tp
from ultralytics.nn.tasks import DetectionModel

from .architecture import Slot, build_from_yaml, check_supported, current_widths, pruned_yaml
from .groups import ChannelGroup, build_graph, collect_groups
from .importance import make_importance
from .surrogate import join_stems, split_stems
from .widths import global_widths, uniform_widths

_SPLIT_STEM = re.compile(r"\.cv1[ab]\.conv$")


@dataclass(frozen=True)
class PruneOptions:
    """Validated pruning options (see ``prune_yolo`` for their meaning)."""

    ratio: float
    importance: str = "l2"
    global_pruning: bool = False
    round_to: int = 8


def prune_detection_model(source: DetectionModel, options: PruneOptions) -> DetectionModel:
    """Return a pruned stock copy of ``source``; ``source`` itself is not modified.

    Steps: split C2f stems so DepGraph maps channels correctly, score every coupled group, decide each yaml width,
    remove the least important channels group by group, join the stems, then rebuild the model from the new yaml
    with stock Ultralytics and ``load`` the pruned weights into it, exactly as ``yolo train`` will.

    Args:
        source: A supported detection model (any dtype or device).
        options: Pruning options.

    Returns:
        A float32 CPU ``DetectionModel`` in eval mode whose yaml describes its pruned widths.
    """
    check_supported(source)
    work = copy.deepcopy(source).float().cpu()
    yaml_slots = current_widths(work)
    split_stems(work)
    graph = build_graph(work)
    groups = collect_groups(work, graph, make_importance(options.importance), set(yaml_slots))
    original = {**_prunable(yaml_slots, groups), **_head_widths(groups)}
    widths = _decide(original, groups, options)
    cfg = pruned_yaml(source, {**yaml_slots, **widths})
    target = build_from_yaml(cfg, source)
    _keep_cls_branch_transplantable(widths, target, options.round_to)
    _remove_channels(graph, groups, widths, target)
    join_stems(work)
    return _rebuild(work, cfg, source)


def _prunable(yaml_slots: dict[Slot, int], groups: list[ChannelGroup]) -> dict[Slot, int]:
    """Yaml slots that some group can shrink; the others keep their width."""
    covered = {g.slot for g in groups}
    return {slot: width for slot, width in yaml_slots.items() if slot in covered}


def _head_widths(groups: list[ChannelGroup]) -> dict[Slot, int]:
    """Current widths of the Detect classification-branch slots."""
    return {g.slot: g.size for g in groups if g.slot is not None and g.slot.kind not in ("c2", "hidden")}


def _decide(original: dict[Slot, int], groups: list[ChannelGroup], options: PruneOptions) -> dict[Slot, int]:
    if options.global_pruning:
        return global_widths(original, groups, options.ratio, options.round_to)
    return uniform_widths(original, options.ratio, options.round_to)


def _keep_cls_branch_transplantable(widths: dict[Slot, int], target: DetectionModel, round_to: int) -> None:
    """Keep Detect's cls branch loadable by stock ``DetectionModel.load``.

    ``load`` transplants the source ``cv3`` only when its level-0 output conv input width differs from the rebuilt
    one; if that width happens to equal the stock width while another level differs, nudge it by ``round_to``.
    """
    head = target.model[-1]
    for attr in ("cv3", "one2one_cv3"):
        branch = getattr(head, attr, None)
        if branch is None:
            continue
        stock = branch[0][-1].in_channels
        slots = [s for s in widths if s.layer == head.i and s.kind.startswith(f"{attr}.")]
        first = Slot(head.i, f"{attr}.0.1")
        if first in widths and widths[first] == stock and any(widths[s] != stock for s in slots):
            widths[first] = stock - round_to if stock > round_to else stock + round_to


def _target_width(group: ChannelGroup, widths: dict[Slot, int], target: DetectionModel) -> int:
    """Channels ``group`` keeps: its slot's width, or what the stock rebuild derives for its convs."""
    if group.slot is not None:
        return widths.get(group.slot, group.size)
    name = group.convs[0]
    if _SPLIT_STEM.search(name):  # a stem half of a block whose hidden width is fixed
        return target.get_submodule(_SPLIT_STEM.sub(".cv1.conv", name)).out_channels // 2
    return target.get_submodule(name).out_channels


def _remove_channels(
    graph: tp.DependencyGraph, groups: list[ChannelGroup], widths: dict[Slot, int], target: DetectionModel
) -> None:
    """Remove each group's lowest-scored channels down to its target width (stable order: deterministic)."""
    for group in groups:
        n_remove = group.size - _target_width(group, widths, target)
        if n_remove < 0:
            raise RuntimeError(f"internal: group {group.convs[0]} would grow to {group.size - n_remove} channels")
        if n_remove:
            order = torch.argsort(group.scores, stable=True)
            idxs = sorted(order[:n_remove].tolist())
            graph.get_pruning_group(group.root, tp.prune_conv_out_channels, idxs=idxs).prune()


def _rebuild(pruned: DetectionModel, cfg: dict, source: DetectionModel) -> DetectionModel:
    """Rebuild from ``cfg`` with stock Ultralytics and load ``pruned`` into it; every tensor must transfer."""
    model = build_from_yaml(cfg, source)
    model.load(pruned, verbose=False)
    theirs, ours = pruned.state_dict(), model.state_dict()
    lost = [k for k, v in theirs.items() if k not in ours or ours[k].shape != v.shape or not torch.equal(ours[k], v)]
    if lost or len(theirs) != len(ours):
        raise RuntimeError(f"internal: stock rebuild does not hold the pruned weights ({len(lost)} differ: {lost[:3]})")
    for attr in ("names", "args", "task"):
        if hasattr(source, attr):
            setattr(model, attr, copy.deepcopy(getattr(source, attr)))
    return model.eval()
