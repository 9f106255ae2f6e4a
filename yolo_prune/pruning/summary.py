"""Before/after numbers of a pruning run: params, GFLOPs, size and a per-layer width table, through LOGGER."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn
from ultralytics.nn.modules import C2f, Conv, Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import LOGGER
from ultralytics.utils.torch_utils import get_flops, get_num_params

from ..checkpoint import serialized_size


@dataclass(frozen=True)
class ModelStats:
    """Size and compute of one model."""

    params: int
    gflops: float
    size_mb: float

    @classmethod
    def of(cls, model: DetectionModel, imgsz: int) -> ModelStats:
        """Measure ``model`` at square input ``imgsz``."""
        return cls(get_num_params(model), get_flops(model, imgsz), serialized_size(model) / 1e6)


def layer_widths(layer: nn.Module) -> str:
    """Describe the channel widths of one layer: output, hidden (``/h``) or the Detect branches."""
    if isinstance(layer, Detect):
        box = [branch[0].conv.out_channels for branch in layer.cv2]
        cls = [branch[-1].in_channels for branch in layer.cv3]
        return f"box {box} cls {cls}"
    if isinstance(layer, Conv):
        return str(layer.conv.out_channels)
    if isinstance(layer, C2f):
        return f"{layer.cv2.conv.out_channels}/h{layer.cv1.conv.out_channels // 2}"
    if hasattr(layer, "cv2"):
        return str(layer.cv2.conv.out_channels)
    return ""


def log_summary(before: DetectionModel, after: DetectionModel, stats: tuple[ModelStats, ModelStats], imgsz: int) -> None:
    """Log the per-layer width table and the before -> after totals.

    Args:
        before: The source model.
        after: The pruned model.
        stats: Their measured stats, in that order.
        imgsz: Image size the GFLOPs refer to.
    """
    LOGGER.info(f"\n{'':>3}  {'module':<8}{'widths before':>34}{'widths after':>34}")
    for i, (a, b) in enumerate(zip(before.model, after.model)):
        wa, wb = layer_widths(a), layer_widths(b)
        if wa:
            LOGGER.info(f"{i:>3}  {type(a).__name__:<8}{wa:>34}{wb:>34}")
    (s0, s1) = (asdict(s) for s in stats)
    rows = (("params", "params", "{:,.0f}"), (f"GFLOPs@{imgsz}", "gflops", "{:.2f}"), ("size (MB)", "size_mb", "{:.2f}"))
    for label, key, fmt in rows:
        ratio = s1[key] / s0[key] if s0[key] else float("nan")
        LOGGER.info(f"{label:<14}{fmt.format(s0[key]):>14} -> {fmt.format(s1[key]):>14}  ({ratio:.3f}x)")
