"""Stock Ultralytics fine-tuning and validation of a checkpoint, as the iterative and sensitivity tools use them.

Nothing here changes how Ultralytics trains: a pruned checkpoint is an ordinary one, so these are thin wrappers
that pin the output folders (absolute, reused) and return plain numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultralytics.utils.torch_utils import get_flops

from ..errors import PruneError
from ..loading import restricted_yolo

RESERVED_TRAIN_KEYS = ("model", "data", "epochs", "imgsz", "project", "name", "exist_ok", "resume")
SHORT_FINETUNE = {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 0}
"""Stock train arguments for a short fine-tune: with Ultralytics' defaults (``optimizer=auto`` picks AdamW at lr
1.2e-4 for 80 classes, and the warm-up lasts at least 100 iterations) 10 epochs on 128 images are all warm-up. Real
COCO yolov8n at ``speed_up=1.5``, 10 epochs on coco128: defaults 0.0002 mAP50-95, this recipe 0.011 from the same
start (BENCHMARKS.md, "Real models")."""
VAL_KEYS = ("batch", "device", "workers", "half", "conf", "iou", "max_det", "rect", "single_cls")


@dataclass(frozen=True)
class Scores:
    """Validation accuracy and size of one checkpoint.

    ``map50_95`` and ``map50`` are the task's own metric (``task_accuracy``): box mAP for detect and OBB, mask mAP
    for segment, pose mAP for pose; top-1 and top-5 accuracy for classify.
    """

    map50_95: float
    map50: float
    gflops: float
    params: int


def check_train_kwargs(train_kwargs: dict[str, Any]) -> None:
    """Refuse Ultralytics train arguments that the caller's own parameters already decide.

    Raises:
        PruneError: If ``train_kwargs`` names one of ``RESERVED_TRAIN_KEYS``.
    """
    clash = [key for key in RESERVED_TRAIN_KEYS if key in train_kwargs]
    if clash:
        raise PruneError(
            f"{', '.join(clash)} cannot be passed as an extra train argument here: the function sets it itself "
            "(use its own model/data/epochs/imgsz/project/name parameters)."
        )


def check_data(data: str | os.PathLike) -> str:
    """Return ``data`` as a string, failing early with a clear message if it is a missing local yaml."""
    text = str(data)
    if text.endswith((".yaml", ".yml")) and os.sep in text and not Path(text).is_file():
        raise PruneError(f"data='{text}' does not exist; pass the path of an Ultralytics data yaml.")
    return text


def finetune(
    weights: str | os.PathLike, data: str, *, epochs: int, imgsz: int, run_dir: Path, name: str, **train_kwargs: Any
) -> Path:
    """Fine-tune a checkpoint with the stock Ultralytics trainer; return the run's ``best.pt`` (``last.pt`` if none).

    Args:
        weights: Checkpoint to start from (a pruned checkpoint is rebuilt from its yaml by Ultralytics).
        data: Ultralytics data yaml.
        epochs: Training epochs.
        imgsz: Training image size.
        run_dir: Absolute folder the run is written under, as ``run_dir/name``.
        name: Run name (the folder is reused if it exists).
        **train_kwargs: Any other ``YOLO.train`` argument (``batch``, ``lr0``, ``distill_model``, ...).

    Returns:
        Path of the best checkpoint of the run.

    Examples:
        >>> from pathlib import Path
        >>> run = Path("/tmp/ft")
        >>> finetune("pruned.pt", "data.yaml", epochs=10, imgsz=640, run_dir=run, name="ft")  # doctest: +SKIP
    """
    yolo = restricted_yolo(weights)
    yolo.train(
        data=data, epochs=epochs, imgsz=imgsz, project=str(run_dir), name=name, exist_ok=True, **train_kwargs
    )
    folder = run_dir / name / "weights"
    best = folder / "best.pt"
    return best if best.is_file() else folder / "last.pt"


def validate(weights: str | os.PathLike, data: str, *, imgsz: int, run_dir: Path, **val_kwargs: Any) -> Scores:
    """Validate a checkpoint with stock ``YOLO.val`` (no plots) and measure its GFLOPs and parameters.

    Args:
        weights: Checkpoint to validate.
        data: Ultralytics data yaml.
        imgsz: Validation image size; GFLOPs are reported at this size too.
        run_dir: Absolute folder whose ``val`` subfolder receives (and reuses) the validator's output.
        **val_kwargs: Other ``YOLO.val`` arguments (``batch``, ``device``, ``fraction``, ``split``, ...).

    Returns:
        mAP50-95, mAP50, GFLOPs at ``imgsz`` and the parameter count.

    Examples:
        >>> from pathlib import Path
        >>> validate("best.pt", "data.yaml", imgsz=640, run_dir=Path("/tmp/v")).map50_95  # doctest: +SKIP
        0.52
    """
    model = restricted_yolo(weights)
    kwargs = {"plots": False, "verbose": False, "save_json": False, **val_kwargs}
    metrics = model.val(data=data, imgsz=imgsz, project=str(run_dir), name="val", exist_ok=True, **kwargs)
    net = model.model
    accuracy, accuracy50 = task_accuracy(metrics)
    return Scores(
        map50_95=accuracy,
        map50=accuracy50,
        gflops=float(get_flops(net, imgsz)),
        params=sum(p.numel() for p in net.parameters()),
    )


def task_accuracy(metrics: Any) -> tuple[float, float]:
    """The task's accuracy from Ultralytics' validation metrics: mask, pose or box mAP50-95 and mAP50, or top-1 and
    top-5 accuracy for classification.

    Examples:
        >>> task_accuracy(YOLO("best.pt").val(data="data.yaml"))  # doctest: +SKIP
        (0.52, 0.71)
    """
    if hasattr(metrics, "top1"):
        return float(metrics.top1), float(metrics.top5)
    part = next(getattr(metrics, name) for name in ("seg", "pose", "box") if hasattr(metrics, name))
    return float(part.map), float(part.map50)


def with_short_finetune_recipe(train_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``SHORT_FINETUNE`` under ``train_kwargs``, unless the caller set any of its keys (then theirs alone)."""
    if SHORT_FINETUNE.keys() & train_kwargs.keys():
        return dict(train_kwargs)
    return {**SHORT_FINETUNE, **train_kwargs}


def val_kwargs_from(train_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The training arguments that validation should use too (batch, device, workers, ...)."""
    return {key: train_kwargs[key] for key in VAL_KEYS if key in train_kwargs}
