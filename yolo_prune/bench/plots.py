"""The benchmark figure: speed-up per runtime, latency and GFLOPs along a sweep, and mAP against GFLOPs."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .models import BenchModel
from .result import BenchResult

PANEL_SIZE = (6.4, 4.6)


def write_plot(result: BenchResult, path: Path) -> Path | None:
    """Draw every panel that has data into one PNG; return its path, or None when there is nothing to draw.

    Panels: speed-up of each pruned model per runtime (bars) against its GFLOPs ratio (black ticks); for a sweep of
    several ratios or speed-up targets, batch-1 latency per runtime and GFLOPs along the sweep; with ``data``, mAP50-95
    against GFLOPs.
    """
    panels = [_speedup_panel] if any(r.model != result.base.label for r in result.rows) else []
    panels += [_sweep_panel(kind) for kind in ("ratio", "speed_up_target") if len(_sweep(result, kind)) >= 2]
    if len([m for m in result.models if _map_of(result, m.label) is not None]) >= 3:
        panels.append(_map_panel)
    if not panels:
        return None
    cols = min(2, len(panels))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, draw in zip(axes, panels):
        draw(ax, result)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    config, cpu = result.config, result.machine["cpu"]
    threads = f"{config['threads']} thread{'s' if config['threads'] != 1 else ''}"
    fig.suptitle(f"{result.base.label} @ {config['imgsz']}, {threads}, {cpu}", fontsize=10)
    fig.savefig(path, dpi=110)
    return path


def _groups(result: BenchResult) -> list[tuple[str, int]]:
    return list(dict.fromkeys((r.format, r.batch) for r in result.rows))


def _speedup_panel(ax: Axes, result: BenchResult) -> None:
    groups, pruned = _groups(result), result.models[1:]
    width = 0.8 / max(len(pruned), 1)
    for k, model in enumerate(pruned):
        xs, ys, promises = [], [], []
        for g, (fmt, batch) in enumerate(groups):
            row = result.row(model.label, fmt, batch)
            if row is not None and row.speed_up is not None:
                xs.append(g - 0.4 + width * (k + 0.5))
                ys.append(row.speed_up)
                promises.append(row.gflops_ratio)
        bars = ax.bar(xs, ys, width * 0.9, label=model.label)
        ax.hlines(promises, [x - width * 0.45 for x in xs], [x + width * 0.45 for x in xs], colors="black", lw=2)
        ax.bar_label(bars, labels=[f"{y / p:.0%}" if p else "" for y, p in zip(ys, promises)], fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xticks(range(len(groups)), [fmt if batch == 1 else f"{fmt}\nbatch {batch}" for fmt, batch in groups])
    ax.set_ylabel("speed-up vs base (median latency)")
    ax.set_title("Speed-up per runtime\n(black tick: GFLOPs ratio; label: efficiency)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _sweep(result: BenchResult, kind: str) -> list[BenchModel]:
    """Sweep points of one kind (ratio or speed-up target), sorted, with the base first."""
    points = sorted(
        (m for m in result.models if m.role == "sweep" and getattr(m, kind) is not None), key=lambda m: getattr(m, kind)
    )
    return [result.base, *points] if len(points) >= 2 else []


def _sweep_panel(kind: str):
    def draw(ax: Axes, result: BenchResult) -> None:
        models = _sweep(result, kind)
        xs = [
            0.0 if m.role == "base" and kind == "ratio" else 1.0 if m.role == "base" else getattr(m, kind)
            for m in models
        ]
        for fmt, batch in _groups(result):
            if batch != 1:
                continue
            rows = [result.row(m.label, fmt) for m in models]
            ax.plot([x for x, r in zip(xs, rows) if r], [r.latency.median_ms for r in rows if r], "o-", label=fmt)
        ax.set_xlabel("pruning ratio" if kind == "ratio" else "speed_up target (GFLOPs ratio)")
        ax.set_ylabel("median latency, batch 1 (ms)")
        twin = ax.twinx()
        twin.plot(xs, [m.gflops for m in models], "k--s", label="GFLOPs")
        twin.set_ylabel("GFLOPs (black, dashed)")
        lines = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
        ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], fontsize=8, loc="upper right")
        ax.set_title(f"Latency and GFLOPs vs {'ratio' if kind == 'ratio' else 'speed_up'}", fontsize=10)

    return draw


def _map_of(result: BenchResult, label: str) -> float | None:
    """The model's mAP50-95 from its first batch-1 row that has one (torch first when measured)."""
    return next((r.map50_95 for r in result.rows if r.model == label and r.batch == 1 and r.map50_95 is not None), None)


def _map_panel(ax: Axes, result: BenchResult) -> None:
    points = [(m, _map_of(result, m.label)) for m in result.models]
    points = sorted(((m.gflops, v, m.label) for m, v in points if v is not None))
    ax.plot([p[0] for p in points], [p[1] for p in points], "o-")
    for gflops, value, label in points:
        ax.annotate(label, (gflops, value), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("mAP50-95")
    ax.set_title("mAP50-95 vs GFLOPs", fontsize=10)
