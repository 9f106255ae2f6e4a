"""Layer sensitivity: prune one group of yaml layers at a time at several ratios and measure the mAP each costs.

Groups follow the model's yaml: a group collects consecutive layers up to and including the next block that is not
a plain ``Conv`` (a C2f/C3k2 stage with its downsampling conv, SPPF, C2PSA, each neck block, the Detect head), so
``yolov8n`` gives ``0-2 C2f, 3-4 C2f, 5-6 C2f, 7-8 C2f, 9 SPPF, 12 C2f, 15 C2f, 16-18 C2f, 19-21 C2f, 22 Detect``.
Each pruned variant is validated without fine-tuning on (a share of) the val split; the mAP50-95 drops go to
``sensitivity.csv`` and ``sensitivity.png``, and ``suggest_layer_ratios`` turns them into ``layer_ratios``.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics import YOLO
from ultralytics.nn.modules import Conv
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.files import increment_path

from ..errors import PruneError
from ..loading import restricted_yolo
from .finetune import Scores, check_data, validate

PREFIX = colorstr("yolo-prune sensitivity: ")
COLUMNS = ("group", "layers", "ratio", "map50_95", "map_drop", "gflops", "params")
VAL_KEYS = ("batch", "device", "workers", "split", "half")


@dataclass(frozen=True)
class LayerGroup:
    """Yaml layer indices pruned together, named ``"<first>-<last> <block type>"``."""

    name: str
    layers: tuple[int, ...]


@dataclass(frozen=True)
class SensitivityRow:
    """mAP50-95 of the model with only ``layers`` pruned at ``ratio`` (no fine-tuning)."""

    group: str
    layers: tuple[int, ...]
    ratio: float
    map50_95: float
    map_drop: float
    gflops: float
    params: int

    def as_row(self) -> dict[str, Any]:
        """Plain values for the CSV (layers joined by spaces)."""
        return {"group": self.group, "layers": " ".join(map(str, self.layers)), "ratio": self.ratio,
                "map50_95": round(self.map50_95, 4), "map_drop": round(self.map_drop, 4),
                "gflops": round(self.gflops, 4), "params": self.params}  # fmt: skip


@dataclass
class SensitivityResult:
    """Every (group, ratio) measurement, the unpruned reference and the written files."""

    base_map50_95: float
    base_gflops: float
    rows: list[SensitivityRow]
    run_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    def groups(self) -> list[LayerGroup]:
        """The measured groups, in model order."""
        seen: dict[str, LayerGroup] = {}
        for row in self.rows:
            seen.setdefault(row.group, LayerGroup(row.group, row.layers))
        return list(seen.values())

    def drops(self, group: str) -> dict[float, float]:
        """``{ratio: mAP50-95 drop}`` of one group."""
        return {row.ratio: row.map_drop for row in self.rows if row.group == group}


def layer_groups(model: YOLO | Any) -> list[LayerGroup]:
    """Split a detector's yaml layers into sensitivity groups (see the module docstring).

    Layers without weights (Upsample, Concat) belong to no group.

    Args:
        model: ``YOLO`` or ``DetectionModel``.

    Returns:
        The groups in model order.

    Examples:
        >>> from ultralytics.nn.tasks import DetectionModel
        >>> [g.name for g in layer_groups(DetectionModel("yolov8n.yaml", nc=3, verbose=False))][-2:]
        ['19-21 C2f', '22 Detect']
    """
    net = model.model if isinstance(model, YOLO) else model
    groups, pending = [], []
    for index, layer in enumerate(net.model):
        if not any(True for _ in layer.parameters()):
            continue
        pending.append(index)
        if type(layer) is not Conv:
            kind = type(layer).__name__
            span = f"{pending[0]}-{index}" if len(pending) > 1 else f"{index}"
            groups.append(LayerGroup(f"{span} {kind}", tuple(pending)))
            pending = []
    if pending:
        groups.append(LayerGroup(f"{pending[0]}-{pending[-1]} Conv", tuple(pending)))
    return groups


def sensitivity(
    model: str | os.PathLike | YOLO,
    data: str | os.PathLike,
    *,
    ratios: Sequence[float] = (0.2, 0.4, 0.6),
    layers: Sequence[int | Sequence[int]] | None = None,
    imgsz: int = 640,
    fraction: float = 1.0,
    importance: str = "auto",
    project: str | os.PathLike = "runs/prune",
    name: str = "sensitivity",
    exist_ok: bool = False,
    **val_kwargs: Any,
) -> SensitivityResult:
    """Measure how much val mAP50-95 each layer group loses when pruned alone, at each ratio.

    Every (group, ratio) pair is one ``prune_yolo(model, layer_ratios={i: ratio for i in group})`` (all other
    layers untouched) followed by a stock validation, without fine-tuning. Groups that cannot lose a channel are
    skipped with a log line.

    Args:
        model: Trained checkpoint path or ``YOLO``; it is never modified.
        data: Ultralytics data yaml; its val split (or ``split=``) is scored.
        ratios: Ratios to try per group, each in (0, 1).
        layers: Groups to measure instead of the automatic ones: each item a yaml layer index or a list of them.
        imgsz: Validation and GFLOPs image size; a multiple of 32.
        fraction: Share of the val split scored (its first images), in (0, 1]; smaller is faster and noisier.
        importance: Channel criterion passed to ``prune_yolo``; ``taylor``/``hessian`` score on ``data``.
        project: Parent folder of the run.
        name: Run name; the folder is ``project/name`` incremented unless ``exist_ok``.
        exist_ok: Reuse ``project/name`` if it exists.
        **val_kwargs: ``batch``, ``device``, ``workers``, ``split`` or ``half`` for validation.

    Returns:
        A ``SensitivityResult`` with one row per (group, ratio); ``files`` holds ``sensitivity.csv`` and
        ``sensitivity.png``.

    Raises:
        PruneError: For a bad ratio, layer index, fraction or validation keyword.

    Examples:
        >>> from yolo_prune.recovery.sensitivity import sensitivity, suggest_layer_ratios
        >>> result = sensitivity("best.pt", "data.yaml", ratios=(0.2, 0.4, 0.6), fraction=0.25)  # doctest: +SKIP
        >>> from yolo_prune import prune_yolo  # doctest: +SKIP
        >>> prune_yolo("best.pt", layer_ratios=suggest_layer_ratios(result, target_drop=0.01))  # doctest: +SKIP
    """
    ratios, fraction = _checked_ratios(ratios), _checked_fraction(fraction)
    _check_val_kwargs(val_kwargs)
    data, source = check_data(data), _loaded(model)
    groups = _custom_groups(layers, source) if layers is not None else layer_groups(source)
    run_dir = increment_path(Path(project).resolve() / name, exist_ok=exist_ok)
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {**val_kwargs, "fraction": [1.0, fraction, fraction]}
    base = validate(source.ckpt_path, data, imgsz=imgsz, run_dir=run_dir, **kwargs)
    LOGGER.info(f"{PREFIX}{len(groups)} groups x {len(ratios)} ratios; unpruned mAP50-95 {base.map50_95:.4f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="yolo_prune_sens_") as tmp:
        for group in groups:
            rows += _measure_group(source, group, ratios, base, data, imgsz, importance, run_dir, Path(tmp), kwargs)
    if not rows:
        raise PruneError("none of the chosen layer groups has prunable channels; choose other layers.")
    result = SensitivityResult(base.map50_95, base.gflops, rows, run_dir)
    result.files = {"csv": _write_csv(run_dir / "sensitivity.csv", rows)}
    result.files["png"] = _plot(run_dir / "sensitivity.png", result)
    LOGGER.info(f"{PREFIX}wrote {result.files['csv']} and {result.files['png']}")
    return result


def suggest_layer_ratios(
    result: SensitivityResult, target_drop: float, *, leave_tolerant: bool = False
) -> dict[int, float]:
    """Per-layer ratios from a sensitivity run: each group gets the largest measured ratio it tolerates.

    A group tolerates ratio ``r`` when every measured ratio up to ``r`` cost at most ``target_drop`` mAP50-95;
    a group that tolerates none gets 0.0 (left untouched). Drops are measured one group at a time, so pruning all
    groups together costs roughly their sum: pick ``target_drop`` per group accordingly, then fine-tune.

    With ``leave_tolerant=True`` the groups that tolerated every measured ratio are left out of the result, so a
    compute target decides how far they go: ``prune_yolo(model, speed_up=..., layer_ratios=...)`` then holds the
    sensitive groups at what they tolerate and takes the whole saving from the others.

    Args:
        result: The output of ``sensitivity``.
        target_drop: Largest admissible mAP50-95 drop per group, in absolute points (e.g. 0.01).
        leave_tolerant: Leave out the layers of groups that tolerated the largest measured ratio.

    Returns:
        ``{layer_index: ratio}`` for the layers of the measured groups, usable as ``prune_yolo(layer_ratios=...)``.

    Raises:
        PruneError: If ``target_drop`` is not a non-negative number.

    Examples:
        >>> rows = [SensitivityRow("22 Detect", (22,), r, 0.5 - d, d, 1.0, 1) for r, d in ((0.2, 0.0), (0.4, 0.05))]
        >>> suggest_layer_ratios(SensitivityResult(0.5, 1.0, rows, Path(".")), target_drop=0.01)
        {22: 0.2}
        >>> spared = suggest_layer_ratios(result, 0.01, leave_tolerant=True)  # doctest: +SKIP
        >>> prune_yolo("best.pt", speed_up=1.7, layer_ratios=spared)  # doctest: +SKIP
    """
    if isinstance(target_drop, bool) or not isinstance(target_drop, (int, float)) or target_drop < 0:
        raise PruneError(f"target_drop={target_drop!r} must be a number >= 0 (absolute mAP50-95 points, e.g. 0.01).")
    suggested: dict[int, float] = {}
    for group in result.groups():
        drops = sorted(result.drops(group.name).items())
        chosen = 0.0
        for ratio, drop in drops:
            if drop > target_drop:
                break
            chosen = ratio
        if not (leave_tolerant and chosen == drops[-1][0]):
            suggested.update(dict.fromkeys(group.layers, chosen))
    return suggested


def sensitivity_cli(args: dict[str, Any]) -> SensitivityResult:
    """Run ``sensitivity`` from CLI arguments; ``ratios``/``layers`` may be comma-separated strings.

    With ``target_drop`` set, also logs the ``layer_ratios`` that ``suggest_layer_ratios`` derives (only the
    sensitive groups with ``leave_tolerant=True``, for use with ``speed_up=`` / ``target_gflops=``).

    Examples:
        >>> sensitivity_cli({"model": "best.pt", "data": "data.yaml", "ratios": "0.2,0.5"})  # doctest: +SKIP
    """
    args = {key: value for key, value in args.items() if value is not None}
    missing = [key for key in ("model", "data") if key not in args]
    if missing:
        needed = " and ".join(f"{k}=..." for k in missing)
        raise PruneError(f"sensitivity needs {needed} (a checkpoint and a data yaml).")
    target_drop = args.pop("target_drop", None)
    leave_tolerant = bool(args.pop("leave_tolerant", False))
    for key in ("ratios", "layers"):
        if key in args:
            args[key] = _number_list(key, args[key])
    result = sensitivity(args.pop("model"), args.pop("data"), **args)
    if target_drop is not None:
        suggested = suggest_layer_ratios(result, target_drop, leave_tolerant=leave_tolerant)
        LOGGER.info(f"{PREFIX}layer_ratios for target_drop={target_drop}: {suggested}")
    return result


# --- checks ----------------------------------------------------------------------------------------------------


def _checked_ratios(ratios: Any) -> tuple[float, ...]:
    if isinstance(ratios, (int, float)) and not isinstance(ratios, bool):
        ratios = (ratios,)
    if not isinstance(ratios, Sequence) or not ratios:
        raise PruneError(f"ratios={ratios!r} must be a non-empty list of numbers in (0, 1), e.g. (0.2, 0.4, 0.6).")
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 < r < 1:
            raise PruneError(f"ratios: {r!r} is not a number strictly between 0 and 1.")
    return tuple(sorted({float(r) for r in ratios}))


def _checked_fraction(fraction: Any) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise PruneError(f"fraction={fraction!r} must be in (0, 1] (the share of the val split scored).")
    return float(fraction)


def _check_val_kwargs(val_kwargs: dict[str, Any]) -> None:
    unknown = [key for key in val_kwargs if key not in VAL_KEYS]
    if unknown:
        raise PruneError(
            f"sensitivity does not take {', '.join(unknown)}; its validation keywords are {', '.join(VAL_KEYS)}."
        )


def _loaded(model: str | os.PathLike | YOLO) -> YOLO:
    """The model as a ``YOLO`` loaded from a checkpoint file (validation of the unpruned model needs the file)."""
    if isinstance(model, YOLO):
        if not getattr(model, "ckpt_path", None):
            raise PruneError("model is a YOLO object without a checkpoint file; save it and pass the .pt path.")
        return model
    if not isinstance(model, (str, os.PathLike)) or not str(model).endswith(".pt"):
        raise PruneError(f"model={model!r} must be a trained .pt checkpoint.")
    if not Path(model).is_file():
        raise PruneError(f"model='{model}' does not exist.")
    return restricted_yolo(model)


def _custom_groups(layers: Sequence[int | Sequence[int]], model: YOLO) -> list[LayerGroup]:
    """Groups from the caller's ``layers`` (ints are single-layer groups), checked against the model."""
    if isinstance(layers, (int, str)) or not isinstance(layers, Sequence) or not layers:
        raise PruneError(f"layers={layers!r} must be a non-empty list of layer indices or lists of them.")
    n, groups = len(model.model.model), []
    for item in layers:
        members = (item,) if isinstance(item, int) else tuple(item)
        if not members or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in members):
            raise PruneError(f"layers: {item!r} is not a yaml layer index (or list of them) of this model (0..{n - 1})")
        kind = type(model.model.model[members[-1]]).__name__
        span = f"{members[0]}-{members[-1]}" if len(members) > 1 else f"{members[0]}"
        groups.append(LayerGroup(f"{span} {kind}", members))
    return groups


def _number_list(key: str, value: Any) -> Any:
    """``"0.2,0.4"`` -> ``[0.2, 0.4]``; ``"12,15"`` -> ``[12, 15]``; other values pass through."""
    if not isinstance(value, str):
        return list(value) if isinstance(value, tuple) else value
    try:
        return [int(v) if v.strip().lstrip("-").isdigit() else float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise PruneError(f"{key}='{value}' must be comma-separated numbers, e.g. {key}=0.2,0.4,0.6.") from None


# --- measuring -------------------------------------------------------------------------------------------------


def _measure_group(
    source: YOLO, group: LayerGroup, ratios: tuple[float, ...], base: Scores, data: str, imgsz: int,
    importance: str, run_dir: Path, tmp: Path, val_kwargs: dict[str, Any],
) -> list[SensitivityRow]:  # fmt: skip
    """Prune ``group`` alone at each ratio and validate; no rows if pruning it changes nothing."""
    from ..api import prune_yolo

    rows = []
    for ratio in ratios:
        pt = tmp / "pruned.pt"
        prune_yolo(source, layer_ratios=dict.fromkeys(group.layers, ratio), importance=importance, imgsz=imgsz,
                   data=data, distill=False, save=pt, overwrite=True, verbose=False)  # fmt: skip
        scores = validate(pt, data, imgsz=imgsz, run_dir=run_dir, **val_kwargs)
        if scores.params == base.params:
            LOGGER.info(f"{PREFIX}group {group.name}: no prunable channels at ratio {ratio}; skipped")
            return rows
        rows.append(SensitivityRow(group.name, group.layers, ratio, scores.map50_95, base.map50_95 - scores.map50_95,
                                   scores.gflops, scores.params))  # fmt: skip
        LOGGER.info(f"{PREFIX}{group.name:<14} ratio {ratio:.2f}: mAP50-95 {scores.map50_95:.4f} "
                    f"(drop {rows[-1].map_drop:+.4f}), {scores.gflops:.3f} GFLOPs")  # fmt: skip
    return rows


def _write_csv(path: Path, rows: list[SensitivityRow]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(row.as_row() for row in rows)
    return path


def _plot(path: Path, result: SensitivityResult) -> Path:
    """mAP50-95 drop against ratio, one line per group (Agg canvas: no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for group in result.groups():
        drops = sorted(result.drops(group.name).items())
        ax.plot([r for r, _ in drops], [d for _, d in drops], "o-", label=group.name)
    ax.axhline(0, color="black", lw=0.8)
    ax.set(xlabel="ratio (share of channels removed)", ylabel="mAP50-95 drop (no fine-tuning)",
           title=f"Layer sensitivity (unpruned mAP50-95 {result.base_map50_95:.3f})")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    return path
