"""Gradual channel removal: the channels a prune will drop fade into their expected value while the model distils.

A one-shot prune removes every chosen channel at once and distillation then has to find a new function from a
broken one. Fading instead keeps the full-width model and, over the first part of the distillation, blends each
doomed channel's output towards the constant it would be replaced by (its expected activation, the value that
compensation folds into the consumers): ``y = (1 - a) * y + a * E[y]`` with ``a`` rising from 0 to 1. The kept
channels learn to carry the work while the doomed ones still help; once ``a`` reaches 1 the doomed channels are
constants and removing them (with their constant folded into the consumers) changes nothing in the function away
from image borders. It is the mean-replacement counterpart of gradual pruning (Zhu & Gupta 2017) and of the
growing penalties of GReg (Wang et al. 2021), on the layers' expected values rather than zeros.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from ..pruning.compensation import batchnorm_blocks, block_moments, compensate_removed_channels
from ..pruning.core import prune_keeping
from .distillation import EPOCHS, distill, distillation_images

# Share of the distillation steps the fade takes. Real yolov8n, exponent 1.75, stem whole, mAP50-95 for 0.3 vs 0.5:
# speed_up=1.25 0.425 vs 0.424; 1.5 0.302/0.302/0.304 vs 0.295/0.294/0.297 (three draws); 1.75 0.178 vs 0.176; 2.0
# 0.095 vs 0.081; on the other half of coco128 1.25 0.403 vs 0.400, 1.5 0.251 vs 0.245, 2.0 0.090 vs 0.080. 0.2:
# 1.5 0.303, 2.0 0.087; 0.7: 1.5 0.284 (BENCHMARKS.md, session 20). The kept channels need the steps after the fade.
FADE_SHARE = 0.3


class ChannelFade:
    """Forward hooks that blend the channels a prune will drop towards their expected value; a context manager.

    Args:
        model: The full-width model (its ``Conv`` blocks' names are those of ``kept``).
        kept: BatchNorm name -> the channels the prune keeps (``prune_with_channel_map``).
        share: Share of the training steps over which the channels fade (``fade_schedule``).

    Examples:
        >>> with ChannelFade(model, kept) as fade:
        ...     fade.progress = 0.5  # half-way: doomed channels output the mean of themselves and their expectation
    """

    def __init__(self, model: nn.Module, kept: dict[str, torch.Tensor], share: float = FADE_SHARE) -> None:
        """Hook every ``Conv`` block of ``model`` that loses channels."""
        self.progress, self.share = 0.0, share
        names = {m: n for n, m in model.named_modules()}
        self._handles = []
        for block in batchnorm_blocks(model):
            doomed = _doomed(kept.get(f"{names[block]}.bn"), block.bn.num_features)
            if doomed is not None:
                self._handles.append(block.register_forward_hook(self._blender(block, doomed)))

    def _blender(self, block: nn.Module, doomed: torch.Tensor):
        cache = {"expected": block_moments(block)[0][doomed][None, :, None, None]}
        amounts = self._amounts(block, doomed)

        def hook(module: nn.Module, args, output: torch.Tensor) -> torch.Tensor:
            if self.progress <= 0:
                return output
            if hasattr(module, "bn"):  # a fused copy (Ultralytics' val) has lost it: keep the last expectation
                cache["expected"] = block_moments(module)[0][doomed][None, :, None, None]
            expected = cache["expected"].to(output.dtype)
            amount = torch.as_tensor(amounts(self.progress), dtype=output.dtype)
            blended = output.clone()
            blended[:, doomed] = (1 - amount) * output[:, doomed] + amount * expected
            return blended

        return hook

    def _amounts(self, block: nn.Module, doomed: torch.Tensor) -> Callable[[float], float | torch.Tensor]:
        """How far ``block``'s doomed channels have faded at a progress: all of them together, by the progress.

        A subclass may fade them one after another by returning a tensor shaped ``(1, len(doomed), 1, 1)``.
        """
        return lambda progress: progress

    def advance(self, step: int, steps: int) -> None:
        """Set the progress for training step ``step`` of ``steps`` (``fade_schedule``)."""
        self.progress = fade_schedule(step, steps, self.share)

    def __enter__(self) -> ChannelFade:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def fades_every_cut(source: nn.Module, pruned: nn.Module) -> bool:
    """Whether every layer ``pruned`` narrowed is a BatchNorm ``Conv`` block, the layers ``ChannelFade`` can fade.

    A narrowed layer without BatchNorm (the upsampler of the segmentation prototypes) would lose its channels only
    at the cut, after the distillation meant to absorb it: on the synthetic segmentation set at ``speed_up=1.5``
    that left mask mAP50-95 at 0.068 where cutting first and distilling after keeps 0.355.
    """
    blocks = {id(m.conv) for m in batchnorm_blocks(source)}
    ours = dict(pruned.named_modules())
    for name, module in source.named_modules():
        narrowed = isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and ours[name].out_channels < module.out_channels
        if narrowed and id(module) not in blocks:
            return False
    return True


def _doomed(kept: torch.Tensor | None, channels: int) -> torch.Tensor | None:
    """Indices of the channels not in ``kept`` (None when nothing is dropped or the block is unknown)."""
    if kept is None or len(kept) == channels:
        return None
    mask = torch.ones(channels, dtype=torch.bool)
    mask[kept] = False
    return mask.nonzero().flatten()


def fade_epochs(epochs: int, share: float = FADE_SHARE) -> int:
    """The first epochs of ``epochs`` by whose end a fade over ``share`` of the steps is complete."""
    return min(epochs, math.ceil(share * epochs))


def fade_schedule(step: int, steps: int, share: float = FADE_SHARE) -> float:
    """Fade progress after ``step`` of ``steps``: linear from 0 to 1 over the first ``share`` of them, then 1."""
    return min(1.0, (step + 1) / max(1.0, share * steps))


def distill_while_fading(
    source: nn.Module,
    kept: dict[str, torch.Tensor],
    data: str,
    imgsz: int,
    verbose: bool = True,
    task: str = "detect",
    epochs: int = EPOCHS,
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Distil a full-width copy of ``source`` while the channels ``kept`` drops fade out, prune them, distil on.

    Once the fade ends the doomed channels are constants, so they are cut there and the rest of the distillation
    trains the narrow model, which costs what the pruned model costs (the same function, the same schedule), and
    the model measured is the one trained (no border error from the cut after the last step). Real yolov8n,
    mAP50-95, cut at the fade's end vs after the last epoch: speed_up=1.25 0.425 vs 0.425; 1.5 0.310 / 0.295 vs
    0.303 / 0.293 (two augmentation draws) in a fifth less time; 2.0 0.084 / 0.085 vs 0.093 / 0.089, at 60 epochs
    0.106 vs 0.105 (BENCHMARKS.md, session 23). Adam's moments, cut as the weights are, carry over the cut, so the
    narrow model's first steps are not those of a fresh optimizer (each weight moving by about the learning rate):
    over ten paired runs 2.0 +0.005 on average (0.094 / 0.086 vs 0.084 / 0.085 on two draws), 1.25 and 1.5
    unchanged (mean 0.000), no pair worse by more than 0.003 (session 24).

    Args:
        source: The unpruned model (the teacher); not modified.
        kept: The channel map of a prune of ``source`` (``prune_with_channel_map``): which channels go.
        data: Dataset yaml whose training images are distilled on (``distillation_images``, scanned once).
        imgsz: The pruning image size (distillation runs at half of it).
        verbose: Show a progress bar.
        task: The model's task.
        epochs: Distillation epochs (the fade takes the first ``FADE_SHARE`` of them, at full width).

    Returns:
        The pruned stock model (the faded constants folded into the consumers) and its channel map.

    Examples:
        >>> _, kept = prune_with_channel_map(source, options)
        >>> pruned, kept = distill_while_fading(source, kept, "data.yaml", imgsz=640)
    """
    student = copy.deepcopy(source).float().cpu()
    fading, moments = fade_epochs(epochs), {}
    images = distillation_images(data, imgsz, task, verbose)
    with ChannelFade(student, kept) as fade:
        distill(student, source, images, fading, kept=kept, verbose=verbose, fade=fade, total_epochs=epochs,
                moments=moments)
    if fading == epochs:
        return cut_faded(student, kept)
    moments = cut_moments(student, kept, moments)
    pruned, kept = cut_faded(student, kept)
    distill(pruned, source, images, epochs - fading, kept=kept, verbose=verbose, first_epoch=fading,
            total_epochs=epochs, moments=moments)
    return pruned, kept


def cut_moments(model: nn.Module, kept: dict[str, torch.Tensor], moments: dict) -> dict:
    """Adam's state of the full-width ``model`` (``distill(moments=)``) cut to the channels ``kept``: each moment is
    pruned as the weights are, by pruning a copy of ``model`` that holds it in their place."""
    cut = {name: {"step": state["step"]} for name, state in moments.items()}
    for key in ("exp_avg", "exp_avg_sq"):
        holder = copy.deepcopy(model)
        with torch.no_grad():
            for name, p in holder.named_parameters():
                p.copy_(moments[name][key] if name in moments else torch.zeros_like(p))
        pruned, _ = prune_keeping(holder, kept)
        for name, p in pruned.named_parameters():
            if name in cut:
                cut[name][key] = p.detach().clone()
    return cut


def cut_faded(model: nn.Module, kept: dict[str, torch.Tensor]) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Remove the channels a finished fade turned into constants, folding exactly those constants (the means from
    the BatchNorms, no variance share) into the consumers; returns the pruned model and its channel map."""
    pruned, kept = prune_keeping(model, kept)
    compensate_removed_channels(pruned, model, kept, variance=False)
    return pruned, kept
