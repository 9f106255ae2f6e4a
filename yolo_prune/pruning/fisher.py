"""Label-free output Fisher importance: how much removing a channel changes the detector's predictions, on images.

Removing channel ``c`` (its mean folded into the consumers, see ``compensation``) perturbs the network by
``a_c - E[a_c]``; to first order the predictions move by ``J_c (a_c - E[a_c])``. What matters is that change measured
in the metric of the model's own output distribution (its Fisher information): per anchor, Bernoulli class scores and
categorical DFL bins. Drawing "labels" from the model's own predictions and backpropagating the loss gives gradients
``g`` whose outer product is that Fisher matrix, so ``E[(sum_hw g_c * (a_c - E[a_c]))^2]`` estimates each channel's
damage in one backward pass per image, with no labels, comparable across layers (every score is measured at the
output), and including how the rest of the network amplifies the error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_pruning.pruner import function
from ultralytics.nn.modules import Conv
from ultralytics.utils import TQDM

from ..recovery.distillation import raw_outputs
from .compensation import batchnorm_blocks


def output_fisher(model: nn.Module, images: list[torch.Tensor], seed: int = 0, verbose: bool = True) -> dict:
    """Per-channel output damage of every BatchNorm ``Conv`` block's output, keyed by its BatchNorm module.

    Args:
        model: A detection model (float32, CPU); its weights and statistics are not changed.
        images: Image batches, float in [0, 1].
        seed: Seed for the labels drawn from the model's predictions.
        verbose: Show a progress bar.

    Returns:
        ``{batchnorm module: damage per channel}`` (float64).
    """
    blocks = batchnorm_blocks(model)
    outputs: dict[Conv, torch.Tensor] = {}
    handles = [b.register_forward_hook(_keeper(outputs)) for b in blocks]
    scores = {b.bn: torch.zeros(b.bn.num_features, dtype=torch.float64) for b in blocks}
    generator = torch.Generator().manual_seed(seed)
    reg_max = getattr(model.model[-1], "reg_max", 16)
    was_training = model.training
    try:
        model.eval()
        for batch in TQDM(images, desc="fisher", disable=not verbose):
            for x in batch.split(1):
                outputs.clear()
                loss = _sampled_loss(_raw(model, x), reg_max, generator)
                grads = torch.autograd.grad(loss, [outputs[b] for b in blocks], allow_unused=True)
                for block, grad in zip(blocks, grads):
                    if grad is not None:
                        a = outputs[block].detach()
                        centred = a - a.mean((0, 2, 3), keepdim=True)
                        scores[block.bn] += (grad * centred).sum((2, 3)).double().pow(2).sum(0)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    count = sum(len(b) for b in images)
    return {bn: s / count for bn, s in scores.items()}


def _keeper(store: dict):
    def hook(module, args, output):
        if output.requires_grad:
            store[module] = output
        return None

    return hook


def _raw(model: nn.Module, x: torch.Tensor) -> dict:
    """Raw head outputs with gradients flowing to the activations (weights and statistics are not changed)."""
    with torch.enable_grad():
        return raw_outputs(model, x.clone().requires_grad_(True))


def _sampled_loss(preds: dict | torch.Tensor, reg_max: int, generator: torch.Generator) -> torch.Tensor:
    if isinstance(preds, torch.Tensor):  # a classifier's logits: a class drawn from its own distribution
        drawn = torch.multinomial(preds.detach().softmax(1), 1, generator=generator)[:, 0]
        return F.cross_entropy(preds, drawn, reduction="sum")
    branches = [preds[k] for k in ("one2many", "one2one")] if "one2one" in preds else [preds]
    loss = 0.0
    for branch in branches:
        logits = branch["scores"]
        labels = torch.bernoulli(logits.detach().sigmoid(), generator=generator)
        loss = loss + F.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        boxes = branch["boxes"]
        if reg_max > 1:
            b, _, anchors = boxes.shape
            bins = boxes.view(b, 4, reg_max, anchors).transpose(2, 3).reshape(-1, reg_max)
            drawn = torch.multinomial(bins.detach().softmax(1), 1, generator=generator)[:, 0]
            loss = loss + F.cross_entropy(bins, drawn, reduction="sum")
        else:  # direct regression: a unit Gaussian around the prediction
            loss = loss + (boxes * torch.randn(boxes.shape, generator=generator)).sum()
    return loss


class OutputFisherImportance:
    """torch-pruning importance reading precomputed ``output_fisher`` scores (summed over a group's BatchNorms)."""

    def __init__(self, scores: dict):
        self.scores = scores

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor:
        total = torch.zeros(len(group[0].idxs), dtype=torch.float64)
        for i, (dep, idxs) in enumerate(group):
            root = group[i].root_idxs
            if dep.pruning_fn == function.prune_batchnorm_out_channels and dep.layer in self.scores:
                if not any(r is None for r in root):
                    total.scatter_add_(0, torch.tensor(root), self.scores[dep.layer][idxs])
        return total.float()
