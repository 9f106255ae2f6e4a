"""Accuracy (mAP50-95, top-1 for classify) of a model file (checkpoint or export) with Ultralytics' own validator."""

from __future__ import annotations

from pathlib import Path

from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import LOGGER

from ..errors import PruneError
from ..logs import quiet
from ..loading import restricted_yolo
from ..recovery.finetune import task_accuracy


def check_data(data: str | None) -> None:
    """Fail early, with PruneError, when ``data`` is given but is not a readable dataset yaml (or a folder)."""
    if data is None or Path(data).is_dir():  # a classification dataset is a folder, read by the validator itself
        return
    try:
        with quiet():
            check_det_dataset(str(data), autodownload=False)
    except Exception as e:
        raise PruneError(f"data='{data}' is not a usable detection dataset yaml ({type(e).__name__}: {e}).") from e


def map50_95(artifact: Path, data: str, imgsz: int, batch: int, out_dir: Path, task: str = "detect") -> float | None:
    """Validate ``artifact`` on ``data``'s val split and return the task's accuracy (``task_accuracy``: mAP50-95, or
    top-1 for classify), or None (with a warning) on failure.

    Args:
        artifact: ``.pt`` checkpoint or an export Ultralytics can load (``.onnx``, ``_openvino_model``...).
        data: Dataset yaml.
        imgsz: Validation image size (the export's fixed size).
        batch: Validation batch (exports with a fixed batch of 1 need 1).
        out_dir: Where Ultralytics may write its validation folder.
        task: The model's task (Ultralytics' validator does not read it from an export's metadata).
    """
    try:
        with quiet():
            yolo = restricted_yolo(artifact, task=task)
            metrics = yolo.val(
                data=str(data),
                imgsz=imgsz,
                batch=batch,
                device="cpu",
                workers=0,
                plots=False,
                verbose=False,
                project=str(out_dir),
                name=artifact.stem,
                exist_ok=True,
            )
        return task_accuracy(metrics)[0]
    except Exception as e:  # noqa: BLE001 (one format failing validation should not lose the latency numbers)
        LOGGER.warning(f"mAP of {artifact.name} not measured: {type(e).__name__}: {e}")
        return None
