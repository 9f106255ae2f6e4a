"""Map a YOLO model onto the widths its yaml can express, and write pruned widths back into a stock yaml.

Ultralytics rebuilds a model from ``model.yaml`` whenever it trains (and in every DDP worker), so a pruned model is
only a stock model if its yaml describes the pruned widths exactly. This module knows which widths a stock yaml row
can hold ("slots") and writes a yaml with every width and repeat count materialised: no ``scales``, width and depth
multipliers of 1.0, so ``parse_model`` rebuilds precisely the pruned architecture.

Slots per layer:
    * ``Conv``, ``C2f``, ``C3k2``, ``SPPF``: the output width ``c2``.
    * ``C2f``, ``C3k2``: the hidden width ``int(c2 * e)``; inner widths follow Ultralytics' formulas from it. Fixed for a
      ``C3k2`` with attention blocks.
    * ``SPPF`` with a shortcut and ``C2PSA``: no slot; their output follows their input (a residual / an assert).
    * ``Detect`` and the task heads built on it: none in the yaml. Their classification branch (``cv3``,
      ``one2one_cv3``) is free because stock ``load`` transplants it; the box and task branches derive their widths
      from the P3 width. ``Segment``'s prototype width ``npr`` is a yaml argument (see ``heads``).
    * ``Classify``: none; its 1280 features are fixed.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from ultralytics.nn.modules import C2f, C2PSA, C3k2, Concat, Conv, DWConv, SPPF
from ultralytics.nn import modules as ultralytics_modules
from ultralytics.nn.modules.block import C3k
from ultralytics.nn.tasks import BaseModel

from ..errors import PruneError
from .heads import MODEL_OF_HEAD, PROTO_SLOT, build_model, class_count, head_row_args, is_supported_head

HEAD_LAYERS = tuple(head.__name__ for head in MODEL_OF_HEAD)
SUPPORTED_LAYERS = ("Conv", "C2f", "C3k2", "SPPF", "C2PSA", "Concat", "nn.Upsample", *HEAD_LAYERS)
SUPPORTED_FAMILIES = (
    "YOLOv8, YOLO11 and YOLO26 detect, segment, pose, OBB and classify models (scales n, s, m, l, x; heads "
    f"{', '.join(HEAD_LAYERS)})"
)


@dataclass(frozen=True)
class Slot:
    """A width the stock yaml can hold: ``kind`` is ``"c2"`` or ``"hidden"`` of layer ``layer``."""

    layer: int
    kind: str


def check_supported(model: nn.Module) -> None:
    """Raise PruneError unless ``model`` is a supported, unfused YOLO model of a supported task.

    Args:
        model: The model to check.

    Raises:
        PruneError: Naming the task, layer or state that is not supported.
    """
    if not is_supported_head(model):
        head = model.model[-1] if isinstance(getattr(model, "model", None), nn.Sequential) else None
        raise PruneError(
            f"yolo-prune supports {SUPPORTED_FAMILIES}; got a {type(model).__name__} ending in a "
            f"{type(head).__name__} (task '{getattr(model, 'task', 'unknown')}'). Pass one of those checkpoints or "
            "yamls."
        )
    rows = model.yaml.get("backbone", []) + model.yaml.get("head", [])
    unknown = sorted({str(row[2]) for row in rows} - set(SUPPORTED_LAYERS))
    if unknown or len(rows) != len(model.model):
        raise PruneError(
            f"yolo-prune supports {SUPPORTED_FAMILIES}, built from {', '.join(SUPPORTED_LAYERS)}; "
            f"this model's yaml has unsupported layers: {', '.join(unknown) or 'mismatched rows'}."
        )
    if model.is_fused() or any(isinstance(m, Conv) and not hasattr(m, "bn") for m in model.modules()):
        raise PruneError(
            "This model is fused (BatchNorm folded into its convolutions), so channels can no longer be scored and "
            "removed consistently. Prune the unfused checkpoint (the .pt that training wrote)."
        )
    _check_stock_modules(model, rows)


def _check_stock_modules(model: BaseModel, rows: list) -> None:
    """Refuse layers that are not exactly the stock classes their yaml names (custom subclasses, wrappers, extras).

    The pruned model is rebuilt from the yaml with stock classes, so anything the yaml cannot describe would be
    silently replaced: a stock rebuild must have the same modules, of the same classes, under the same names.
    """
    for i, (layer, row) in enumerate(zip(model.model, rows)):
        name = str(row[2])
        expected = getattr(nn, name[3:], None) if name.startswith("nn.") else getattr(ultralytics_modules, name, None)
        if type(layer) is not expected:
            raise PruneError(
                f"yolo-prune supports {SUPPORTED_FAMILIES} built from stock Ultralytics layers; layer {i} is a "
                f"{type(layer).__name__}, not the stock {name} its yaml names. Custom modules are not supported."
            )
    stock = build_from_yaml(model.yaml, model)
    ours = {name: type(m) for name, m in model.named_modules(remove_duplicate=False)}
    theirs = {name: type(m) for name, m in stock.named_modules(remove_duplicate=False)}
    foreign = sorted(name for name in ours.keys() ^ theirs.keys() if name) or sorted(
        name for name in ours if ours[name] is not theirs[name]
    )
    if foreign:
        raise PruneError(
            f"yolo-prune supports {SUPPORTED_FAMILIES} built from stock Ultralytics layers; this model has modules a "
            f"stock rebuild of its yaml would not have: {', '.join(foreign[:3])}. Custom modules are not supported."
        )


def has_attention(layer: nn.Module) -> bool:
    """Return True for a ``C3k2`` whose blocks contain attention (its hidden width stays fixed)."""
    return isinstance(layer, C3k2) and isinstance(layer.m[0], nn.Sequential)


def follows_input(layer: nn.Module) -> bool:
    """Return True for layers whose output width must equal their input width (C2PSA, SPPF with a shortcut)."""
    return isinstance(layer, C2PSA) or (isinstance(layer, SPPF) and getattr(layer, "add", False))


def current_widths(model: BaseModel) -> dict[Slot, int]:
    """Read every free slot's width from a (possibly already pruned) model.

    Args:
        model: A supported model.

    Returns:
        Mapping of slot to its current width.
    """
    widths = {}
    for i, layer in enumerate(model.model):
        if isinstance(layer, Conv):
            widths[Slot(i, "c2")] = layer.conv.out_channels
        elif isinstance(layer, (C2f, SPPF)) and not follows_input(layer):
            widths[Slot(i, "c2")] = layer.cv2.conv.out_channels
            if isinstance(layer, C2f) and not has_attention(layer):
                widths[Slot(i, "hidden")] = layer.cv2.conv.in_channels // (2 + len(layer.m))
    return widths


def output_shapes(model: BaseModel, modules: list[nn.Module], imgsz: int = 64) -> dict[nn.Module, torch.Size]:
    """Shape of each of ``modules``' outputs (those that are one tensor) when ``model`` runs, in eval mode, on one
    empty ``imgsz`` image."""
    shapes: dict[nn.Module, torch.Size] = {}

    def record(module: nn.Module, args, output) -> None:
        if isinstance(output, torch.Tensor):
            shapes[module] = output.shape

    handles = [module.register_forward_hook(record) for module in modules]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, model.yaml.get("channels", 3), imgsz, imgsz))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def layer_strides(model: BaseModel, imgsz: int = 64) -> dict[int, int]:
    """Output stride (input pixels per output cell) of every yaml layer whose output is one feature map."""
    shapes = output_shapes(model, list(model.model), imgsz)
    return {i: max(1, round(imgsz / shapes[m][-1])) for i, m in enumerate(model.model) if len(shapes.get(m, ())) == 4}


def expansion(hidden: int, c2: int) -> float:
    """Return an expansion ``e`` with ``int(c2 * e) == hidden`` exactly, as ``parse_model`` computes it.

    Args:
        hidden: Wanted hidden width.
        c2: Output width of the block.

    Returns:
        The float to write into the yaml.
    """
    e = hidden / c2
    while int(c2 * e) < hidden:
        e = math.nextafter(e, math.inf)
    return e


def _layer_output_widths(model: BaseModel, widths: dict[Slot, int]) -> list[int]:
    """Output width of every layer under the new slot widths, following Concat and input-following layers."""
    out: list[int] = []
    for i, layer in enumerate(model.model):
        sources = [layer.f] if isinstance(layer.f, int) else layer.f
        inputs = [out[s] if s != -1 else out[i - 1] for s in sources] if i else [0]
        if Slot(i, "c2") in widths:
            out.append(widths[Slot(i, "c2")])
        elif isinstance(layer, Concat):
            out.append(sum(inputs))
        else:  # Upsample, the head, C2PSA and shortcut SPPF keep their input width
            out.append(inputs[0])
    return out


def _row_args(layer: nn.Module, args: list, c2: int, hidden: int | None, npr: int | None) -> list:
    """Return the yaml arguments of one row with its widths written explicitly."""
    if type(layer) in MODEL_OF_HEAD:
        return head_row_args(layer, args, npr)
    if isinstance(layer, C3k2):  # C3k2(c1, c2, n, c3k, e, attn, g, shortcut)
        tail = list(args[3:]) if len(args) > 3 else []
        e = expansion(hidden if hidden is not None else layer.c, c2)
        return [c2, isinstance(layer.m[0], C3k), e, *tail]
    if isinstance(layer, C2f):  # C2f(c1, c2, n, shortcut, g, e)
        shortcut = args[1] if len(args) > 1 else False
        g = args[2] if len(args) > 2 else 1
        return [c2, shortcut, g, expansion(hidden, c2)]
    if isinstance(layer, C2PSA):  # C2PSA(c1, c2, n, e): hidden width stays, attention heads unchanged
        return [c2, expansion(layer.c, c2)]
    if isinstance(layer, (Conv, SPPF)):  # row length kept: a short SPPF row means an activated cv1 (legacy)
        return [c2, *args[1:]]
    return list(args)


def pruned_yaml(model: BaseModel, widths: dict[Slot, int]) -> dict:
    """Write a stock yaml dict that rebuilds ``model`` with the given slot widths.

    Args:
        model: The supported source model (its yaml and modules give every row's shape).
        widths: Width for every free slot (see ``current_widths``).

    Returns:
        A yaml dict without scales: explicit widths, expansions and repeat counts.
    """
    src = copy.deepcopy(model.yaml)
    rows = src["backbone"] + src["head"]
    outs = _layer_output_widths(model, widths)
    new_rows = []
    for i, ((f, _, name, args), layer) in enumerate(zip(rows, model.model)):
        n = len(layer.m) if isinstance(layer, (C2f, C2PSA)) else 1
        row = _row_args(layer, list(args), outs[i], widths.get(Slot(i, "hidden")), widths.get(Slot(i, PROTO_SLOT)))
        new_rows.append([f, n, name, row])
    for key in ("scales", "depth_multiple", "width_multiple"):
        src.pop(key, None)
    src.update(depth_multiple=1.0, width_multiple=1.0, nc=class_count(model))
    n_backbone = len(src["backbone"])
    src["backbone"], src["head"] = new_rows[:n_backbone], new_rows[n_backbone:]
    return src


def build_from_yaml(cfg: dict, model: BaseModel) -> BaseModel:
    """Build a stock model of ``model``'s class from ``cfg`` exactly as Ultralytics' trainer does.

    Args:
        cfg: Model yaml dict.
        model: Source model, for its class, input channels and class count.

    Returns:
        A freshly initialised model.
    """
    return build_model(copy.deepcopy(cfg), model)


def cls_branch(c_in: int, c_mid: int, c_out: int, nc: int, legacy: bool) -> nn.Sequential:
    """A Detect classification branch with hidden widths ``c_mid`` and ``c_out``, built as ``Detect`` builds it."""
    if legacy:
        return nn.Sequential(Conv(c_in, c_mid, 3), Conv(c_mid, c_out, 3), nn.Conv2d(c_out, nc, 1))
    return nn.Sequential(
        nn.Sequential(DWConv(c_in, c_in, 3), Conv(c_in, c_mid, 1)),
        nn.Sequential(DWConv(c_mid, c_mid, 3), Conv(c_mid, c_out, 1)),
        nn.Conv2d(c_out, nc, 1),
    )


def resize_cls_branches(model: BaseModel, widths: dict[Slot, int]) -> None:
    """Give ``model``'s Detect cls branches the hidden widths in ``widths`` (slots ``cv3.<level>.<0|1>``), in place.

    Used to measure the GFLOPs of a planned architecture; weights are fresh.
    """
    head = model.model[-1]
    for attr in ("cv3", "one2one_cv3"):
        branches = getattr(head, attr, None)
        for level, branch in enumerate(branches or []):
            c_mid = widths.get(Slot(head.i, f"{attr}.{level}.0"))
            c_out = widths.get(Slot(head.i, f"{attr}.{level}.1"))
            if c_mid is None and c_out is None:
                continue
            legacy = isinstance(branch[0], Conv)
            c_in = branch[0].conv.in_channels if legacy else branch[0][0].conv.in_channels
            c_mid = c_mid or (branch[1].conv.in_channels if legacy else branch[1][0].conv.in_channels)
            c_out = c_out or branch[-1].in_channels
            branches[level] = cls_branch(c_in, c_mid, c_out, head.nc, legacy)
