"""Layer-wise least-squares reconstruction: refit each pruned convolution so it reproduces the source's outputs.

Removing channels leaves every following convolution with fewer inputs than it was trained on. In forward order,
each convolution of the pruned model is refitted on a few images so that, fed the *pruned* model's activations
(earlier layers already refitted, so errors do not pile up), its outputs match the *source* model's outputs on its
kept channels (the channel-pruning reconstruction of He et al. 2017 / ThiNet, solved in closed form). A ridge term
pulls each solution towards the plainly pruned weights, and the fitted intercept goes into the bias or, for a
convolution followed by BatchNorm, into that BatchNorm's running mean, so the model stays stock and its shapes stay
as pruned. Depthwise convolutions and the fixed DFL convolution keep their weights.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils import TQDM

from ..pruning.channel_map import following_norm, kept_outputs

RIDGE = 0.01  # ridge strength relative to the mean input energy (0.001-0.1 measured alike on yolov8n)
IMAGES_AT_128 = 128  # calibration images at 128 px; larger sizes use the same pixel count, at least 16 images


def reconstruction_images(imgsz: int) -> int:
    """How many calibration images the refit uses at ``imgsz`` (enough rows for the widest deep convolutions)."""
    return max(16, round(IMAGES_AT_128 * (128 / imgsz) ** 2))


class _Captured(Exception):
    """Raised inside a forward hook once the wanted tensor is captured: the rest of the forward is not needed."""


@torch.no_grad()
def reconstruct_convolutions(
    pruned: nn.Module,
    source: nn.Module,
    kept: dict[str, torch.Tensor],
    images: list[torch.Tensor],
    ridge: float = RIDGE,
    verbose: bool = True,
) -> None:
    """Refit, in place and in forward order, every dense convolution of ``pruned`` to reproduce ``source``.

    Args:
        pruned: The pruned stock model (float32, CPU); changed in place, shapes untouched.
        source: The unpruned model it was pruned from; not modified.
        kept: ``{batchnorm name: kept source channel indices}`` from ``prune_with_channel_map``.
        images: Calibration image batches, float in [0, 1], shape (N, 3, H, W).
        ridge: Strength of the pull towards the plainly pruned weights, relative to the mean input energy.
        verbose: Show a progress bar.

    Examples:
        >>> pruned, kept = prune_with_channel_map(source, PruneOptions(0.3))
        >>> reconstruct_convolutions(pruned, source, kept, [b["img"] for b in calibration_batches("data.yaml", 640)])
    """
    source = copy.deepcopy(source).float().cpu().eval()
    pruned.eval()
    names = [n for n in forward_order(pruned, images[0][:1]) if _refittable(pruned.get_submodule(n))]
    for name in TQDM(names, desc="reconstruct", disable=not verbose):
        conv = pruned.get_submodule(name)
        outputs = kept_outputs(name, conv, kept)
        if outputs is None:
            continue
        norm = following_norm(pruned, name)
        normal = _NormalEquations(conv, with_intercept=conv.bias is not None or norm is not None)
        for batch in images:
            inputs = capture(pruned, name, batch, want_input=True)
            target = capture(source, name, batch, want_input=False)[:, outputs]
            normal.add(inputs, target)
        weight, intercept = normal.solve(ridge)
        conv.weight.copy_(weight)
        if conv.bias is not None:
            conv.bias.copy_(intercept)
        elif norm is not None:
            norm.running_mean.sub_(intercept)


def forward_order(model: nn.Module, image: torch.Tensor) -> list[str]:
    """Names of the ``nn.Conv2d`` modules of ``model`` in the order one forward pass calls them."""
    names, handles = [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(lambda *_, name=name: names.append(name)))
    try:
        model(image)
    finally:
        for handle in handles:
            handle.remove()
    return list(dict.fromkeys(names))


def capture(model: nn.Module, name: str, images: torch.Tensor, want_input: bool) -> torch.Tensor:
    """The input (or output) of module ``name`` when ``model`` runs on ``images``; the forward stops there."""
    box = []

    def hook(module, inputs, output):
        box.append(inputs[0] if want_input else output)
        raise _Captured

    handle = model.get_submodule(name).register_forward_hook(hook)
    try:
        model(images)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not box:
        raise RuntimeError(f"internal: {name} was not called in the forward pass")
    return box[0]


def _refittable(conv: nn.Conv2d) -> bool:
    """Dense, trainable convolutions with integer padding (depthwise and the frozen DFL conv are left alone)."""
    return conv.groups == 1 and conv.weight.requires_grad and not isinstance(conv.padding, str)


class _NormalEquations:
    """Accumulates ``X^T X`` and ``X^T Y`` of one convolution's least-squares refit, in float64."""

    def __init__(self, conv: nn.Conv2d, with_intercept: bool):
        self.conv, self.with_intercept = conv, with_intercept
        size = conv.weight[0].numel() + with_intercept
        self.gram = torch.zeros(size, size, dtype=torch.float64)
        self.cross = torch.zeros(size, conv.out_channels, dtype=torch.float64)

    def add(self, inputs: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: the convolution's inputs (N, Cin, H, W) and the outputs it should give (N, Cout, H', W')."""
        c = self.conv
        for x, y in zip(inputs.split(1), target.split(1)):  # one image at a time bounds memory at 640 px
            cols = F.unfold(x, c.kernel_size, c.dilation, c.padding, c.stride)[0].T.double()  # (L, Cin*kh*kw)
            if self.with_intercept:
                cols = torch.cat([cols, torch.ones(len(cols), 1, dtype=cols.dtype)], 1)
            self.gram += cols.T @ cols
            self.cross += cols.T @ y[0].flatten(1).T.double()

    def solve(self, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Ridge solution pulled towards the current weights (and a zero intercept shift for BatchNorm blocks)."""
        c = self.conv
        prior = c.weight.reshape(c.out_channels, -1).T.double()
        if self.with_intercept:
            bias = c.bias if c.bias is not None else torch.zeros(c.out_channels)
            prior = torch.cat([prior, bias.double()[None]], 0)
        strength = ridge * self.gram.diagonal().mean().clamp_min(1e-12)
        eye = torch.eye(len(self.gram), dtype=torch.float64)
        solution = torch.linalg.solve(self.gram + strength * eye, self.cross + strength * prior)
        weight = solution[: c.weight[0].numel()].T.reshape_as(c.weight).to(c.weight.dtype)
        intercept = solution[-1] if self.with_intercept else torch.zeros(c.out_channels, dtype=torch.float64)
        return weight, intercept.to(c.weight.dtype)
