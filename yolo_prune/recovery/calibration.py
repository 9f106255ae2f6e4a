"""Gradients of Ultralytics' own detection loss on a few batches of the user's data, for Taylor/Hessian importance."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn
from ultralytics.cfg import get_cfg
from ultralytics.data import build_dataloader, build_yolo_dataset
from ultralytics.data.utils import check_det_dataset

from ..errors import PruneError

CALIBRATION_IMAGES = 64
CALIBRATION_BATCH = 8


def calibration_batches(
    data: str, imgsz: int, images: int = CALIBRATION_IMAGES, seed: int = 0, mosaic: float = 0.0, task: str = "detect"
) -> list[dict]:
    """Load the first ``images`` training images of ``data`` as Ultralytics training batches (mosaic off by default).

    Augmented like training, because a model's BatchNorm statistics were learned on augmented images: statistics
    re-estimated on plain images cost a trained model accuracy (measured: 0.625 -> 0.42 mAP50-95 on the shapes
    set), while augmented ones keep it. Random augmentation is seeded, so results are reproducible.

    Args:
        data: Dataset yaml, as for ``yolo train data=...``.
        imgsz: Image size.
        images: How many images to use.
        seed: Seed of the random augmentation (another seed draws other augmentations of the same images).
        mosaic: Probability of Ultralytics' mosaic (four images tiled into one), as the ``mosaic`` train argument;
            the other tiles come from images already read, so from the same first ``images``.
        task: The model's task (``detect``, ``segment``, ``pose``, ``obb``): which labels are read with the images
            (masks, keypoints, rotated boxes), for the losses that need them.

    Returns:
        Batches with images scaled to [0, 1].

    Raises:
        PruneError: If the dataset cannot be found or read.

    Examples:
        >>> batches = calibration_batches("coco8.yaml", imgsz=640)
    """
    check_task_data(task, data)
    try:  # autodownload off: a dataset yaml's 'download:' entry is code, never run here
        info = check_det_dataset(str(data), autodownload=False)
    except Exception as e:  # Ultralytics raises several types for a missing or malformed dataset
        raise PruneError(f"Could not read dataset '{data}' for calibration: {e}") from e
    cfg = get_cfg(overrides={"imgsz": imgsz, "task": task, "mosaic": mosaic, "mixup": 0.0, "cutmix": 0.0})
    with seeded_random(seed):
        try:
            dataset = build_yolo_dataset(cfg, info["train"], CALIBRATION_BATCH, info, mode="train", rect=False)
        except Exception as e:  # no images, unreadable labels...
            raise PruneError(f"Could not read dataset '{data}' for calibration: no usable training images ({e})") from e
        loader = build_dataloader(dataset, CALIBRATION_BATCH, workers=0, shuffle=False)
        batches = []
        for batch in loader:
            batch["img"] = batch["img"].float() / 255
            batches.append(batch)
            if len(batches) * CALIBRATION_BATCH >= images:
                break
    return batches


def check_task_data(task: str, data) -> None:
    """Refuse ``data=`` for a task whose images this module cannot load yet (classification folders)."""
    if task == "classify":
        raise PruneError(
            f"data='{data}' is not supported for classification models yet (distillation, calibration and data-driven "
            "importance read detection-style datasets); prune without data, then fine-tune with yolo train."
        )


@contextmanager
def seeded_random(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch random generators inside the block and restore the caller's states after."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


PER_IMAGE = ("img", "masks")  # batch tensors with one entry per image (overlapping masks are one map per image)
PER_OBJECT = ("cls", "bboxes", "keypoints")  # one entry per labelled object, matched to images by batch_idx


def single_samples(batch: dict) -> list[dict]:
    """Split a batch into one-image batches (targets re-indexed), for per-sample gradients."""
    samples = []
    for i in range(len(batch["img"])):
        keep = batch["batch_idx"] == i
        sample = {key: batch[key][i : i + 1] for key in PER_IMAGE if key in batch}
        sample.update({key: batch[key][keep] for key in PER_OBJECT if key in batch})
        sample["batch_idx"] = torch.zeros_like(batch["batch_idx"][keep])
        samples.append(sample)
    return samples


def accumulate_gradients(model: nn.Module, batches: list[dict], squared: bool) -> None:
    """Leave in every ``param.grad`` the summed loss gradient (Taylor) or mean squared per-image gradient (Hessian).

    BatchNorm stays in eval mode so running statistics are not touched.

    Args:
        model: The working copy of the detection model.
        batches: Calibration batches.
        squared: Accumulate squared per-image gradients (diagonal Fisher approximation of the Hessian).
    """
    model.args = get_cfg()
    model.criterion = None
    for p in model.parameters():  # checkpoints store frozen parameters; the loss must reach every weight
        p.requires_grad_(True)
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    totals = [torch.zeros_like(p) for p in params]
    samples = [s for b in batches for s in single_samples(b)] if squared else batches
    for sample in samples:
        model.zero_grad()
        model.loss(sample)[0].sum().backward()
        for total, p in zip(totals, params):
            if p.grad is not None:
                total += p.grad.pow(2) if squared else p.grad
    for total, p in zip(totals, params):
        p.grad = total / len(samples) if squared else total
    model.eval()


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: list[dict]) -> None:
    """Re-estimate every BatchNorm's running statistics on ``batches`` (cumulative average), weights untouched.

    Removing channels shifts the inputs of the layers after them, so the stored statistics no longer match; fresh
    statistics recover much of the accuracy before any fine-tuning (the "adaptive BN" step of EagleEye).

    Args:
        model: A pruned detection model; left in eval mode.
        batches: Calibration batches.

    Examples:
        >>> recalibrate_batchnorm(pruned, calibration_batches("data.yaml", imgsz=640))
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over all batches
    model.train()
    for batch in batches:
        model(batch["img"])
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()
