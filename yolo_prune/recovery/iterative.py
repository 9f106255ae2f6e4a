"""Iterative prune -> fine-tune: reach a ratio or speed-up in several small steps, each recovered with stock training.

Step ``k`` of ``N`` prunes the previous step's best checkpoint to the ``k``-th point of a geometric schedule (GFLOPs
``base / speed_up ** (k / N)``, or channels kept ``(1 - ratio) ** (k / N)``), fine-tunes it with the stock
Ultralytics trainer on the user's data, and validates it. The run stops at the first step whose mAP50-95 falls more
than ``max_map_drop`` below the unpruned model's; the most compressed step within that budget is copied to
``<run_dir>/best.pt``. Every step is tabulated in ``steps.csv`` / ``steps.md`` and plotted in ``map_vs_gflops.png``.
"""

from __future__ import annotations

import csv
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ultralytics import YOLO
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.files import increment_path

from ..errors import PruneError
from .finetune import (
    Scores,
    check_data,
    check_train_kwargs,
    finetune,
    val_kwargs_from,
    validate,
    with_short_finetune_recipe,
)

PREFIX = colorstr("yolo-prune iterative: ")
COLUMNS = ("step", "gflops", "params", "map50_95", "map50", "map_drop", "admissible", "wall_s", "weights")


@dataclass(frozen=True)
class IterativeStep:
    """One row of the schedule; step 0 is the unpruned model."""

    step: int
    weights: Path
    gflops: float
    params: int
    map50_95: float
    map50: float
    map_drop: float
    admissible: bool
    wall_s: float

    def as_row(self) -> dict[str, Any]:
        """Plain values for the CSV/Markdown tables (numbers rounded for reading)."""
        row = asdict(self)
        row.update({key: round(row[key], 4) for key in ("gflops", "map50_95", "map50", "map_drop")})
        row.update(weights=str(self.weights), wall_s=round(self.wall_s, 1))
        return row


@dataclass
class IterativeResult:
    """What ``iterative_prune`` produced: every step, the kept checkpoint and the report files."""

    run_dir: Path
    steps: list[IterativeStep]
    best: Path
    best_step: int
    stopped_early: bool
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    """Where each step prunes to: a GFLOPs target (speed-up) or a per-step channel ratio."""

    steps: int
    speed_up: float | None = None
    ratio: float | None = None

    def prune_kwargs(self, k: int, base_gflops: float, current_gflops: float) -> dict[str, Any] | None:
        """``prune_yolo`` arguments for step ``k`` (1-based), or None if the model is already small enough."""
        if self.speed_up is None:
            return {"ratio": 1 - (1 - self.ratio) ** (1 / self.steps)}
        target = base_gflops / self.speed_up ** (k / self.steps)  # absolute: earlier steps' errors do not compound
        return {"target_gflops": target} if target < current_gflops else None


def iterative_prune(
    model: str | os.PathLike | YOLO,
    data: str | os.PathLike,
    *,
    steps: int = 3,
    ratio: float | None = None,
    speed_up: float | None = None,
    epochs: int = 10,
    max_map_drop: float = 0.02,
    imgsz: int = 640,
    importance: str = "auto",
    reconstruct: bool = False,
    project: str | os.PathLike = "runs/prune",
    name: str = "iterative",
    exist_ok: bool = False,
    **train_kwargs: Any,
) -> IterativeResult:
    """Prune towards ``ratio`` or ``speed_up`` in ``steps`` steps, fine-tuning and validating after each.

    Args:
        model: Trained checkpoint (path, or a ``YOLO`` loaded from one); it is never modified.
        data: Ultralytics data yaml used for fine-tuning and validation (its ``val`` split scores every step).
        steps: Number of prune -> fine-tune steps.
        ratio: Final share of channels removed, reached as ``1 - (1 - ratio) ** (1 / steps)`` per step.
        speed_up: Final GFLOPs ratio base / pruned; step ``k`` prunes to ``base / speed_up ** (k / steps)``
            GFLOPs (at ``imgsz``). Give ``ratio`` or ``speed_up``; with neither, ``ratio=0.3``.
        epochs: Fine-tuning epochs per step.
        max_map_drop: Largest admissible drop of mAP50-95 below the unpruned model, in absolute points (0.02 = two
            points); the first step beyond it ends the run.
        imgsz: Training, validation and GFLOPs image size; a multiple of 32.
        importance: Channel criterion passed to ``prune_yolo`` (``auto``: its default, the data-free damage score);
            ``taylor``/``hessian``/``fisher`` score on ``data``.
        reconstruct: Refit each step's pruned layers to the previous step's outputs on ``data`` before its
            fine-tune (``prune_yolo(reconstruct=True)``).
        project: Parent folder of the run.
        name: Run name; the run folder is ``project/name`` incremented (``name2``, ...) unless ``exist_ok``.
        exist_ok: Reuse ``project/name`` if it exists.
        **train_kwargs: Other stock ``YOLO.train`` arguments for every fine-tune (``batch``, ``lr0``, ``device``,
            ``distill_model``, ...); ``batch``/``device``/``workers`` also apply to validation. Unless they set
            ``optimizer``, ``lr0`` or ``warmup_epochs``, the short-fine-tune recipe ``optimizer=AdamW lr0=0.001
            warmup_epochs=0`` applies (``finetune.SHORT_FINETUNE``).

    Returns:
        An ``IterativeResult``: the steps (step 0 = unpruned), ``best`` (``<run_dir>/best.pt``: the most compressed
        admissible step, or a copy of the input when no step is admissible), and the report files
        (``steps.csv``, ``steps.md``, ``map_vs_gflops.png``).

    Raises:
        PruneError: For a bad option, a missing data yaml or model file, or a reserved train argument.

    Examples:
        >>> from yolo_prune.recovery.iterative import iterative_prune
        >>> result = iterative_prune("best.pt", "data.yaml", steps=3, speed_up=2.0, epochs=10)  # doctest: +SKIP
        >>> result.best  # doctest: +SKIP
        PosixPath('runs/prune/iterative/best.pt')
    """
    schedule = _schedule(steps, ratio, speed_up)
    _check_options(epochs, max_map_drop, imgsz)
    check_train_kwargs(train_kwargs)
    data, source = check_data(data), _checkpoint_path(model)
    run_dir = increment_path(Path(project).resolve() / name, exist_ok=exist_ok)
    run_dir.mkdir(parents=True, exist_ok=True)
    val_kwargs, train_kwargs = val_kwargs_from(train_kwargs), with_short_finetune_recipe(train_kwargs)
    prune_options = {"importance": importance, "imgsz": imgsz, "data": data, "reconstruct": bool(reconstruct)}

    LOGGER.info(f"{PREFIX}{steps} steps to {_goal(schedule)}, {epochs} epochs each, run dir {run_dir}")
    start = time.perf_counter()
    base = validate(source, data, imgsz=imgsz, run_dir=run_dir, **val_kwargs)
    history = [_step(0, source, base, base, max_map_drop, start)]
    LOGGER.info(f"{PREFIX}step 0 (unpruned): mAP50-95 {base.map50_95:.4f}, {base.gflops:.3f} GFLOPs")
    current, stopped = history[0], False
    for k in range(1, steps + 1):
        start = time.perf_counter()
        pruned = _prune_step(schedule, k, current, base, run_dir, prune_options)
        if pruned is None:
            LOGGER.info(f"{PREFIX}step {k}: already at or below its GFLOPs target; skipped")
            continue
        best = finetune(pruned, data, epochs=epochs, imgsz=imgsz, run_dir=run_dir, name=f"step{k}", **train_kwargs)
        scores = validate(best, data, imgsz=imgsz, run_dir=run_dir, **val_kwargs)
        step = _step(k, best, scores, base, max_map_drop, start)
        history.append(step)
        LOGGER.info(f"{PREFIX}step {k}: mAP50-95 {step.map50_95:.4f} (drop {step.map_drop:+.4f}), "
                    f"{step.gflops:.3f} GFLOPs, {step.params / 1e6:.2f}M params")  # fmt: skip
        if not step.admissible:
            LOGGER.info(f"{PREFIX}stopping: mAP drop {step.map_drop:.4f} exceeds max_map_drop={max_map_drop}")
            stopped = True
            break
        current = step
    return _finish(run_dir, history, stopped, max_map_drop)


def iterative_cli(args: dict[str, Any]) -> IterativeResult:
    """Run ``iterative_prune`` from CLI arguments (``model``, ``data`` and its keywords; others go to training).

    Keys whose value is None are left out, so the function defaults apply.

    Examples:
        >>> iterative_cli({"model": "best.pt", "data": "data.yaml", "speed_up": 2.0, "steps": 3})  # doctest: +SKIP
    """
    args = {key: value for key, value in args.items() if value is not None}
    missing = [key for key in ("model", "data") if key not in args]
    if missing:
        needed = " and ".join(f"{k}=..." for k in missing)
        raise PruneError(f"iterative needs {needed} (a trained checkpoint and a data yaml).")
    result = iterative_prune(args.pop("model"), args.pop("data"), **args)
    LOGGER.info(f"{PREFIX}kept step {result.best_step}: {result.best}; table {result.files['md']}")
    return result


# --- checks ----------------------------------------------------------------------------------------------------


def _schedule(steps: Any, ratio: Any, speed_up: Any) -> Schedule:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise PruneError(f"steps={steps!r} must be a positive integer (the number of prune -> fine-tune rounds).")
    if ratio is not None and speed_up is not None:
        raise PruneError("Give either ratio or speed_up for the iterative schedule, not both.")
    if speed_up is not None:
        if isinstance(speed_up, bool) or not isinstance(speed_up, (int, float)) or speed_up <= 1:
            raise PruneError(f"speed_up={speed_up!r} must be a number above 1 (the final GFLOPs ratio base/pruned).")
        return Schedule(steps, speed_up=float(speed_up))
    ratio = 0.3 if ratio is None else ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise PruneError(f"ratio={ratio!r} must be a number strictly between 0 and 1 (the final share removed).")
    return Schedule(steps, ratio=float(ratio))


def _check_options(epochs: Any, max_map_drop: Any, imgsz: Any) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise PruneError(f"epochs={epochs!r} must be a positive integer (fine-tuning epochs per step).")
    if isinstance(max_map_drop, bool) or not isinstance(max_map_drop, (int, float)):
        raise PruneError(f"max_map_drop={max_map_drop!r} must be a number (absolute mAP50-95 points, e.g. 0.02).")
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
        raise PruneError(f"imgsz={imgsz!r} must be a positive multiple of 32 (the model's largest stride).")


def _checkpoint_path(model: str | os.PathLike | YOLO) -> Path:
    """The checkpoint file behind ``model``: fine-tuning needs a file the stock trainer can load."""
    if isinstance(model, YOLO):
        path = getattr(model, "ckpt_path", None)
        if not path:
            raise PruneError("model is a YOLO object without a checkpoint file; save it and pass the .pt path.")
        return Path(path)
    if not isinstance(model, (str, os.PathLike)) or not str(model).endswith(".pt"):
        raise PruneError(f"model={model!r} must be a trained .pt checkpoint (iterative pruning fine-tunes it).")
    if not Path(model).is_file():
        raise PruneError(f"model='{model}' does not exist.")
    return Path(model)


def _goal(schedule: Schedule) -> str:
    return f"speed_up={schedule.speed_up}" if schedule.speed_up else f"ratio={schedule.ratio}"


# --- steps -----------------------------------------------------------------------------------------------------


def _prune_step(
    schedule: Schedule, k: int, current: IterativeStep, base: Scores, run_dir: Path, options: dict[str, Any]
) -> Path | None:
    """Prune the current best checkpoint to step ``k``'s target with ``options`` (importance, imgsz, data).

    Returns:
        The saved pruned checkpoint, or None when the model is already at or below the step's target.
    """
    from ..api import prune_yolo

    target = schedule.prune_kwargs(k, base.gflops, current.gflops)
    if target is None:
        return None
    out = run_dir / f"step{k}-pruned.pt"
    prune_yolo(str(current.weights), **target, **options, distill=False, save=out, overwrite=True, verbose=False)
    return out


def _step(k: int, weights: Path, scores: Scores, base: Scores, max_map_drop: float, start: float) -> IterativeStep:
    """Record step ``k``; the unpruned step 0 is the reference and always admissible."""
    drop = base.map50_95 - scores.map50_95
    return IterativeStep(k, Path(weights), scores.gflops, scores.params, scores.map50_95, scores.map50, drop,
                         k == 0 or drop <= max_map_drop, time.perf_counter() - start)  # fmt: skip


def _finish(run_dir: Path, history: list[IterativeStep], stopped: bool, max_map_drop: float) -> IterativeResult:
    """Keep the most compressed admissible step as ``best.pt`` and write the tables and the plot."""
    kept = min((s for s in history if s.admissible), key=lambda s: (s.gflops, -s.step))
    if kept.step == 0:
        LOGGER.warning(f"{PREFIX}no pruned step stayed within max_map_drop={max_map_drop}; best.pt is the input model")
    best = run_dir / "best.pt"
    shutil.copyfile(kept.weights, best)
    files = {
        "csv": _write_csv(run_dir / "steps.csv", history),
        "md": _write_markdown(run_dir / "steps.md", history, kept),
        "png": _plot(run_dir / "map_vs_gflops.png", history, max_map_drop),
    }
    LOGGER.info(f"{PREFIX}best admissible: step {kept.step} ({kept.gflops:.3f} GFLOPs, mAP50-95 {kept.map50_95:.4f})"
                f" -> {best}")  # fmt: skip
    return IterativeResult(run_dir, history, best, kept.step, stopped, files)


def _write_csv(path: Path, history: list[IterativeStep]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(step.as_row() for step in history)
    return path


def _write_markdown(path: Path, history: list[IterativeStep], kept: IterativeStep) -> Path:
    base = history[0]
    lines = ["| step | GFLOPs | GFLOPs vs base | params (M) | mAP50-95 | mAP50 | drop | admissible | time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in history:
        mark = " (kept)" if s is kept else ""
        cells = (f"{s.step}{mark}", f"{s.gflops:.3f}", f"{s.gflops / base.gflops:.3f}", f"{s.params / 1e6:.2f}",
                 f"{s.map50_95:.4f}", f"{s.map50:.4f}", f"{s.map_drop:+.4f}", str(s.admissible), f"{s.wall_s:.0f}")
        lines.append(f"| {' | '.join(cells)} |")
    path.write_text("\n".join(lines) + "\n")
    return path


def _plot(path: Path, history: list[IterativeStep], max_map_drop: float) -> Path:
    """mAP50-95 against GFLOPs per step, with the admissible limit (Agg canvas: no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([s.gflops for s in history], [s.map50_95 for s in history], "o-", color="tab:blue")
    for s in history:
        ax.annotate(f"step {s.step}", (s.gflops, s.map50_95), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.axhline(history[0].map50_95 - max_map_drop, color="tab:red", ls="--", lw=1, label="max_map_drop limit")
    ax.set(xlabel="GFLOPs", ylabel="val mAP50-95", title="Iterative pruning: mAP vs GFLOPs")
    ax.invert_xaxis()
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    return path
