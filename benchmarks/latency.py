"""Latency of pruned yolov8n on CPU runtimes: the numbers behind BENCHMARKS.md.

Builds yolov8n from its yaml (seeded random weights: latency does not depend on the values), prunes it several ways
(``--variants``; by default ratio 0.3 and speed_up 2.0, each with round_to 8 and 16), then runs
``yolo_prune.bench.benchmark`` on ONNX Runtime, OpenVINO, NCNN, LiteRT and PyTorch with the same thread count, every
model timed round-robin after warm-up. ``--profile`` also profiles the ONNX Runtime sessions per operator type and
per model part (where a runtime loses the GFLOPs promise: width-independent head ops, layout reorders);
``--openvino-precision`` times OpenVINO with f32 and bf16 forced. Writes ``benchmarks/results/<name>_raw.md``,
``<name>.json`` and ``<name>_<threads>t.png``.

Run from the repository root (about 5 minutes on an idle 2-core machine for one thread count):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/latency.py --profile --openvino-precision

Options: ``--formats onnx,openvino,ncnn,tflite,torch``, ``--threads 2``, ``--imgsz 640``, ``--runs 100``, ``--warmup 10``,
``--time-limit 30`` (seconds per runtime and batch), ``--variants r0.3-rt8,...`` (``r<ratio>`` or ``su<speed_up>``, then
``-rt<round_to>``), ``--model yolov8n.yaml``, ``--project runs/prune``, ``--out benchmarks/results``, ``--name latency``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import numpy as np
import torch

from yolo_prune import prune_yolo
from yolo_prune.bench import BenchResult, benchmark
from yolo_prune.bench.report import row_cells
from yolo_prune.bench.runtimes import LoadOptions
from yolo_prune.bench.runtimes.openvino import OpenVINO
from yolo_prune.bench.timing import LatencyStats, time_interleaved
from yolo_prune.checkpoint import checkpoint_dict, save_atomic
from yolo_prune.loading import load_model

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_VARIANTS = "r0.3-rt8,r0.3-rt16,su2.0-rt8,su2.0-rt16"  # r<ratio> or su<speed_up>, then -rt<round_to>
TARGETS = (  # (model label, runtime, minimum measured speed-up) from the issue; labels not run are left out
    ("r0.3-rt8", "onnx", 1.40),
    ("r0.3-rt16", "onnx", 1.40),
    ("su2.0-rt8", "onnx", 1.80),
    ("su2.0-rt16", "onnx", 1.80),
    ("su2.5-rt16", "onnx", 1.80),
)
MIN_EFFICIENCY = 0.80
PROFILE_RUNS = 30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolov8n.yaml")
    p.add_argument("--formats", default="onnx,openvino,ncnn,tflite,torch")
    p.add_argument("--threads", default="2", help="thread counts, comma-separated (e.g. 2,1): one table each")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--time-limit", type=float, default=30.0, help="seconds of warm-up + timing per runtime and batch")
    p.add_argument("--batch", type=int, default=8, help="torch throughput batch (when torch is in --formats)")
    p.add_argument("--project", default="runs/prune")
    p.add_argument("--out", default=str(RESULTS_DIR))
    p.add_argument("--name", default="latency", help="stem of the written files (<name>_raw.md, <name>.json)")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help="pruned variants: r<ratio>|su<speed_up>-rt<round_to>")
    p.add_argument("--profile", action="store_true", help="also profile ONNX Runtime per operator type and model part")
    p.add_argument("--openvino-precision", action="store_true", help="also time OpenVINO with f32 and bf16 forced")
    return p.parse_args(argv)


def variant_args(label: str) -> dict:
    """``prune_yolo`` arguments of a variant label: ``r0.3-rt8`` (ratio 0.3, round_to 8), ``su2.5-rt16``..."""
    target, _, round_to = label.partition("-rt")
    key = "ratio" if target.startswith("r") and not target.startswith("rt") else "speed_up"
    value = float(target[1:] if key == "ratio" else target.removeprefix("su"))
    return {key: value, "round_to": int(round_to or 8)}


def make_models(model: str, imgsz: int, folder: Path, variants: list[str]) -> tuple[Path, list[Path]]:
    """Save the seeded base checkpoint and its pruned variants into ``folder``."""
    torch.manual_seed(0)
    source, _ = load_model(model)
    ckpt = checkpoint_dict(source, {})
    ckpt.pop("yolo_prune")  # the unpruned base
    base = save_atomic(ckpt, folder / f"{Path(model).stem}.pt", overwrite=True)
    pruned = []
    for label in variants:
        out = folder / f"{label}.pt"
        prune_yolo(base, **variant_args(label), imgsz=imgsz, save=out, overwrite=True, verbose=False)
        pruned.append(out)
    return base, pruned


def profile_onnx(result: BenchResult, threads: int, imgsz: int) -> dict[str, dict[str, dict[str, float]]]:
    """Mean ms per ONNX Runtime operator type (``"op"``) and per model part (``"part"``) for every model's ONNX export.

    Same session options as the timing; the sessions run round-robin, like the timing, so load from other processes
    spreads over all models alike.
    """
    import onnxruntime as ort

    x = np.random.default_rng(0).random((1, 3, imgsz, imgsz), dtype=np.float32)
    sessions = {}
    for m in result.models:
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.enable_profiling = True
        so.profile_file_prefix = str(result.run_dir / f"ort_profile_{m.label}")
        sessions[m.label] = ort.InferenceSession(
            str(m.path.with_suffix(".onnx")), so, providers=["CPUExecutionProvider"]
        )
    for _ in range(PROFILE_RUNS):
        for session in sessions.values():
            session.run(None, {session.get_inputs()[0].name: x})
    profiles: dict[str, dict[str, dict[str, float]]] = {"op": {}, "part": {}}
    for label, session in sessions.items():
        events = json.loads(Path(session.end_profiling()).read_text())
        nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
        head = max(int(m.group(1)) for e in nodes if (m := re.search(r"/model\.(\d+)/", e["name"])))
        per_op: dict[str, float] = collections.Counter()
        per_part: dict[str, float] = collections.Counter()
        for e in nodes:
            per_op[e["args"]["op_name"]] += e["dur"] / 1e3 / PROFILE_RUNS
            per_part[model_part(e["name"], e["args"]["op_name"], head)] += e["dur"] / 1e3 / PROFILE_RUNS
        profiles["op"][label], profiles["part"][label] = dict(per_op), dict(per_part)
    return profiles


def model_part(node: str, op: str, head: int) -> str:
    """Which part of yolov8n an ONNX Runtime node belongs to, by whether pruning can shrink it."""
    if op.startswith("Reorder"):
        return "NCHWc layout reorders (between blocked and plain layouts)"
    if f"/model.{head}/" not in node:
        return "backbone + neck (pruned)"
    if "/dfl/" in node:
        return "Detect DFL softmax + conv (width-independent)"
    if re.search(r"/(one2one_)?cv2\.", node):
        return "Detect box branch (hidden width fixed at max(16, c/4, 4*reg_max))"
    if re.search(r"/(one2one_)?cv3\.", node):
        return "Detect cls branch (pruned)"
    return "Detect decode (width-independent)"


def openvino_precisions(result: BenchResult, threads: int, runs: int, time_limit: float) -> dict[str, dict[str, float]]:
    """Median ms of every model's OpenVINO export with the precision forced to f32 and to bf16, interleaved.

    OpenVINO picks bf16 on CPUs with AMX; this separates the precision from the pruning.
    """
    out = {}
    for precision in ("f32", "bf16"):
        runtime = OpenVINO(precision)
        options = LoadOptions(threads, 1, result.config["imgsz"])
        runners = {m.label: runtime.load(m.path.parent / f"{m.label}_openvino_model", options) for m in result.models}
        times = time_interleaved(runners, runs, 5, time_limit=time_limit)
        out[precision] = {label: LatencyStats.of(t).median_ms for label, t in times.items()}
    return out


def precision_table(medians: dict[str, dict[str, float]], threads: int) -> list[str]:
    """Markdown: OpenVINO median ms and speed-up per model, f32 vs bf16."""
    labels = list(next(iter(medians.values())))
    lines = [
        f"### OpenVINO precision: f32 vs bf16 ({threads} thread{'s' if threads > 1 else ''}, interleaved)",
        "",
        "| precision | " + " | ".join(labels) + " |",
        "|---" * (len(labels) + 1) + "|",
    ]
    for precision, ms in medians.items():
        base = ms[labels[0]]
        lines.append(f"| {precision} | " + " | ".join(f"{ms[x]:.1f} ms ({base / ms[x]:.2f}x)" for x in labels) + " |")
    return [*lines, ""]


def profile_table(profiles: dict[str, dict[str, float]], row: str = "op") -> list[str]:
    """Markdown table: ms per row (operator type or model part) for each model (columns), plus the base's share."""
    labels = list(profiles)
    base = profiles[labels[0]]
    total = sum(base.values())
    ops = sorted(set().union(*profiles.values()), key=lambda op: -base.get(op, 0.0))
    lines = [f"| {row} | " + " | ".join(labels) + " | base share |", "|---" * (len(labels) + 2) + "|"]
    for op in ops:
        cells = [f"{profiles[label].get(op, 0.0):.2f}" for label in labels]
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {base.get(op, 0.0) / total:.0%} |")
    totals = [f"**{sum(profiles[label].values()):.2f}**" for label in labels]
    lines.append("| **total** | " + " | ".join(totals) + " | 100% |")
    return lines


def targets_section(result: BenchResult) -> list[str]:
    """Markdown: every speed-up target and the ORT efficiency target, met or not."""
    lines = ["| model | runtime | target | measured | met |", "|---|---|---|---|---|"]
    for label, fmt, minimum in TARGETS:
        row = result.row(label, fmt)
        if row is not None:
            met = "yes" if row.speed_up >= minimum else "no"
            lines.append(f"| {label} | {fmt} | speed-up >= {minimum:.2f}x | {row.speed_up:.2f}x | {met} |")
    for label, fmt, _ in TARGETS:
        row = result.row(label, fmt)
        if row is not None and row.efficiency is not None:
            met = "yes" if row.efficiency >= MIN_EFFICIENCY else "no"
            lines.append(f"| {label} | {fmt} | efficiency >= {MIN_EFFICIENCY:.0%} | {row.efficiency:.0%} | {met} |")
    return lines


def results_section(result: BenchResult) -> list[str]:
    """Markdown: settings, the latency table, efficiency per runtime, skipped runtimes and targets of one run."""
    m, c = result.machine, result.config
    headers = ("model", "format", "batch", "params", "GFLOPs", "file MB", "median ms", "p90 ms", "img/s", "speed-up",
               "GFLOPs x", "efficiency", "runs")  # fmt: skip
    lines = [
        f"### {c['threads']} thread{'s' if c['threads'] > 1 else ''}",
        "",
        f"Load average {m['load_average_start']} at start, {m['load_average_end']} at end. Runtimes: "
        + "; ".join(f"`{k}`: {v}" for k, v in result.runtimes.items())
        + ".",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join([*row_cells(r)[: len(headers) - 1], str(r.latency.runs)]) + " |" for r in result.rows]
    lines += ["", "| runtime | efficiency (mean over pruned models) |", "|---|---|"]
    for fmt in result.runtimes:
        eff = result.efficiency(fmt)
        lines.append(f"| {fmt} | {'-' if eff is None else f'{eff:.0%}'} |")
    if result.skipped:
        lines += ["", "Skipped: " + "; ".join(f"`{s.format}` ({s.reason})" for s in result.skipped)]
    return [*lines, "", "Targets:", "", *targets_section(result), ""]


def write_markdown(
    results: list[BenchResult], command: str, seconds: float, profiles: dict | None, precisions: dict | None
) -> str:
    first = results[0]
    m, c = first.machine, first.config
    lines = [
        "## Latency per runtime (yolov8n, CPU)",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min wall, including exports).",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({', '.join(m['cpu_flags'])}), shared with other jobs.",
        f"- Software: Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()) + ".",
        (
            f"- Settings: imgsz {c['imgsz']}, batch 1 (torch also at batch {c['batch']}), the same thread count for every "
            f"runtime, {c['warmup']} warm-up then {c['runs']} timed runs per model, all models interleaved round-robin; "
            "speed-up = base median / model median on the same runtime; efficiency = speed-up / GFLOPs ratio."
        ),
        "",
    ]
    for result in results:
        lines += results_section(result)
    if precisions:
        lines += precision_table(precisions, first.config["threads"])
    if profiles:
        threads = f"{first.config['threads']} thread{'s' if first.config['threads'] > 1 else ''}"
        for key, title in (("part", "model part"), ("op", "operator type")):
            lines += [
                f"### ONNX Runtime profile (ms per run by {title}, {PROFILE_RUNS} interleaved runs, {threads})",
                "",
                *profile_table(profiles[key], title.split()[-1]),
                "",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "YOLO_OFFLINE=1 .venv/bin/python benchmarks/latency.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    threads = [int(t) for t in str(args.threads).split(",")]
    start = time.time()
    results: list[BenchResult] = []
    with tempfile.TemporaryDirectory(prefix="yolo_prune_latency_") as tmp:
        base, pruned = make_models(args.model, args.imgsz, Path(tmp), args.variants.split(","))
        for count in threads:  # one run directory: later thread counts reuse the exports of the first
            name = results[0].run_dir.name if results else args.name
            settings = {
                "imgsz": args.imgsz,
                "runs": args.runs,
                "warmup": args.warmup,
                "batch": args.batch,
                "time_limit": args.time_limit,
            }
            results.append(
                benchmark(
                    base,
                    pruned,
                    formats=args.formats,
                    threads=count,
                    **settings,
                    project=args.project,
                    name=name,
                    exist_ok=bool(results),
                )
            )
            if "plot" in results[-1].files:  # the run directory is shared: keep each thread count's figure
                out_dir = Path(args.out)
                out_dir.mkdir(parents=True, exist_ok=True)
                shutil.copy2(results[-1].files["plot"], out_dir / f"{args.name}_{count}t.png")
    first = results[0]
    profiles = (
        profile_onnx(first, threads[0], args.imgsz) if args.profile and first.row(first.base.label, "onnx") else None
    )
    precisions = None
    if args.openvino_precision and first.row(first.base.label, "openvino"):
        precisions = openvino_precisions(first, threads[0], args.runs, args.time_limit)
    seconds = time.time() - start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}_raw.md").write_text(write_markdown(results, command, seconds, profiles, precisions))
    doc = {
        "runs": [r.to_dict() for r in results],
        "ort_profile_ms": profiles,
        "openvino_precision_median_ms": precisions,
        "wall_s": seconds,
        "command": command,
    }
    (out / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out / (args.name + '_raw.md')} and {out / (args.name + '.json')} ({seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
