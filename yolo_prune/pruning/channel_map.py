"""Which source channel each pruned channel came from, read back through the BatchNorm buffers pruning carries.

Every channel removal in torch-pruning selects the same indices from a convolution's outputs and from its
BatchNorm's ``running_mean``. Writing each channel's source index into ``running_mean`` just before removal, and
reading it back after the stock rebuild, gives the kept indices of every layer, whatever path (split stems, concat,
Detect branches) the removal took. The real statistics are restored from the source right after.
"""

from __future__ import annotations

import torch
from torch import nn

_STEM_HALVES = ("cv1a.bn", "cv1b.bn")  # split-stem halves (see surrogate.py): cv1b continues cv1a's channel count


def batchnorms(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm of ``model`` by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def kept_outputs(name: str, conv: nn.Conv2d, kept: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """Source output channels convolution ``name`` kept (all of them for Detect's output convs), or None if unknown."""
    norm_name = name.rsplit(".", 1)[0] + ".bn"
    if norm_name in kept:
        return kept[norm_name]
    return None if conv.bias is None else torch.arange(conv.out_channels)  # Detect's output convs are never pruned


def following_norm(model: nn.Module, name: str) -> nn.modules.batchnorm._BatchNorm | None:
    """The BatchNorm of the Ultralytics ``Conv`` block that holds convolution ``name``, if any."""
    parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
    norm = getattr(parent, "bn", None)
    return norm if isinstance(norm, nn.modules.batchnorm._BatchNorm) else None


def tag_channels(work: nn.Module) -> None:
    """Overwrite each BatchNorm's ``running_mean`` of the split-stem working copy with its source channel indices."""
    norms = batchnorms(work)
    for name, norm in norms.items():
        offset = 0
        if name.endswith(_STEM_HALVES[1]):
            offset = norms[name[: -len(_STEM_HALVES[1])] + _STEM_HALVES[0]].num_features
        norm.running_mean = torch.arange(offset, offset + norm.num_features, dtype=torch.float32)


def read_channel_tags(pruned: nn.Module, source: nn.Module) -> dict[str, torch.Tensor]:
    """Return ``{batchnorm name: kept source channel indices}`` and restore the real ``running_mean`` of ``pruned``.

    Args:
        pruned: The rebuilt stock model, its BatchNorm names equal to the source's, means holding tags.
        source: The unpruned model.

    Returns:
        Kept source channel indices (ascending) per BatchNorm, which are also those of the convolution before it.
    """
    theirs = batchnorms(source)
    kept = {}
    for name, norm in batchnorms(pruned).items():
        indices = norm.running_mean.round().long()
        reference = theirs[name]
        if not torch.equal(norm.running_var, reference.running_var[indices].to(norm.running_var.dtype)):
            raise RuntimeError(f"internal: channel tags of {name} do not match the source's statistics")
        norm.running_mean = reference.running_mean[indices].to(norm.running_var.dtype).clone()
        kept[name] = indices
    return kept
