"""Write checkpoints the way Ultralytics' ``Model.save`` does, atomically, never over a file unasked."""

from __future__ import annotations

import atexit
import copy
import io
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import torch
from ultralytics import __version__ as ultralytics_version
from ultralytics.nn.tasks import BaseModel

from .errors import PruneError
from .pruning.heads import is_supported_head, task_of


def checkpoint_dict(model: BaseModel, metadata: dict) -> dict:
    """Return the checkpoint dict Ultralytics writes: an fp16 copy of the model, ``ema: None`` and train args.

    Args:
        model: The model to store (not modified).
        metadata: Plain data about how it was pruned (stored under ``yolo_prune``).

    Returns:
        A dict of stock classes and plain data, loadable by Ultralytics' restricted loader.
    """
    return {
        "date": datetime.now().astimezone().isoformat(),
        "version": ultralytics_version,
        "license": "AGPL-3.0 License (https://ultralytics.com/license)",
        "docs": "https://docs.ultralytics.com",
        "model": copy.deepcopy(model).half().to(memory_format=torch.contiguous_format),
        "ema": None,
        "train_args": _train_args(model),
        "yolo_prune": metadata,
    }


def _train_args(model: BaseModel) -> dict:
    """The model's train args, with its own task (Ultralytics reads the task from them when it loads the file)."""
    args = dict(getattr(model, "args", None) or {})
    task = task_of(model) if is_supported_head(model) else getattr(model, "task", None)
    if task:
        args["task"] = task
    return args


def serialized_size(model: BaseModel) -> int:
    """Bytes of ``model`` stored as Ultralytics stores it (fp16), for before/after comparisons."""
    buffer = io.BytesIO()
    torch.save({"model": copy.deepcopy(model).half()}, buffer)
    return buffer.tell()


def temporary_checkpoint_path() -> Path:
    """A ``pruned.pt`` path in a fresh private folder that is removed when this Python process exits.

    The model ``prune_yolo`` returns without ``save=`` is loaded from such a file, and Ultralytics reads it again
    (``model.train()``, its DDP subprocesses), so it lives as long as the process, not longer: hundreds of pruning
    calls must not fill the temporary folder.
    """
    return temporary_folder("yolo_prune_") / "pruned.pt"


def temporary_folder(prefix: str) -> Path:
    """A fresh private folder (``prefix`` + random) under the system's temporary folder, removed at process exit."""
    folder = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return Path(folder)


def save_atomic(ckpt: dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Save ``ckpt`` to ``path`` through a temporary file and a rename, so no half-written file is ever left.

    The temporary file (``.<name>.<random>.tmp`` in the destination folder) is flushed to disk before it takes the
    final name and is removed on any failure, ``KeyboardInterrupt`` included. Without ``overwrite`` the final step
    is a hard link, which fails if another process created ``path`` meanwhile (a rename where links are unsupported).

    Args:
        ckpt: The checkpoint dict.
        path: Destination ``.pt`` file; parent folders are created.
        overwrite: Replace an existing file.

    Returns:
        The written path.

    Raises:
        PruneError: If the file exists and ``overwrite`` is False, or ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise PruneError(f"'{path}' is a folder; save needs a file name such as '{path / 'pruned.pt'}'.")
    if path.exists() and not overwrite:
        raise PruneError(f"'{path}' already exists; pass overwrite=True to replace it, or choose another name.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(ckpt, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_clobber(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _rename_no_clobber(tmp: str, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless ``path`` exists by then (checked atomically where links work)."""
    try:
        os.link(tmp, path)
    except FileExistsError as e:
        raise PruneError(f"'{path}' already exists; pass overwrite=True to replace it, or choose another name.") from e
    except OSError:  # no hard links here (some network/FAT file systems): plain rename after the earlier check
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
