"""Channel pruning of a YOLO DetectionModel into a stock model: DepGraph groups, yaml widths, stock rebuild."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import torch
import torch_pruning as tp
from ultralytics.nn.tasks import DetectionModel

from ultralytics.utils.torch_utils import get_flops

from ..recovery.calibration import accumulate_gradients
from .architecture import (
    Slot,
    build_from_yaml,
    check_supported,
    current_widths,
    layer_strides,
    pruned_yaml,
    resize_cls_branches,
)
from .channel_map import read_channel_tags, tag_channels
from .groups import ChannelGroup, build_graph, collect_groups
from .heads import task_of
from .fisher import OutputFisherImportance, output_fisher
from .importance import DATA_DRIVEN, make_importance
from .surrogate import join_stems, split_stems
from .targets import closest_plan
from .widths import global_widths, uniform_widths

_SPLIT_STEM = re.compile(r"\.cv1[ab]\.conv$")


@dataclass(frozen=True)
class PruneOptions:
    """Validated pruning options (see ``prune_yolo`` for their meaning).

    ``gflops_fraction`` replaces ``ratio`` when set: the ratio is searched so the pruned model has that fraction of
    the source's GFLOPs at ``imgsz``.
    """

    ratio: float = 0.3
    importance: str = "l2"
    global_pruning: bool = False
    round_to: int = 8
    gflops_fraction: float | None = None
    imgsz: int = 640
    layer_ratios: dict[int, float] | None = None
    calibration: list[dict] | None = None  # batches for data-driven importance (taylor, hessian, fisher)
    cost_exponent: float = 1.0  # global ranking: score / cost ** cost_exponent (``widths.global_widths``)
    protected_stride: int = 0  # global ranking: layers whose output stride is below this keep every channel
    layer_adaptive: bool = False  # global ranking: group scores as LAMP shares (``widths.layer_adaptive_scores``)


@dataclass
class Analysis:
    """Everything learned from the source once: the split-stem working copy, its graph and scored groups."""

    source: DetectionModel
    work: DetectionModel
    graph: tp.DependencyGraph
    groups: list[ChannelGroup]
    yaml_slots: dict[Slot, int]
    original: dict[Slot, int]
    strides: dict[int, int]  # yaml layer -> output stride


@dataclass
class Plan:
    """Widths to prune to, the stock yaml that describes them and the architecture it builds."""

    widths: dict[Slot, int]
    cfg: dict
    target: DetectionModel


def prune_detection_model(source: DetectionModel, options: PruneOptions) -> DetectionModel:
    """Return a pruned stock copy of ``source``; ``source`` itself is not modified (see ``prune_with_channel_map``)."""
    return prune_with_channel_map(source, options)[0]


def prune_with_channel_map(
    source: DetectionModel, options: PruneOptions
) -> tuple[DetectionModel, dict[str, torch.Tensor]]:
    """Return a pruned stock copy of ``source`` and the source channels each BatchNorm kept.

    Steps: split C2f stems so DepGraph maps channels correctly, score every coupled group, decide each yaml width,
    remove the least important channels group by group, join the stems, then rebuild the model from the new yaml
    with stock Ultralytics and ``load`` the pruned weights into it, exactly as ``yolo train`` will.

    Args:
        source: A supported detection model (any dtype or device).
        options: Pruning options.

    Returns:
        A float32 CPU ``DetectionModel`` in eval mode whose yaml describes its pruned widths, and
        ``{batchnorm name: kept source channel indices}`` (also the kept outputs of the convolution before it).
    """
    analysis = analyse(source, options.importance, options.calibration)
    if options.gflops_fraction is None:
        plan = make_plan(analysis, options, options.ratio)
    else:
        plan = search_plan(analysis, options)
    return apply_plan(analysis, plan)


def analyse(source: DetectionModel, importance: str, calibration: list[dict] | None = None) -> Analysis:
    """Trace ``source`` once and score every coupled channel group with the ``importance`` criterion.

    Data-driven criteria first backpropagate Ultralytics' detection loss over the ``calibration`` batches.
    """
    check_supported(source)
    work = copy.deepcopy(source).float().cpu()
    yaml_slots = current_widths(work)
    split_stems(work)
    if importance in DATA_DRIVEN and not calibration:
        raise ValueError(f"importance='{importance}' needs calibration batches")
    if importance in ("taylor", "hessian"):
        accumulate_gradients(work, calibration, squared=importance == "hessian")
    if importance == "fisher":
        scorer = OutputFisherImportance(output_fisher(work, [b["img"] for b in calibration]))
    else:
        scorer = make_importance(importance, work)
    graph = build_graph(work)
    groups = collect_groups(work, graph, scorer, set(yaml_slots))
    original = {**_prunable(yaml_slots, groups), **_head_widths(groups)}
    return Analysis(source, work, graph, groups, yaml_slots, original, layer_strides(work))


def make_plan(analysis: Analysis, options: PruneOptions, ratio: float) -> Plan:
    """Decide every width for ``ratio`` and build the stock architecture they describe."""
    return plan_for_widths(analysis, options, _decide(analysis, options, ratio))


def plan_for_widths(analysis: Analysis, options: PruneOptions, widths: dict[Slot, int]) -> Plan:
    """Build the stock architecture that ``widths`` describe (cls-branch widths nudged to stay transplantable)."""
    widths = dict(widths)
    cfg = pruned_yaml(analysis.source, {**analysis.yaml_slots, **widths})
    target = build_from_yaml(cfg, analysis.source)
    _keep_cls_branch_transplantable(widths, target, options.round_to)
    resize_cls_branches(target, widths)
    return Plan(widths, cfg, target)


def search_plan(analysis: Analysis, options: PruneOptions) -> Plan:
    """Find the plan whose GFLOPs come closest to ``options.gflops_fraction`` of the source's."""
    base = get_flops(analysis.source, options.imgsz)

    def widths_at(ratio: float) -> dict[Slot, int]:
        return _decide(analysis, options, ratio)

    def evaluate(widths: dict[Slot, int]) -> tuple[float, Plan]:
        plan = plan_for_widths(analysis, options, widths)
        return get_flops(plan.target, options.imgsz) / base, plan

    return closest_plan(widths_at, evaluate, options.gflops_fraction)


def apply_plan(analysis: Analysis, plan: Plan) -> tuple[DetectionModel, dict[str, torch.Tensor]]:
    """Remove the channels ``plan`` drops from the analysed copy and rebuild it as a stock model (consumes it).

    Returns the model and the source channels each BatchNorm kept (``channel_map``).
    """
    tag_channels(analysis.work)  # after scoring: Taylor/Hessian gradients were taken with the real statistics
    _remove_channels(analysis.graph, analysis.groups, plan.widths, plan.target)
    join_stems(analysis.work)
    model = _rebuild(analysis.work, plan.cfg, analysis.source)
    return model, read_channel_tags(model, analysis.source)


def prune_keeping(
    model: DetectionModel, kept: dict[str, torch.Tensor]
) -> tuple[DetectionModel, dict[str, torch.Tensor]]:
    """Prune ``model`` to exactly the channels ``kept`` names (a channel map of an earlier prune of the same model).

    Used after fading (``recovery.fading``): the channels were chosen on the source, the model has since trained
    with the others faded out, and a fresh ranking would choose differently. Groups without a BatchNorm (Proto's
    upsampler) are not in a channel map: they keep their slot's width by the ``damage`` ranking.

    Returns:
        As ``prune_with_channel_map``: the pruned stock model and its channel map (equal to ``kept``).
    """
    analysis = analyse(model, "damage")
    names = {module: name for name, module in analysis.work.named_modules()}
    widths = {}
    for group in analysis.groups:
        indicator = _kept_indicator(names[group.root], group.size, analysis.work, kept)
        if indicator is not None:
            group.scores = indicator
            if group.slot is not None:
                widths[group.slot] = int(indicator.sum())
    return apply_plan(analysis, plan_for_widths(analysis, PruneOptions(), widths))


def _kept_indicator(name: str, size: int, work: DetectionModel, kept: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """1 for each of the ``size`` output channels of convolution ``name`` that ``kept`` keeps, else 0 (split-stem
    halves mapped); None when ``kept`` does not know it."""
    offset = 0
    if _SPLIT_STEM.search(name):
        if name.endswith("cv1b.conv"):
            offset = work.get_submodule(name.replace("cv1b.conv", "cv1a.conv")).out_channels
        name = _SPLIT_STEM.sub(".cv1.conv", name)
    channels = kept.get(name.rsplit(".", 1)[0] + ".bn")
    if channels is None:
        return None
    return torch.isin(torch.arange(offset, offset + size), channels).float()


def _prunable(yaml_slots: dict[Slot, int], groups: list[ChannelGroup]) -> dict[Slot, int]:
    """Yaml slots that some group can shrink; the others keep their width."""
    covered = {g.slot for g in groups}
    return {slot: width for slot, width in yaml_slots.items() if slot in covered}


def _head_widths(groups: list[ChannelGroup]) -> dict[Slot, int]:
    """Current widths of the Detect classification-branch slots."""
    return {g.slot: g.size for g in groups if g.slot is not None and g.slot.kind not in ("c2", "hidden")}


def _decide(analysis: Analysis, options: PruneOptions, ratio: float) -> dict[Slot, int]:
    """Widths for ``ratio``: uniform per slot, or ranked globally over every slot not protected by its stride."""
    original = analysis.original
    if not options.global_pruning:
        return uniform_widths(original, ratio, options.round_to, options.layer_ratios)
    stride = lambda slot: analysis.strides.get(slot.layer, options.protected_stride)  # noqa: E731  (heads: none)
    protected = {s: w for s, w in original.items() if stride(s) < options.protected_stride}
    ranked = {s: w for s, w in original.items() if s not in protected}
    chosen = global_widths(
        ranked, analysis.groups, ratio, options.round_to, options.cost_exponent, options.layer_adaptive
    )
    return {**chosen, **protected}


def _keep_cls_branch_transplantable(widths: dict[Slot, int], target: DetectionModel, round_to: int) -> None:
    """Keep Detect's cls branch loadable by stock ``DetectionModel.load``.

    ``load`` transplants the source ``cv3`` only when its level-0 output conv input width differs from the rebuilt
    one; if that width happens to equal the stock width while another level differs, narrow it by ``round_to``, or,
    when it cannot narrow, give every cls slot the stock width (then no transplant is needed).
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
            if stock > round_to:
                widths[first] = stock - round_to
            else:
                widths.update({s: stock for s in slots})


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
    for attr in ("names", "args"):
        if hasattr(source, attr):
            setattr(model, attr, copy.deepcopy(getattr(source, attr)))
    model.task = task_of(model)  # from the head: a yaml-built source has no task, and default args say 'detect'
    return model.eval()
