"""Render a BenchResult: the stdout table, ``report.md`` and ``results.json``."""

from __future__ import annotations

import json
from pathlib import Path

from .result import BenchResult, Row

HEADERS = (
    "model", "format", "batch", "params", "GFLOPs", "file MB", "median ms", "p90 ms", "img/s",
    "speed-up", "GFLOPs x", "efficiency", "mAP50-95",
)  # fmt: skip


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def row_cells(row: Row) -> list[str]:
    """One result row as table cells, in HEADERS order."""
    return [
        row.model,
        row.format,
        str(row.batch),
        f"{row.params / 1e6:.2f}M",
        f"{row.gflops:.2f}",
        f"{row.file_mb:.2f}",
        f"{row.latency.median_ms:.2f}",
        f"{row.latency.p90_ms:.2f}",
        f"{row.images_per_s:.1f}",
        _num(row.speed_up, ".2f") + ("x" if row.speed_up is not None else ""),
        _num(row.gflops_ratio, ".2f") + ("x" if row.gflops_ratio is not None else ""),
        _num(None if row.efficiency is None else row.efficiency * 100, ".0f") + ("%" if row.efficiency else ""),
        _num(row.map50_95, ".4f"),
    ]


def text_table(result: BenchResult) -> str:
    """The fixed-width table printed at the end of a run."""
    cells = [list(HEADERS)] + [row_cells(r) for r in result.rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.rjust(w) if i > 1 else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths))) for line in cells
    ]
    lines.insert(1, "-" * len(lines[0]))
    lines += [f"skipped {s.format}: {s.reason}" for s in result.skipped]
    return "\n".join(lines)


def _md_table(headers: list[str] | tuple[str, ...], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _models_section(result: BenchResult) -> list[str]:
    rows = [
        [
            m.label,
            m.role,
            f"{m.params:,}",
            f"{m.gflops:.3f}",
            _num(m.ratio, "g"),
            _num(m.speed_up_target, "g"),
            _num(m.round_to, "d"),
        ]
        for m in result.models
    ]
    return ["## Models", "", *_md_table(("model", "role", "params", "GFLOPs", "ratio", "speed_up", "round_to"), rows)]


def _efficiency_section(result: BenchResult) -> list[str]:
    rows = []
    for fmt, batch in dict.fromkeys((r.format, r.batch) for r in result.rows):
        eff = result.efficiency(fmt, batch)
        rows.append(
            [fmt, str(batch), result.runtimes.get(fmt, ""), _num(None if eff is None else eff * 100, ".0f") + "%"]
        )
    return [
        "## Efficiency per runtime",
        "",
        "Efficiency = latency speed-up / GFLOPs ratio (base/pruned), averaged over the pruned models; 100% means the",
        "runtime turns every removed FLOP into time saved.",
        "",
        *_md_table(("format", "batch", "runtime", "efficiency"), rows),
    ]


def markdown(result: BenchResult) -> str:
    """The ``report.md`` text."""
    c, m = result.config, result.machine
    lines = [
        "# yolo-prune benchmark",
        "",
        (
            f"- Settings: imgsz {c['imgsz']}, threads {c['threads']}, {c['runs']} timed runs after {c['warmup']} warm-up "
            f"runs per model (interleaved round-robin), throughput batch {c['batch']}, data {c['data'] or '-'}"
        ),
        (
            f"- Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['cpu_flags']) or 'no SIMD flags read'}), "
            f"GPU {m['gpu'] or 'none'}, load average {m['load_average_start']} -> {m.get('load_average_end')}"
        ),
        f"- Software: Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        *([f"- Warning: {m['busy']}"] if m.get("busy") else []),
        "",
        *_models_section(result),
        "",
        "## Latency",
        "",
        "Median and p90 over interleaved runs; speed-up against the base on the same runtime and batch.",
        "",
        *_md_table(HEADERS, [row_cells(r) for r in result.rows]),
        "",
        *_efficiency_section(result),
    ]
    if result.skipped:
        lines += ["", "## Skipped", "", *[f"- `{s.format}`: {s.reason}" for s in result.skipped]]
    if "plot" in result.files:
        lines += ["", f"![benchmark]({result.files['plot'].name})"]
    return "\n".join(lines) + "\n"


def write_reports(result: BenchResult) -> None:
    """Write ``report.md`` and ``results.json`` into the run directory and record their paths."""
    result.files["report"] = result.run_dir / "report.md"
    result.files["json"] = result.run_dir / "results.json"
    result.files["report"].write_text(markdown(result))
    result.files["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")


def read_json(path: str | Path) -> dict:
    """Load a ``results.json`` written by a benchmark run."""
    return json.loads(Path(path).read_text())
