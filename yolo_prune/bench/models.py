"""The models a benchmark compares: the base, given pruned checkpoints, and sweep points pruned in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultralytics.utils import LOGGER

from ..api import PREFIX, prune_yolo
from ..checkpoint import checkpoint_dict, save_atomic
from ..errors import PruneError
from ..loading import ModelSource, load_model
from ..pruning.summary import ModelStats
from ..loading import restricted_yolo


@dataclass(frozen=True)
class BenchModel:
    """One benchmarked checkpoint, stored in the run directory, with its size and compute.

    Attributes:
        label: Short unique name used in tables and plots (``yolov8n``, ``ratio0.3``, ``speed_up2``...).
        path: The checkpoint inside the run directory (exports are written beside it).
        role: ``base`` for the reference model, ``pruned`` for a given pruned model, ``sweep`` for one pruned here.
        params: Parameter count.
        gflops: GFLOPs at the benchmark's ``imgsz``.
        ratio: Pruning ratio, when known (sweep point or yolo-prune metadata).
        speed_up_target: The ``speed_up`` the model was pruned for, when known.
        round_to: Channel multiple it was pruned with, when known.
        task: The model's Ultralytics task (its exports need it named to be validated).
    """

    label: str
    path: Path
    role: str
    params: int
    gflops: float
    ratio: float | None = None
    speed_up_target: float | None = None
    round_to: int | None = None
    task: str = "detect"


@dataclass(frozen=True)
class SweepPlan:
    """What to prune in-process: ratios and/or speed-up targets, plus extra ``prune_yolo`` arguments."""

    ratios: tuple[float, ...] = ()
    speed_ups: tuple[float, ...] = ()
    prune_args: Mapping[str, Any] | None = None


def collect_models(
    model: ModelSource,
    pruned: Sequence[ModelSource],
    sweep: SweepPlan,
    weights_dir: Path,
    imgsz: int,
) -> list[BenchModel]:
    """Store the base, every given pruned model and every sweep point as checkpoints in ``weights_dir``.

    Args:
        model: The base model (path, yaml, YOLO or DetectionModel).
        pruned: Pruned models to compare against it.
        sweep: Ratios / speed-up targets to prune the base to with ``prune_yolo``.
        weights_dir: Folder for the stored checkpoints.
        imgsz: Image size for GFLOPs.

    Returns:
        The base first, then the given pruned models, then the sweep points in the order given.

    Raises:
        PruneError: For an unreadable model or an invalid sweep value (from ``prune_yolo``).
    """
    weights_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    base_pt = _store(model, weights_dir, _unique(_label_of(model, "base"), taken))
    models = [_describe(base_pt, "base", imgsz)]
    for item in pruned:
        models.append(_describe(_store(item, weights_dir, _unique(_label_of(item, "pruned"), taken)), "pruned", imgsz))
    extra = dict(sweep.prune_args or {})
    points = [({"ratio": r}, f"ratio{r:g}") for r in sweep.ratios]
    points += [({"speed_up": s}, f"speed_up{s:g}") for s in sweep.speed_ups]
    for target, label in points:
        out = weights_dir / f"{_unique(label, taken)}.pt"
        LOGGER.info(f"{PREFIX}pruning {base_pt.stem} with {target} -> {out.name}")
        prune_yolo(base_pt, **target, **extra, imgsz=imgsz, save=out, verbose=False)
        models.append(_describe(out, "sweep", imgsz))
    return models


def _label_of(source: ModelSource, fallback: str) -> str:
    """A file's stem, else ``fallback``."""
    return Path(source).stem if isinstance(source, (str, os.PathLike)) else fallback


def _unique(label: str, taken: set[str]) -> str:
    """``label``, or ``label-2``, ``label-3``... if already used."""
    candidate, n = label, 2
    while candidate in taken:
        candidate, n = f"{label}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _store(source: ModelSource, weights_dir: Path, label: str) -> Path:
    """Copy a checkpoint file, or save an in-memory/yaml model, to ``weights_dir/<label>.pt``."""
    out = weights_dir / f"{label}.pt"
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".pt" and Path(source).is_file():
        load_model(source)  # fail early, with PruneError, on a file Ultralytics cannot read
        shutil.copy2(source, out)
        return out
    detection_model, _ = load_model(source)
    ckpt = checkpoint_dict(detection_model, {})
    ckpt.pop("yolo_prune")  # a copy, not a pruning result
    save_atomic(ckpt, out)
    return out


def _describe(pt: Path, role: str, imgsz: int) -> BenchModel:
    """Read a stored checkpoint's stats and any yolo-prune metadata."""
    yolo = restricted_yolo(pt)
    stats = ModelStats.of(yolo.model, imgsz)
    meta = (getattr(yolo, "ckpt", None) or {}).get("yolo_prune") or {}
    fraction = meta.get("gflops_fraction")
    return BenchModel(
        label=pt.stem,
        path=pt,
        role=role,
        params=stats.params,
        gflops=stats.gflops,
        ratio=meta.get("ratio"),
        speed_up_target=round(1 / fraction, 6) if fraction else None,
        round_to=meta.get("round_to"),
        task=yolo.task,
    )


def check_pruned_given(pruned: Sequence[ModelSource], sweep: SweepPlan) -> None:
    """Nothing is compared without a pruned model or a sweep: say how to give one."""
    if not pruned and not sweep.ratios and not sweep.speed_ups:
        raise PruneError(
            "Nothing to compare: give pruned=<checkpoint> (or several), or ratios=[...] / speed_ups=[...] "
            "to prune the base in this run."
        )
