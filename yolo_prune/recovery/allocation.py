"""Which global ranking a distilled prune uses: absolute damage, or LAMP shares when that prune stays clearly closer.

The damage score ranks channels across layers by absolute damage per GFLOP. On YOLOv8 that finds the cheap compute
in the wide stride-8 class branch of the head; YOLO11 and YOLO26 have depthwise class branches, and the same ranking
cuts their stride-8 backbone layers to a fifth or a quarter of their width, which 64 images of distillation cannot
bring back.
Ranking each group's damage as LAMP shares (``widths.layer_adaptive_scores``) spreads the cut instead; it is better
there and worse on YOLOv8. Real COCO models, ``speed_up=1.25`` with 64 calibration images, mAP50-95 after the
distillation, absolute / LAMP ranking: yolov8n 0.425 / 0.394, yolo11n 0.098 / 0.359 (BENCHMARKS.md, session 31).
Neither wins everywhere, so both are built (data-free prunes with compensation, seconds each) and compared by how far
their raw head outputs are from the source's on the distillation's first images: the label-free output distance
orders the two as the distilled mAP does wherever both were measured (absolute / LAMP at 1.25: yolov8n 3.0 /
4.7, yolo11n 10.6 / 7.9; yolov8n at 1.5 7.1 / 9.6, where the mAPs are 0.307 / 0.195). Through ``prune_yolo``:
yolov8n 0.4261 as before, yolo11n 0.358, yolo26n 0.346 (its distance 25.1 / 23.0). The proxy is not exact: at
``speed_up=2.0`` yolov8n's LAMP candidate is 3.4% closer (11.2 / 11.6, closer on 15 of the 16 images) and distils to
0.015 against the absolute ranking's 0.093. So the absolute ranking, the measured default, is kept unless the LAMP one
is at least ``ADAPTIVE_MARGIN`` closer (yolo11n 26%, yolo26n 8%).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn
from ultralytics.utils import LOGGER, colorstr

from ..pruning.compensation import compensate_removed_channels
from ..pruning.core import PruneOptions, prune_with_channel_map
from .distillation import distillation_loss, raw_outputs

PREFIX = colorstr("yolo-prune: ")
PROBE_IMAGES = 16  # images the two candidates are compared on
ADAPTIVE_MARGIN = 0.05  # how much closer the LAMP candidate must be to replace the absolute ranking (see above)


def least_damaging_prune(
    source: nn.Module, options: PruneOptions, images: torch.Tensor, verbose: bool = True
) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Prune ``source`` with the absolute and the layer-adaptive (LAMP) ranking; return the LAMP one only when its
    outputs are at least ``ADAPTIVE_MARGIN`` closer to the source's, else the absolute one.

    Args:
        source: The unpruned model; not modified.
        options: The distilled prune's options (global ranking); ``layer_adaptive`` is tried both ways.
        images: A batch of the images the model will distil on (``img``, floats in [0, 1]).
        verbose: Log the two output distances and the choice.

    Returns:
        The pruned model (no compensation) and its channel map, as ``prune_with_channel_map`` returns them.

    Examples:
        >>> images = distillation_images("data.yaml", 640)(0)[0]["img"]
        >>> pruned, kept = least_damaging_prune(source, options, images)
    """
    candidates = [prune_with_channel_map(source, replace(options, layer_adaptive=lamp)) for lamp in (False, True)]
    distances = output_distances(source, candidates, images)
    best = int(distances[1] < (1 - ADAPTIVE_MARGIN) * distances[0])
    if verbose:
        LOGGER.info(
            f"{PREFIX}ranking: output distance to the source on {len(images)} images, absolute damage "
            f"{distances[0]:.3g}, layer-adaptive {distances[1]:.3g}: "
            f"using {'layer-adaptive' if best else 'absolute damage'}"
        )
    return candidates[best]


@torch.no_grad()
def output_distances(
    source: nn.Module, candidates: list[tuple[nn.Module, dict[str, torch.Tensor]]], images: torch.Tensor
) -> list[float]:
    """The distillation loss of each pruned candidate (compensated) against ``source`` on ``images``, less its value
    at zero distance (the soft class targets' entropy); the source's outputs are computed once."""
    source = copy.deepcopy(source).float().cpu()
    reg_max = getattr(source.model[-1], "reg_max", 16)
    target = raw_outputs(source, images)
    floor = distillation_loss(target, target, reg_max)
    distances = []
    for pruned, kept in candidates:
        candidate = copy.deepcopy(pruned).float().cpu()
        compensate_removed_channels(candidate, source, kept)
        distances.append(float(distillation_loss(raw_outputs(candidate, images), target, reg_max) - floor))
    return distances
