"""Pruning-time stand-in for C2f/C3k2 blocks, so DepGraph sees their two ``cv1`` halves as separate tensors.

``C2f.forward`` splits ``cv1``'s output with ``chunk(2)`` and concatenates the halves again; torch-pruning's
dependency graph maps channel indices through that pair wrongly (``IndexError: index 384 is out of bounds``). While
pruning, each block's ``cv1`` is cut into two convolutions with the same outputs; afterwards the halves are joined
back into the stock ``cv1``. The stand-in never leaves this module: checkpoints only ever hold stock classes.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from ultralytics.nn.modules import C2f, Conv

# Ultralytics' per-layer attributes; checkpoints saved before 8.3 (the released yolov8n.pt, yolo11n.pt) have no ``np``
_LAYER_ATTRS = ("i", "f", "type", "np")


class SplitStemBlock(nn.Module):
    """A C2f/C3k2 whose ``cv1`` is two convolutions (``cv1a`` feeds the concat, ``cv1b`` also feeds the blocks)."""

    def __init__(self, block: C2f):
        """Take over ``block``'s modules, splitting its ``cv1`` in two."""
        super().__init__()
        self.original = [block]  # a list keeps the stock block out of this module's children
        self.cv1a, self.cv1b = (_conv_slice(block.cv1, part) for part in (0, 1))
        self.m, self.cv2 = block.m, block.cv2
        for attr in _LAYER_ATTRS:
            if hasattr(block, attr):
                setattr(self, attr, getattr(block, attr))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute exactly what the stock block computes."""
        y = [self.cv1a(x), self.cv1b(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))

    def restore(self) -> C2f:
        """Return the stock block with the (pruned) halves joined back into ``cv1``."""
        block = self.original[0]
        block.cv1 = _conv_join(self.cv1a, self.cv1b)
        block.m, block.cv2 = self.m, self.cv2
        block.c = self.cv1a.conv.out_channels
        return block


def _conv_slice(conv: Conv, part: int) -> Conv:
    """Return a copy of ``conv`` that computes the first (part 0) or second (part 1) half of its outputs."""
    half = conv.conv.out_channels // 2
    keep = slice(part * half, (part + 1) * half)
    out = copy.deepcopy(conv)
    out.conv.weight = nn.Parameter(conv.conv.weight.data[keep].clone())
    out.conv.out_channels = half
    _slice_batchnorm(out.bn, conv.bn, keep)
    return out


def _slice_batchnorm(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, keep: slice) -> None:
    dst.weight = nn.Parameter(src.weight.data[keep].clone())
    dst.bias = nn.Parameter(src.bias.data[keep].clone())
    dst.running_mean = src.running_mean[keep].clone()
    dst.running_var = src.running_var[keep].clone()
    dst.num_features = dst.weight.numel()


def _conv_join(first: Conv, second: Conv) -> Conv:
    """Return one Conv computing the concatenated outputs of two Convs over the same input."""
    out = copy.deepcopy(first)
    out.conv.weight = nn.Parameter(torch.cat([first.conv.weight.data, second.conv.weight.data]))
    out.conv.out_channels = out.conv.weight.shape[0]
    out.bn.weight = nn.Parameter(torch.cat([first.bn.weight.data, second.bn.weight.data]))
    out.bn.bias = nn.Parameter(torch.cat([first.bn.bias.data, second.bn.bias.data]))
    out.bn.running_mean = torch.cat([first.bn.running_mean, second.bn.running_mean])
    out.bn.running_var = torch.cat([first.bn.running_var, second.bn.running_var])
    out.bn.num_features = out.conv.out_channels
    return out


def split_stems(model: nn.Module) -> None:
    """Replace, in place, every C2f/C3k2 layer of ``model.model`` with its split-stem stand-in."""
    for i, layer in enumerate(model.model):
        if isinstance(layer, C2f):
            model.model[i] = SplitStemBlock(layer)


def join_stems(model: nn.Module) -> None:
    """Undo ``split_stems`` in place: every stand-in becomes its stock block again."""
    for i, layer in enumerate(model.model):
        if isinstance(layer, SplitStemBlock):
            model.model[i] = layer.restore()
