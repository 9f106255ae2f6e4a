"""Resolve what a user passes as a model (path, yaml, YOLO, DetectionModel) without touching their file or object."""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

from .errors import PruneError

ModelSource = str | os.PathLike | YOLO | DetectionModel


def load_model(source: ModelSource) -> tuple[DetectionModel, Path | None]:
    """Return the DetectionModel behind ``source`` and the checkpoint file it came from (None otherwise).

    Checkpoints load only through Ultralytics' restricted (``weights_only``) loader; official names such as
    ``yolov8n.pt`` are downloaded by Ultralytics when they are not local.

    Args:
        source: A ``.pt`` checkpoint, a model yaml (``yolov8n.yaml`` builds a randomly initialised model), an
            ``ultralytics.YOLO`` or a ``DetectionModel``. Objects are read, never modified.

    Returns:
        The model (the caller's own object for in-memory inputs: copy before changing it) and its file, if any.

    Raises:
        PruneError: For a missing, empty or unreadable file, or an object that is not a YOLO model.
    """
    if isinstance(source, YOLO):
        source = source.model
    if isinstance(source, nn.Module):
        if not isinstance(source, DetectionModel):
            raise PruneError(f"Expected an Ultralytics YOLO detection model, got a {type(source).__name__}.")
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise PruneError(f"model must be a .pt/.yaml path, a YOLO or a DetectionModel, not {type(source).__name__}.")
    path = Path(source)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return _from_yaml(path), None
    return _from_checkpoint(path), path if path.exists() else None


def _from_yaml(path: Path) -> DetectionModel:
    try:
        return YOLO(str(path)).model
    except FileNotFoundError as e:
        raise PruneError(f"Model yaml '{path}' not found (neither a local file nor an Ultralytics model name).") from e
    except Exception as e:  # Ultralytics raises many types for a malformed yaml
        raise PruneError(f"Could not build a model from '{path}': {e}") from e


def _from_checkpoint(path: Path) -> DetectionModel:
    if path.suffix.lower() != ".pt":
        raise PruneError(f"'{path}' is not a PyTorch checkpoint (.pt) or model yaml (.yaml); export formats can't be pruned.")
    if not path.exists() and path.name not in GITHUB_ASSETS_NAMES:
        raise PruneError(f"Checkpoint '{path}' not found. Check the path, or use an official name like 'yolov8n.pt'.")
    if path.exists() and path.stat().st_size == 0:
        raise PruneError(f"Checkpoint '{path}' is empty (0 bytes); it was probably not written completely.")
    try:
        model = YOLO(str(path)).model
    except Exception as e:  # truncated zip, foreign pickle, unsafe globals, failed download...
        raise PruneError(f"Could not load '{path}' as an Ultralytics checkpoint ({type(e).__name__}: {e}).") from e
    if not isinstance(model, nn.Module):
        raise PruneError(f"'{path}' holds no PyTorch model.")
    return model
