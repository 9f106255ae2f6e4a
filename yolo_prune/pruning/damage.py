"""Data-free channel importance: the error a channel's removal leaves in its consumers, from BatchNorm statistics.

Once the removed channel's mean is folded into its consumers (``compensation``), what is lost is its fluctuation:
``Var[act(z)]`` with ``z ~ N(beta, gamma^2)``. Each consumer turns it into an error of ``sum_k W[o, c, k]^2`` times
that variance in output ``o``, which matters relative to that output's own spread (its BatchNorm running variance).
The score of a channel is its activation variance times the summed relative sensitivity of its consumers, so
scores compare across layers (they are relative errors) as well as within a group.
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn
from torch_pruning.pruner import function
from ultralytics.nn.modules import Conv

from .compensation import batchnorm_blocks, block_moments


class OutputDamageImportance(tp.importance.Importance):
    """Score = producer activation variance x consumers' sensitivity relative to their output spread."""

    def __init__(self, model: nn.Module):
        self.blocks = {}
        for block in batchnorm_blocks(model):
            self.blocks[block.bn] = block
            self.blocks[block.conv] = block

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor:
        n = len(group[0].idxs)
        variance = torch.zeros(n, dtype=torch.float64)
        sensitivity = torch.zeros(n, dtype=torch.float64)
        for i, (dep, idxs) in enumerate(group):
            layer, root = dep.layer, group[i].root_idxs
            if any(r is None for r in root):
                continue
            root = torch.tensor(root)
            if dep.pruning_fn == function.prune_batchnorm_out_channels and layer in self.blocks:
                variance.scatter_add_(0, root, block_moments(self.blocks[layer])[1][idxs])
            elif dep.pruning_fn == function.prune_conv_out_channels and isinstance(layer, nn.ConvTranspose2d):
                variance.scatter_add_(0, root, _transposed_output_energy(layer)[idxs])
            elif dep.pruning_fn == function.prune_conv_in_channels:
                sensitivity.scatter_add_(0, root, _consumer_sensitivity(layer, self.blocks.get(layer))[idxs])
        return (variance * sensitivity).float()


def _transposed_output_energy(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """Output variance of a BatchNorm-free transposed convolution (Proto's upsampler), inputs taken as unit-variance."""
    return conv.weight.double().pow(2).sum((0, 2, 3))


def _consumer_sensitivity(conv: nn.Conv2d | nn.ConvTranspose2d, block: Conv | None) -> torch.Tensor:
    """Per input channel: summed squared weights into each output, relative to that output's variance."""
    w = conv.weight.double().pow(2).sum((2, 3))  # (out, in/groups); a transposed conv stores (in, out/groups)
    if isinstance(conv, nn.ConvTranspose2d):
        w = w.T
    if block is not None:
        spread = block.bn.running_var.double() + block.bn.eps
    else:  # a head output conv: relative to the spread its own weights give unit-variance inputs
        spread = w.sum(1).clamp_min(1e-12)
    per_input = (w / spread[:, None]).sum(0)
    if conv.groups > 1:
        per_input = (w / spread[:, None]).sum(1) if w.shape[1] == 1 else per_input.repeat(conv.groups)
    return per_input
