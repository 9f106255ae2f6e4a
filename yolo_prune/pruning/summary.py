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


def equal_cost_imgsz(gflops_share: float, imgsz: int, stride: int = 32) -> int:
    """The input size, a multiple of ``stride``, at which an unpruned model costs ``gflops_share`` of its GFLOPs.

    A convolutional model's compute grows with its number of input pixels, so the side shrinks with the square root.
    It is the cheaper alternative every prune should be compared with (BENCHMARKS.md, "Two controls").

    Args:
        gflops_share: Pruned GFLOPs / unpruned GFLOPs at ``imgsz``.
        imgsz: The image size both GFLOPs refer to.
        stride: The multiple Ultralytics rounds input sizes to (``input_grid``).

    Returns:
        The multiple of ``stride`` nearest ``imgsz * sqrt(gflops_share)``, at least ``stride``.

    Examples:
        >>> equal_cost_imgsz(0.5, 640)
        448
    """
    return max(stride, round(imgsz * gflops_share**0.5 / stride) * stride)


def input_grid(model: nn.Module) -> int:
    """The multiple Ultralytics rounds input sizes to for ``model``: its largest stride, at least 32 (as its trainer)."""
    return max(32, int(model.stride.max()))


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
    size = equal_cost_imgsz(s1["gflops"] / s0["gflops"], imgsz, input_grid(before))
    if size < imgsz:
        LOGGER.info(
            f"the same compute without pruning: the source model at imgsz={size} ({get_flops(before, size):.2f} "
            f"GFLOPs). Compare both on your images (yolo val ... imgsz={size}) before choosing."
        )
