"""What each supported Ultralytics head fixes, derives or frees, per task: detect, segment, pose, OBB and classify.

The backbone and neck rows are the same in every task; only the last layer differs. For each head this module knows:

* the model class Ultralytics' trainer builds for it (the stock rebuild must be of the same class);
* its output convolutions, whose widths are set by the task (classes, masks, keypoints, angles, 1280 classifier
  features) and are never pruned;
* its free yaml width: ``Segment``'s prototype width ``npr`` (yaml argument 2), shared by every hidden convolution of
  ``Proto`` / ``Proto26``;
* its training-only branches (``Proto26.semseg``, ``Pose26.cv4_sigma``), which an eval-mode trace does not see but
  which read pruned channels, so the dependency graph has to trace them too.

The box branch (``cv2``) and the task branch (``cv4``) hidden widths follow Ultralytics' formulas from the P3 width
(``max(ch[0] // 4, ...)``); only the classification branch (``cv3``) is transplanted by stock ``load``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn
from ultralytics.nn.modules import OBB, Classify, Detect, Pose, Segment
from ultralytics.nn.modules.block import Proto26
from ultralytics.nn.modules.head import OBB26, Pose26, Segment26
from ultralytics.nn.tasks import ClassificationModel, DetectionModel, OBBModel, PoseModel, SegmentationModel

MODEL_OF_HEAD = {
    Detect: DetectionModel,
    Segment: SegmentationModel,
    Segment26: SegmentationModel,
    Pose: PoseModel,
    Pose26: PoseModel,
    OBB: OBBModel,
    OBB26: OBBModel,
    Classify: ClassificationModel,
}
TASK_OF_MODEL = {
    DetectionModel: "detect",
    SegmentationModel: "segment",
    PoseModel: "pose",
    OBBModel: "obb",
    ClassificationModel: "classify",
}
PROTO_SLOT = "npr"  # Segment's yaml argument 2: the width of every hidden Proto convolution
_PROTO_HIDDEN = re.compile(r"^model\.(\d+)\.proto\.(?:feat_fuse|cv1|upsample|cv2|semseg\.[01])(?:\.conv)?$")
_OUTPUT_LISTS = ("cv2", "cv3", "cv4", "cv4_kpts", "cv4_sigma")


def is_supported_head(model: nn.Module) -> bool:
    """Return True when ``model`` is exactly the stock model class its (stock) last layer belongs to."""
    head = model.model[-1] if hasattr(model, "model") else None
    return MODEL_OF_HEAD.get(type(head)) is type(model)


def task_of(model: nn.Module) -> str:
    """Ultralytics' task name of a supported model (``detect``, ``segment``, ``pose``, ``obb``, ``classify``)."""
    return TASK_OF_MODEL[type(model)]


def class_count(model: nn.Module) -> int:
    """Number of classes the head predicts."""
    head = model.model[-1]
    return head.linear.out_features if isinstance(head, Classify) else head.nc


def build_model(cfg: dict, model: nn.Module) -> nn.Module:
    """A fresh stock model of ``model``'s class from ``cfg``, built as Ultralytics' trainer builds it.

    Args:
        cfg: Model yaml dict (its ``kpt_shape`` decides a pose head's keypoints).
        model: The source model, for its class, class count and input channels.

    Returns:
        The randomly initialised model.
    """
    return type(model)(cfg, ch=cfg.get("channels", 3), nc=class_count(model), verbose=False)


def fixed_outputs(head: nn.Module) -> list[nn.Module]:
    """Convolutions whose output widths the task fixes: every branch's last convolution, DFL, Proto's masks."""
    if isinstance(head, Classify):
        return [head.conv.conv]
    fixed = [head.dfl.conv] if hasattr(head.dfl, "conv") else []
    for attr in (*_OUTPUT_LISTS, *(f"one2one_{a}" for a in _OUTPUT_LISTS)):
        for branch in getattr(head, attr, None) or []:
            last = branch[-1] if isinstance(branch, nn.Sequential) else branch
            if isinstance(last, nn.Conv2d):
                fixed.append(last)
    proto = getattr(head, "proto", None)
    if proto is not None:
        fixed.append(proto.cv3.conv)
        if getattr(proto, "semseg", None) is not None:
            fixed.append(proto.semseg[-1])
    return fixed


def proto_width(head: nn.Module) -> int | None:
    """The prototype width ``npr`` of a segmentation head, else None."""
    return head.proto.cv2.conv.out_channels if isinstance(head, Segment) else None


def proto_slot_layer(name: str) -> int | None:
    """Layer index when convolution ``name`` is a hidden Proto convolution (its width is ``npr``), else None."""
    match = _PROTO_HIDDEN.match(name)
    return int(match[1]) if match else None


def head_row_args(head: nn.Module, args: list, npr: int | None) -> list:
    """The head's yaml arguments with its prototype width written explicitly (``Segment``: ``[nc, nm, npr]``).

    The yaml's own ``npr`` is scaled by the width multiple, which the pruned yaml sets to 1.0: the row must hold the
    actual width, the pruned one or else the model's.
    """
    if isinstance(head, Segment):
        return [args[0], args[1], npr or proto_width(head), *args[3:]]
    return list(args)


def traced_forward(model: nn.Module) -> Callable[[nn.Module, torch.Tensor], list[torch.Tensor]]:
    """A forward for tracing that also runs the head's training-only branches on the eval-mode features.

    Eval mode keeps the YOLO26 one-to-one branch attached to the network, but it skips ``Proto26.semseg`` and
    ``Pose26.cv4_sigma``; both read pruned channels, so the trace runs them after the normal forward.
    """
    head = model.model[-1]

    def forward(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        seen: dict[str, list[torch.Tensor]] = {}
        hooks = [head.register_forward_pre_hook(lambda m, args: seen.__setitem__("head", list(args[0])))]
        proto = getattr(head, "proto", None)
        if isinstance(proto, Proto26) and proto.semseg is not None:
            hooks.append(proto.feat_fuse.register_forward_pre_hook(lambda m, args: seen.__setitem__("feat", [args[0]])))
        try:
            outputs = [module(x)]
        finally:
            for hook in hooks:
                hook.remove()
        if "feat" in seen:
            outputs.append(proto.semseg(seen["feat"][0]))
        if isinstance(head, Pose26):
            for prefix in ("", "one2one_"):
                features, sigma = getattr(head, f"{prefix}cv4", None), getattr(head, f"{prefix}cv4_sigma", None)
                for i, conv in enumerate(sigma or []):
                    outputs.append(conv(features[i](seen["head"][i])))
        return outputs

    return forward
