"""Coupled channel groups from torch-pruning's DependencyGraph, each tied to the yaml width that decides its size."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn
from ultralytics.nn.modules import C2PSA
from ultralytics.nn.modules.block import PSABlock

from .architecture import Slot, output_shapes
from .heads import PROTO_SLOT, fixed_outputs, proto_slot_layer, traced_forward
from .importance import score_group

PRUNABLE = (nn.Conv2d, nn.ConvTranspose2d)  # layers whose output channels groups remove

_LAYER_C2 = re.compile(r"^model\.(\d+)\.(?:cv2\.)?conv$")
_HIDDEN = re.compile(r"^model\.(\d+)\.cv1[ab]\.conv$")
_CLS_BRANCH = re.compile(r"^model\.(\d+)\.(cv3|one2one_cv3)\.(\d+)\.([01])(?:\.1)?\.conv$")


@dataclass
class ChannelGroup:
    """One DepGraph group: channels that must be removed together, with their scores and governing slot."""

    root: nn.Conv2d
    convs: list[str]
    scores: torch.Tensor
    slot: Slot | None
    cost: float = 0.0  # multiply-accumulates one channel of the group costs, at the traced image size

    @property
    def size(self) -> int:
        """Number of channels in the group."""
        return len(self.scores)


def head_slot(name: str) -> Slot | None:
    """Return the free slot of a Detect classification-branch hidden conv (``cv3``/``one2one_cv3``), else None."""
    match = _CLS_BRANCH.match(name)
    return Slot(int(match[1]), f"{match[2]}.{match[3]}.{match[4]}") if match else None


def slot_of(name: str, yaml_slots: set[Slot]) -> Slot | None:
    """Return the slot that decides the output width of the conv called ``name``, or None if derived."""
    proto_layer = proto_slot_layer(name)
    if proto_layer is not None:
        return Slot(proto_layer, PROTO_SLOT)
    for pattern, kind in ((_LAYER_C2, "c2"), (_HIDDEN, "hidden")):
        match = pattern.match(name)
        if match and Slot(int(match[1]), kind) in yaml_slots:
            return Slot(int(match[1]), kind)
    return head_slot(name)


def ignored_layers(model: nn.Module) -> list[nn.Module]:
    """Layers whose output channels are never pruned: the head's task outputs and the attention internals."""
    ignored = fixed_outputs(model.model[-1])
    for module in model.modules():
        if isinstance(module, PSABlock):
            ignored.extend(m for m in module.modules() if isinstance(m, nn.Conv2d))
        if isinstance(module, C2PSA):
            ignored.append(module.cv1.conv)
    return ignored


def build_graph(model: nn.Module, imgsz: int = 64) -> tp.DependencyGraph:
    """Trace ``model`` into a DependencyGraph: eval mode (the YOLO26 one-to-one head stays attached), plus the
    head's training-only branches (``heads.traced_forward``)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    example = torch.zeros(1, model.yaml.get("channels", 3), imgsz, imgsz)
    return tp.DependencyGraph().build_dependency(model, example_inputs=example, forward_fn=traced_forward(model))


def collect_groups(
    model: nn.Module, graph: tp.DependencyGraph, scorer, yaml_slots: set[Slot], seed: int = 0
) -> list[ChannelGroup]:
    """Enumerate every prunable group of ``model``, score it and find the slot that sizes it.

    Args:
        model: The split-stem working copy the graph was traced on.
        graph: Its DependencyGraph.
        scorer: Importance criterion.
        yaml_slots: The free yaml slots of the model.
        seed: Seed for random criteria.

    Returns:
        Groups in graph order.
    """
    names = {module: name for name, module in model.named_modules()}
    pixels = output_pixels(model)
    groups = []
    all_groups = graph.get_all_groups(ignored_layers=ignored_layers(model), root_module_types=list(PRUNABLE))
    for i, group in enumerate(all_groups):
        convs = [
            names[dep.target.module]
            for dep, _ in group
            if isinstance(dep.target.module, PRUNABLE) and graph.is_out_channel_pruning_fn(dep.handler)
        ]
        slots = {s for s in (slot_of(n, yaml_slots) for n in convs) if s is not None}
        if len(slots) > 1:
            raise RuntimeError(f"internal: channel group {convs} spans several yaml widths {slots}")
        root = group[0].dep.target.module
        scores = score_group(scorer, group, seed + i)
        groups.append(ChannelGroup(root, convs, scores, slots.pop() if slots else None, channel_cost(group, pixels)))
    return groups


def output_pixels(model: nn.Module, imgsz: int = 64) -> dict[nn.Conv2d, int]:
    """Output positions of every convolution of ``model`` for one ``imgsz`` image (costs scale alike at any size)."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    return {conv: shape[-1] * shape[-2] for conv, shape in output_shapes(model, convs, imgsz).items()}


def channel_cost(group: tp.Group, pixels: dict[nn.Conv2d, int]) -> float:
    """Multiply-accumulates saved per channel removed from ``group``: its producing and its consuming convolutions."""
    cost = 0.0
    for dep, _ in group:
        conv = dep.target.module
        if not isinstance(conv, nn.Conv2d) or conv not in pixels:
            continue
        per_output = conv.weight[0].numel() * pixels[conv]  # (in / groups) * k * k positions
        if dep.handler == tp.prune_conv_out_channels:
            cost += per_output
        elif dep.handler == tp.prune_conv_in_channels and conv.groups == 1:
            cost += conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1] * pixels[conv]
    return cost


