"""Calibration images from the user's dataset, and what is computed on them: Ultralytics' own task loss and its
gradients (Taylor/Hessian importance), BatchNorm statistics (re-estimated, or matched without changing the function)."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn
from ultralytics.cfg import get_cfg
from torch.utils.data import Subset
from ultralytics.data import ClassificationDataset, YOLODataset, build_dataloader
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import colorstr

from ..errors import PruneError
from ..logs import dropped, quiet

CALIBRATION_IMAGES = 64
CALIBRATION_BATCH = 8
MISSING_LABELS = ("No labels found", "Labels are missing or empty")  # Ultralytics' warnings, unfit for unlabeled images


def calibration_batches(
    data: str,
    imgsz: int,
    images: int = CALIBRATION_IMAGES,
    seed: int = 0,
    mosaic: float = 0.0,
    task: str = "detect",
    mixup: float = 0.0,
    window: int = 0,
    verbose: bool = True,
) -> list[dict]:
    """Load ``images`` training images of ``data`` as Ultralytics training batches (mosaic off by default).

    Augmented like training, because a model's BatchNorm statistics were learned on augmented images: statistics
    re-estimated on plain images cost a trained model accuracy (measured: 0.625 -> 0.42 mAP50-95 on the shapes
    set), while augmented ones keep it. Random augmentation is seeded, so results are reproducible. To draw several
    times from one dataset, build a ``CalibrationImages`` once: this function scans the dataset on every call.

    Args:
        data: Dataset yaml, as for ``yolo train data=...``; for classification the dataset folder (``train/<class>/``).
        imgsz: Image size.
        images: How many images to use.
        seed: Seed of the random augmentation (another seed draws other augmentations of the same images).
        mosaic: Probability of Ultralytics' mosaic (four images tiled into one), as the ``mosaic`` train argument;
            the other tiles come from images already read, so from the same first ``images``.
        task: The model's task (``detect``, ``segment``, ``pose``, ``obb``, ``classify``): which labels are read with
            the images (masks, keypoints, rotated boxes, the class), for the losses that need them. Classification
            takes images spread evenly over the (class-sorted) folders and has no mosaic.
        mixup: Probability of Ultralytics' mixup (two images blended), as the ``mixup`` train argument.
        window: Which ``images`` images. A dataset of ``images`` or fewer gives all its images in every window. A
            larger one is walked in a fixed random order (seeded): window ``w`` takes its images ``w * images``
            onwards, wrapping around the end, so consecutive windows go through the dataset, and every window is
            spread over all of it even when its files are in order (consecutive video frames, one scene after
            another). 0: the first ``images`` of that order. Classification: evenly spread over the class folders,
            each window one image further on.
        verbose: Let Ultralytics log its dataset scan (images found, backgrounds, corrupt files).

    Returns:
        Batches with images scaled to [0, 1].

    Raises:
        PruneError: If the dataset cannot be found or read.

    Examples:
        >>> batches = calibration_batches("coco8.yaml", imgsz=640)
    """
    return CalibrationImages(data, imgsz, images, mosaic, task, mixup, verbose).draw(seed, window)


class CalibrationImages:
    """A dataset's training images, scanned once, drawn as augmented batches window by window (``calibration_batches``).

    Ultralytics verifies every image and label when it builds a dataset, and re-verifies them all on every build
    when the label cache cannot be written (a read-only dataset folder); a distillation that draws 30 windows from
    one instance scans the dataset once. Each draw starts from the state of a freshly built dataset (an empty mosaic
    buffer), so it returns exactly what ``calibration_batches`` with the same arguments returns.

    Args:
        data: Dataset yaml (classification: the dataset folder).
        imgsz: Image size.
        images: Images per draw.
        mosaic: Probability of mosaic (detection tasks).
        task: The model's task.
        mixup: Probability of mixup (detection tasks).
        verbose: Let Ultralytics log its dataset scan.

    Raises:
        PruneError: If the dataset cannot be found or read.

    Examples:
        >>> images = CalibrationImages("coco8.yaml", imgsz=320, mosaic=1.0)
        >>> epochs = [images.draw(seed=e, window=e) for e in range(3)]
    """

    def __init__(
        self,
        data: str,
        imgsz: int,
        images: int = CALIBRATION_IMAGES,
        mosaic: float = 0.0,
        task: str = "detect",
        mixup: float = 0.0,
        verbose: bool = True,
    ) -> None:
        """Build (scan) the dataset once."""
        self.images, self.task = images, task
        with seeded_random(0), quiet(not verbose):  # Ultralytics' image-speed check draws random files
            if task == "classify":
                self.dataset = _classification_dataset(data, imgsz)
            else:
                self.dataset = _detection_dataset(data, imgsz, task, mosaic, mixup)
                self.order = np.random.default_rng(0).permutation(len(self.dataset))  # a larger dataset's windows

    def draw(self, seed: int = 0, window: int = 0) -> list[dict]:
        """The batches of window ``window`` (``calibration_batches``' argument), augmented with seed ``seed``."""
        with seeded_random(seed):
            if self.task == "classify":
                spread = np.linspace(0, len(self.dataset) - 1, min(self.images, len(self.dataset)), dtype=int)
                spread = (spread + window) % len(self.dataset)  # folders are class-sorted; the next image after each
                return _first_batches(Subset(self.dataset, spread.tolist()), self.images, scale=1.0)
            _empty_mosaic_buffer(self.dataset)
            window_images = _windowed(self.dataset, self.order, self.images, window)
            return _first_batches(window_images, self.images, scale=1 / 255)


def _detection_dataset(data: str, imgsz: int, task: str, mosaic: float, mixup: float):
    """Ultralytics' training dataset of a detection-style ``data`` yaml, augmented as in training."""
    try:  # autodownload off: a dataset yaml's 'download:' entry is code, never run here
        info = check_det_dataset(str(data), autodownload=False)
    except Exception as e:  # Ultralytics raises several types for a missing or malformed dataset
        raise PruneError(f"Could not read dataset '{data}' for calibration: {e}") from e
    cfg = get_cfg(overrides={"imgsz": imgsz, "task": task, "mosaic": mosaic, "mixup": mixup, "cutmix": 0.0})
    try:  # the arguments of Ultralytics' build_yolo_dataset in train mode, with the class that takes unlabeled images
        return ImagesDataset(img_path=info["train"], imgsz=imgsz, batch_size=CALIBRATION_BATCH, augment=True, hyp=cfg,
                             rect=False, cache=None, single_cls=False, stride=32, pad=0.0, prefix=colorstr("train: "),
                             task=task, classes=None, data=info, fraction=1.0)
    except Exception as e:  # no images, unreadable labels...
        raise PruneError(f"Could not read dataset '{data}' for calibration: no usable training images ({e})") from e


class ImagesDataset(YOLODataset):
    """Ultralytics' training dataset, also of images that have no labels at all (a folder of unlabeled images).

    Stock training refuses an augmented dataset without a single label, and warns that training may fail when labels
    are missing; calibration, distillation and reconstruction need only the images (they read whatever labels there
    are), so neither is said here. The criteria that need labels check for them (``require_labels``).
    """

    shared_scans: dict | None = None  # inside ``sharing_scans``: (label cache file, dataset hash) -> its scan

    def cache_labels(self, path: Path = Path("./labels.cache")) -> dict:
        """Ultralytics' scan, without its 'no labels found' error for training datasets; inside ``sharing_scans``, a
        dataset scanned before is not scanned again."""
        scans, key = ImagesDataset.shared_scans, (str(path), self.get_cache_hash())
        if scans is not None and key in scans:
            return copy.deepcopy(scans[key])  # Ultralytics pops entries from the scan it is given
        augment, self.augment = self.augment, False  # the scan reads it only to choose between that error and a warning
        try:
            with dropped(*MISSING_LABELS):
                scan = super().cache_labels(path)
        finally:
            self.augment = augment
        if scans is not None:
            scans[key] = copy.deepcopy(scan)
        return scan

    def verify_labels(self, labels: list[dict], cache_path: Path) -> None:
        """Ultralytics' check of the labels' format, without its warning that labels are missing."""
        with dropped(*MISSING_LABELS):
            super().verify_labels(labels, cache_path)


@contextmanager
def sharing_scans() -> Iterator[None]:
    """Inside the block, each detection-style dataset is scanned at most once, whatever sizes it is built at.

    Ultralytics verifies every image and label when it builds a dataset and keeps the result in a label cache file
    next to the labels; where that file cannot be written (a read-only dataset folder), every build scans again (a
    COCO-sized dataset: 30-50 s on 2 CPU cores, BENCHMARKS.md sessions 27 and 30). A prune with data builds its
    dataset at two sizes (distillation at half size, the BatchNorm statistics at full size).

    Examples:
        >>> with sharing_scans():
        ...     small, full = CalibrationImages("data.yaml", 320), CalibrationImages("data.yaml", 640)  # one scan
    """
    outer = ImagesDataset.shared_scans
    ImagesDataset.shared_scans = {} if outer is None else outer
    try:
        yield
    finally:
        ImagesDataset.shared_scans = outer


def require_labels(batches: list[dict], data: str, why: str) -> None:
    """Raise PruneError when ``batches`` (from ``calibration_batches``) hold no label at all."""
    if not any(len(batch["cls"]) for batch in batches):
        raise PruneError(f"{why} needs labels, and the images of '{data}' have none: label them (YOLO format), or use "
                         "a label-free criterion (importance='auto' or 'fisher').")


def _empty_mosaic_buffer(dataset) -> None:
    """Forget the images a training dataset keeps in memory for mosaic, as a freshly built one has none."""
    for i in dataset.buffer:  # the only images held: a loaded image is kept while it is in the buffer
        dataset.ims[i] = dataset.im_hw0[i] = dataset.im_hw[i] = None
    dataset.buffer.clear()


def _windowed(dataset, order: np.ndarray, images: int, window: int):
    """Images ``window * images`` onwards of ``dataset`` in the order ``order``, wrapping around its end; the dataset
    itself when it has ``images`` or fewer."""
    if len(dataset) <= images:
        return dataset
    start = window * images
    subset = Subset(dataset, [int(order[(start + i) % len(dataset)]) for i in range(images)])
    subset.collate_fn = dataset.collate_fn  # Ultralytics' loader batches labels with the dataset's own collate
    return subset


def _classification_dataset(data, imgsz: int):
    """Ultralytics' augmented training dataset of a class-folder dataset (its images already scaled to [0, 1])."""
    path = Path(str(data))
    if not (path / "train").is_dir():
        raise PruneError(
            f"data='{data}' is not a classification dataset: pass the folder that holds train/<class>/ image folders, "
            "as for 'yolo classify train data=...'."
        )
    cfg = get_cfg(overrides={"imgsz": imgsz, "task": "classify"})
    try:
        return ClassificationDataset(str(path / "train"), cfg, augment=True, prefix="train")
    except Exception as e:  # no class folders, unreadable images...
        raise PruneError(f"Could not read dataset '{data}' for calibration: no usable training images ({e})") from e


def _first_batches(dataset, images: int, scale: float) -> list[dict]:
    """The first batches of ``dataset`` covering ``images`` images, pixel values multiplied by ``scale``."""
    loader = build_dataloader(dataset, CALIBRATION_BATCH, workers=0, shuffle=False)
    batches = []
    for batch in loader:
        batch["img"] = batch["img"].float() * scale
        batches.append(batch)
        if len(batches) * CALIBRATION_BATCH >= images:
            break
    return batches


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
    if "batch_idx" not in batch:  # classification: one class per image
        return [{"img": batch["img"][i : i + 1], "cls": batch["cls"][i : i + 1]} for i in range(len(batch["img"]))]
    samples = []
    for i in range(len(batch["img"])):
        keep = batch["batch_idx"] == i
        sample = {key: batch[key][i : i + 1] for key in PER_IMAGE if key in batch}
        sample.update({key: batch[key][keep] for key in PER_OBJECT if key in batch})
        sample["batch_idx"] = torch.zeros_like(batch["batch_idx"][keep])
        samples.append(sample)
    return samples


_ABSENT = object()


@contextmanager
def ultralytics_loss(model: nn.Module) -> Iterator[None]:
    """Inside the block ``model.loss(batch)`` is Ultralytics' own task loss with its default hyperparameters; the
    model's own ``args`` and ``criterion`` (or their absence) are restored after, so nothing of it is saved."""
    saved = {name: getattr(model, name, _ABSENT) for name in ("args", "criterion")}
    model.args, model.criterion = get_cfg(), None
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _ABSENT:
                delattr(model, name)
            else:
                setattr(model, name, value)


def accumulate_gradients(model: nn.Module, batches: list[dict], squared: bool) -> None:
    """Leave in every ``param.grad`` the summed loss gradient (Taylor) or mean squared per-image gradient (Hessian).

    BatchNorm stays in eval mode so running statistics are not touched.

    Args:
        model: The working copy of the detection model.
        batches: Calibration batches.
        squared: Accumulate squared per-image gradients (diagonal Fisher approximation of the Hessian).
    """
    for p in model.parameters():  # checkpoints store frozen parameters; the loss must reach every weight
        p.requires_grad_(True)
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    totals = [torch.zeros_like(p) for p in params]
    samples = [s for b in batches for s in single_samples(b)] if squared else batches
    with ultralytics_loss(model):
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


@torch.no_grad()
def match_batchnorm_statistics(model: nn.Module, batches: list[dict]) -> None:
    """Set every BatchNorm's running statistics to what its input has on ``batches``, without changing the function.

    Training with frozen statistics (distillation) moves the weights away from them: in training mode BatchNorm
    then normalises with batch statistics that differ from the stored ones, and a fine-tune starts from another
    network than the one evaluated. Measuring each BatchNorm's input moments (in eval mode, layer by layer as the
    model runs) and rescaling its affine parameters to match keeps the eval-mode output exactly and makes the
    stored statistics those of the images.

    Args:
        model: The model; left in eval mode.
        batches: Calibration batches (images in [0, 1]).

    Examples:
        >>> match_batchnorm_statistics(pruned, calibration_batches("data.yaml", imgsz=640))
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    sums = {norm: [0.0, 0.0, 0] for norm in norms}

    def recorder(norm, args):
        x = args[0].double()
        total = sums[norm]
        total[0] = total[0] + x.sum((0, 2, 3))
        total[1] = total[1] + x.pow(2).sum((0, 2, 3))
        total[2] += x.numel() // x.shape[1]

    handles = [norm.register_forward_pre_hook(recorder) for norm in norms]
    try:
        model.eval()
        for batch in batches:
            model(batch["img"])
    finally:
        for handle in handles:
            handle.remove()
    for norm, (first, second, count) in sums.items():
        if not count:
            continue
        mean = first / count
        var = (second / count - mean.pow(2)).clamp_min(0)  # as training-mode BatchNorm normalises
        old_std = (norm.running_var.double() + norm.eps).sqrt()
        weight = norm.weight.double()
        norm.bias.add_((weight * (mean - norm.running_mean.double()) / old_std).to(norm.bias.dtype))
        norm.weight.mul_(((var + norm.eps).sqrt() / old_std).to(norm.weight.dtype))
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)
