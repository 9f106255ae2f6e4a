"""Assertions shared by the test modules."""

import logging
import pickletools
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from ultralytics.nn.modules import C2f, Conv
from ultralytics.nn.tasks import DetectionModel

from yolo_prune.pruning.channel_map import batchnorms
from yolo_prune.pruning.heads import class_count


def with_distinct_batchnorms(model: torch.nn.Module, images: torch.Tensor) -> torch.nn.Module:
    """``model`` with distinct BatchNorm affine parameters whose running statistics are measured on ``images``.

    Then every BatchNorm's output on ``images`` has mean ``beta`` and spread ``gamma``, as after training.
    """
    generator = torch.Generator().manual_seed(0)
    for norm in batchnorms(model).values():
        norm.weight.data = torch.rand(norm.num_features, generator=generator) + 0.5
        norm.bias.data = torch.randn(norm.num_features, generator=generator)
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


@contextmanager
def ultralytics_messages() -> Iterator[list[str]]:
    """The messages Ultralytics' LOGGER receives inside the block, in order (whatever its level lets through)."""
    from ultralytics.utils import LOGGER

    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    LOGGER.addHandler(handler)
    try:
        yield messages
    finally:
        LOGGER.removeHandler(handler)


def assert_stock_rebuild_keeps_every_tensor(model: DetectionModel) -> None:
    """Rebuild from the model's yaml exactly as Ultralytics' trainer does, load, and compare every tensor."""
    model = model.float()
    rebuilt = type(model)(model.yaml, nc=class_count(model), verbose=False)
    rebuilt.load(model, verbose=False)
    ours, theirs = model.state_dict(), rebuilt.state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        assert theirs[key].shape == value.shape, key
        assert torch.equal(theirs[key], value), key


def slot_widths(model: DetectionModel) -> list[int]:
    """Every width pruning decides: layer outputs, C2f/C3k2 hidden widths and the cls-branch hidden widths."""
    widths = []
    for layer in model.model:
        if isinstance(layer, Conv):
            widths.append(layer.conv.out_channels)
        elif isinstance(layer, C2f):
            widths += [layer.cv2.conv.out_channels, layer.cv1.conv.out_channels // 2]
    head = model.model[-1]
    widths += [branch[-1].in_channels for branch in head.cv3]
    return widths


def output_shapes(model: DetectionModel, imgsz: int = 64) -> list[tuple]:
    """Shapes of the eval-mode outputs (decoded predictions and raw head tensors)."""
    model.eval()
    with torch.no_grad():
        y, preds = model(torch.zeros(1, 3, imgsz, imgsz))
    raw = preds.get("one2many", preds)
    return [tuple(y.shape), tuple(raw["boxes"].shape), tuple(raw["scores"].shape)]


def pickled_globals(path) -> set[str]:
    """Every class or function a torch checkpoint's pickle refers to (``module.name``), read without unpickling."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    names, strings = set(), []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in {"SHORT_BINUNICODE", "BINUNICODE", "UNICODE"}:
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            names.add(f"{strings[-2]}.{strings[-1]}")
        elif opcode.name == "GLOBAL":
            names.add(arg.replace(" ", "."))
    return names
