"""Resolve what a user passes as a model (path, yaml, YOLO, model object) without touching their file or object."""

from __future__ import annotations

import ast
import contextlib
import os
import threading
from pathlib import Path

import torch
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import BaseModel, guess_model_task, torch_safe_load, yaml_model_load
from ultralytics.utils import DEFAULT_CFG_DICT
from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

from .errors import PruneError

ModelSource = str | os.PathLike | YOLO | BaseModel
_RESTRICTED = threading.Lock()


@contextlib.contextmanager
def restricted_loading():
    """Make every Ultralytics checkpoint load inside the block use the restricted (``weights_only``) loader.

    Ultralytics unpickles ``.pt`` files without restriction unless ``ULTRALYTICS_SAFE_LOAD=1`` was set before it was
    imported; this turns the same switch on for the block, so ``YOLO(path)``, ``.train()`` weight loading, etc. accept
    only allow-listed classes. Blocks run one at a time. Subprocesses need ``ULTRALYTICS_SAFE_LOAD=1`` in their
    environment instead.

    Examples:
        >>> with restricted_loading():
        ...     model = YOLO("untrusted.pt")  # doctest: +SKIP
    """
    import ultralytics.nn.tasks as tasks

    with _RESTRICTED:
        previous, tasks.SAFE_LOAD = tasks.SAFE_LOAD, True
        try:
            yield
        finally:
            tasks.SAFE_LOAD = previous


def restricted_yolo(path: str | os.PathLike, task: str | None = None) -> YOLO:
    """``YOLO(path, task=task)`` loaded through the restricted loader: the checkpoint is treated as untrusted.

    Args:
        path: Checkpoint or exported model to open.
        task: Ultralytics task, when the file cannot say (exported models).

    Returns:
        The loaded ``ultralytics.YOLO``.

    Examples:
        >>> model = restricted_yolo("best.pt")  # doctest: +SKIP
    """
    with restricted_loading():
        return YOLO(str(path), task=task)


def load_model(source: ModelSource) -> tuple[BaseModel, Path | None]:
    """Return the Ultralytics model behind ``source`` and the checkpoint file it came from (None otherwise).

    Checkpoints load only through Ultralytics' restricted (``weights_only``) loader; official names such as
    ``yolov8n.pt`` are downloaded by Ultralytics when they are not local.

    Args:
        source: A ``.pt`` checkpoint, a model yaml (``yolov8n.yaml`` builds a randomly initialised model), an
            ``ultralytics.YOLO`` or an Ultralytics model (``DetectionModel``, ``SegmentationModel``, ...). Objects
            are read, never modified.

    Returns:
        The model (the caller's own object for in-memory inputs: copy before changing it) and its file, if any.

    Raises:
        PruneError: For a missing, empty or unreadable file, or an object that is not a YOLO model.
    """
    if isinstance(source, YOLO):
        source = source.model
    if isinstance(source, nn.Module):
        if not isinstance(source, BaseModel):
            raise PruneError(f"Expected an Ultralytics YOLO model, got a {type(source).__name__}.")
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise PruneError(f"model must be a .pt/.yaml path, a YOLO or a YOLO model, not {type(source).__name__}.")
    path = Path(source)
    if path.suffix.lower() in {".yaml", ".yml"}:
        return _from_yaml(path), None
    return _from_checkpoint(path), path if path.exists() else None


def _from_yaml(path: Path) -> BaseModel:
    try:
        _check_activation(yaml_model_load(path), path)  # read with a safe yaml loader; built only if it passes
        return YOLO(str(path)).model
    except PruneError:
        raise
    except FileNotFoundError as e:
        raise PruneError(f"Model yaml '{path}' not found (neither a local file nor an Ultralytics model name).") from e
    except Exception as e:  # Ultralytics raises many types for a malformed yaml
        raise PruneError(f"Could not build a model from '{path}': {e}") from e


def _from_checkpoint(path: Path) -> BaseModel:
    """Load a checkpoint as ``YOLO(path).model`` would, but always with Ultralytics' restricted loader.

    ``YOLO(path)`` unpickles without restriction unless ``ULTRALYTICS_SAFE_LOAD`` is set, which runs any code a
    crafted file carries; ``torch_safe_load(safe_only=True)`` (``weights_only`` plus an allow-list) reconstructs only
    known Ultralytics/torch classes and plain data.
    """
    if path.suffix.lower() != ".pt":
        raise PruneError(f"'{path}' is not a PyTorch checkpoint (.pt) or model yaml (.yaml); export formats can't be pruned.")
    if not path.exists() and path.name not in GITHUB_ASSETS_NAMES:
        raise PruneError(f"Checkpoint '{path}' not found. Check the path, or use an official name like 'yolov8n.pt'.")
    if path.is_dir():
        raise PruneError(f"'{path}' is a folder, not a checkpoint file.")
    if path.exists() and path.stat().st_size == 0:
        raise PruneError(f"Checkpoint '{path}' is empty (0 bytes); it was probably not written completely.")
    if not hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):  # else Ultralytics loads unrestricted
        raise PruneError(f"Loading checkpoints safely needs torch>=2.6 (found {torch.__version__}); please upgrade.")
    try:
        ckpt, file = torch_safe_load(str(path), safe_only=True)
    except Exception as e:  # truncated zip, foreign pickle, unsafe globals, failed download...
        raise PruneError(f"Could not load '{path}' as an Ultralytics checkpoint ({type(e).__name__}: {e}).") from e
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(model, nn.Module):
        raise PruneError(f"'{path}' holds no PyTorch model.")
    if ckpt.get("modelopt"):
        raise PruneError(f"'{path}' is a quantization-aware-trained checkpoint; prune the float checkpoint instead.")
    _check_activation(getattr(model, "yaml", None), path)
    model = model.float().eval()  # what Ultralytics' load_checkpoint and YOLO._load leave behind
    task = getattr(model, "task", None) or guess_model_task(model)  # from the model before default args say 'detect'
    args = {**DEFAULT_CFG_DICT, **(ckpt.get("train_args") or {})}
    model.args = YOLO._reset_ckpt_args(args)
    model.pt_path = str(file)
    model.task = task
    if not hasattr(model, "stride"):
        model.stride = torch.tensor([32.0])
    return model


def _check_activation(cfg, path: Path) -> None:
    """Refuse a yaml ``activation`` that is not a literal ``nn.<Module>(...)`` call.

    Stock ``parse_model`` ``eval``s this string whenever the model is rebuilt from its yaml (by the pruner and by
    every ``yolo train``), so a crafted checkpoint could otherwise run code after a safe load.
    """
    act = cfg.get("activation") if isinstance(cfg, dict) else None
    if act is None or _is_torch_nn_call(act):
        return
    raise PruneError(f"'{path}' has a yaml activation {act!r} that is not a plain torch.nn module call; refusing it.")


def _is_torch_nn_call(text) -> bool:
    """True for ``nn.X(...)`` / ``torch.nn.X(...)`` with an ``nn.Module`` class ``X`` and literal arguments only."""
    try:
        call = ast.parse(str(text).strip(), mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            return False
        owner = ast.unparse(call.func.value)
        for arg in (*call.args, *(keyword.value for keyword in call.keywords)):
            ast.literal_eval(arg)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return False
    module = getattr(nn, call.func.attr, None)
    return owner in ("nn", "torch.nn") and isinstance(module, type) and issubclass(module, nn.Module)
