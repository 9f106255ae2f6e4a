"""Benchmark ``yolo_prune.pruning.core.prune_detection_model`` on the YOLOv8 / YOLO11 / YOLO26 detection families.

For each model (built from its yaml, random weights, no checkpoint I/O) this measures GFLOPs at imgsz 640 and
parameter count before and after pruning, the wall time of the prune call alone, and the peak resident memory of
the process that pruned it. Every model runs in its own child process so ``ru_maxrss`` is per model; the parent
runs the children one after another and aggregates. For yolov8n, yolo11n and yolo26n the child also prunes twice
and checks that every ``state_dict`` tensor is bit-identical.

Run from the repository root (writes benchmarks/results/prune_core.md and benchmarks/results/prune_core.json):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/prune_core.py

Options: ``--models yolov8n,yolo11s`` (default: all 15), ``--ratio 0.3`` (default 0.3). Internal child mode:
``--one yolov8x.yaml --json out.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from yolo_prune.bench.machine import cpu_model

FAMILIES = ("yolov8", "yolo11", "yolo26")
SCALES = ("n", "s", "m", "l", "x")
ALL_MODELS = tuple(f"{f}{s}" for f in FAMILIES for s in SCALES)
DETERMINISM_MODELS = {"yolov8n", "yolo11n", "yolo26n"}
IMGSZ = 640
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHILD_TIMEOUT_S = 3600

# Targets (evaluated at whatever --ratio is given; they are specified for ratio 0.3).
FLOPS_RATIO_ALL = 0.70
FLOPS_RATIO_V8N = 0.60
PARAMS_RATIO_V8N = 0.55
TIME_LIMITS_S = {"yolov8n": 10.0, "yolov8x": 60.0}
PEAK_MEM_LIMIT_BYTES = 3 * 10**9  # 3 GB (decimal)


# ----------------------------------------------------------------------------------------------------- child side
def build_model(name: str) -> Any:
    """Build a DetectionModel from ``<name>.yaml`` (random init, no download)."""
    from ultralytics import YOLO

    return YOLO(f"{name}.yaml", task="detect", verbose=False).model


def count_params(model: Any) -> int:
    """Total number of parameters."""
    return sum(p.numel() for p in model.parameters())


def gflops(model: Any) -> float:
    """GFLOPs at ``IMGSZ`` as Ultralytics reports them."""
    from ultralytics.utils.torch_utils import get_flops

    return float(get_flops(model, IMGSZ))


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_prune(model: Any, ratio: float) -> tuple[Any, float]:
    """Prune ``model`` (uniform, l2) and return the pruned copy and the wall time of the call."""
    from yolo_prune.pruning.core import PruneOptions, prune_detection_model

    options = PruneOptions(ratio=ratio, importance="l2", global_pruning=False)
    start = time.perf_counter()
    pruned = prune_detection_model(model, options)
    return pruned, time.perf_counter() - start


def state_dicts_equal(a: Any, b: Any) -> bool:
    """True if both models have the same state_dict keys and every tensor is bit-identical."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return False
    return all(sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def measure_one(name: str, ratio: float) -> dict[str, Any]:
    """Measure one model in this process; the prune call runs before any FLOPs profiling so peak RSS covers it."""
    model = build_model(name)
    rss_built = peak_rss_bytes()
    pruned, prune_s = timed_prune(model, ratio)
    rss_pruned = peak_rss_bytes()
    result: dict[str, Any] = {
        "model": name,
        "ratio": ratio,
        "prune_s": prune_s,
        "peak_rss_after_build_bytes": rss_built,
        "peak_rss_bytes": rss_pruned,
        "params_before": count_params(model),
        "params_after": count_params(pruned),
        "gflops_before": gflops(model),
        "gflops_after": gflops(pruned),
    }
    result["params_ratio"] = result["params_after"] / result["params_before"]
    result["gflops_ratio"] = result["gflops_after"] / result["gflops_before"]
    if name in DETERMINISM_MODELS:
        again, _ = timed_prune(model, ratio)
        result["deterministic"] = state_dicts_equal(pruned, again)
    result["peak_rss_final_bytes"] = peak_rss_bytes()
    return result


def run_child(model_yaml: str, ratio: float, json_path: Path) -> None:
    """Child entry point: measure one model and write its result as JSON."""
    name = normalize_name(model_yaml)
    json_path.write_text(json.dumps(measure_one(name, ratio), indent=2))


# ---------------------------------------------------------------------------------------------------- parent side
def normalize_name(model: str) -> str:
    """``yolov8x.yaml`` or ``yolov8x`` -> ``yolov8x``."""
    return model.strip().removesuffix(".yaml")


def spawn_child(name: str, ratio: float) -> dict[str, Any]:
    """Run one model in a fresh interpreter; return its result or an error record with the traceback tail."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", f"{name}.yaml", "--json", str(out)]
        cmd += ["--ratio", str(ratio)]
        env = {**os.environ, "YOLO_OFFLINE": "1"}
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"model": name, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
        wall = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            return {"model": name, "error": f"exit code {proc.returncode}", "traceback_tail": tail, "child_wall_s": wall}
        result = json.loads(out.read_text())
        result["child_wall_s"] = wall
        return result


def evaluate_targets(r: dict[str, Any]) -> dict[str, bool | None]:
    """Pass/fail for each target; None where a target does not apply to this model."""
    name = r["model"]
    is_v8n = name == "yolov8n"
    limit = TIME_LIMITS_S.get(name)
    return {
        "gflops_le_0.70": r["gflops_ratio"] <= FLOPS_RATIO_ALL,
        "v8n_gflops_le_0.60": r["gflops_ratio"] <= FLOPS_RATIO_V8N if is_v8n else None,
        "v8n_params_le_0.55": r["params_ratio"] <= PARAMS_RATIO_V8N if is_v8n else None,
        "prune_time": r["prune_s"] <= limit if limit is not None else None,
        "peak_mem_le_3GB": r["peak_rss_bytes"] <= PEAK_MEM_LIMIT_BYTES,
    }


def machine_info() -> dict[str, Any]:
    """Processor, CPU count and library versions."""
    import torch
    import torch_pruning
    import ultralytics

    return {
        "processor": platform.processor() or "(empty)",
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "ultralytics": ultralytics.__version__,
        "torch_pruning": torch_pruning.__version__,
    }


def mark(ok: bool | None) -> str:
    """Table cell for a target result."""
    return "—" if ok is None else ("pass" if ok else "**FAIL**")


def table_row(r: dict[str, Any]) -> str:
    """One markdown row for a model result (or its crash)."""
    if "error" in r:
        return f"| {r['model']} | CRASH: {r['error']} |" + " |" * 13
    t = r["targets"]
    det = "—" if "deterministic" not in r else str(r["deterministic"])
    cells = [
        r["model"],
        f"{r['gflops_before']:.1f}",
        f"{r['gflops_after']:.1f}",
        f"{r['gflops_ratio']:.3f}",
        f"{r['params_before'] / 1e6:.2f}",
        f"{r['params_after'] / 1e6:.2f}",
        f"{r['params_ratio']:.3f}",
        f"{r['prune_s']:.2f}",
        f"{r['peak_rss_bytes'] / 2**20:.0f}",
        det,
        mark(t["gflops_le_0.70"]),
        mark(t["v8n_gflops_le_0.60"]),
        mark(t["v8n_params_le_0.55"]),
        mark(t["prune_time"]),
        mark(t["peak_mem_le_3GB"]),
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(results: list[dict[str, Any]], info: dict[str, Any], command: str, ratio: float) -> str:
    """Full markdown report: header, machine, command, table, notes and crashes."""
    header = (
        "| Model | GFLOPs before | GFLOPs after | GFLOPs ratio | Params before (M) | Params after (M) | Params ratio "
        "| Prune time (s) | Peak RSS (MiB) | Deterministic | GFLOPs ≤0.70× | v8n GFLOPs ≤0.60× | v8n params ≤0.55× "
        "| Time (v8n ≤10 s, v8x ≤60 s) | Peak mem ≤3 GB |"
    )
    lines = [
        f"# prune_detection_model benchmark (ratio {ratio}, importance l2, uniform, imgsz {IMGSZ})",
        "",
        f"- Machine: processor `{info['processor']}` ({info['cpu_model']}), {info['cpu_count']} CPUs, "
        f"torch threads {info['torch_threads']}, Python {info['python']}, {info['platform']}",
        f"- Versions: torch {info['torch']}, ultralytics {info['ultralytics']}, torch-pruning {info['torch_pruning']}",
        f"- Command: `{command}`",
        "- Models built from yaml (random init). Prune time = wall time of `prune_detection_model` only. "
        "Peak RSS = `ru_maxrss` of the model's own child process, read right after the prune call "
        "(includes interpreter, imports and model build). 3 GB = 3×10⁹ bytes.",
        "",
        header,
        "|" + "---|" * 15,
        *[table_row(r) for r in results],
    ]
    crashes = [r for r in results if "error" in r]
    for r in crashes:
        lines += ["", f"### {r['model']} crashed ({r['error']})", "", "```", r.get("traceback_tail", ""), "```"]
    return "\n".join(lines) + "\n"


def run_parent(models: list[str], ratio: float, command: str) -> None:
    """Run every model in its own child, then print and save the aggregated report."""
    results = []
    for name in models:
        print(f"[prune_core] {name} ...", file=sys.stderr, flush=True)
        r = spawn_child(name, ratio)
        if "error" not in r:
            r["targets"] = evaluate_targets(r)
        print(f"[prune_core] {name}: {summary_line(r)}", file=sys.stderr, flush=True)
        results.append(r)
    info = machine_info()
    markdown = render_markdown(results, info, command, ratio)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "prune_core.md").write_text(markdown)
    payload = {"command": command, "ratio": ratio, "imgsz": IMGSZ, "machine": info, "results": results}
    (RESULTS_DIR / "prune_core.json").write_text(json.dumps(payload, indent=2))
    print(markdown)


def summary_line(r: dict[str, Any]) -> str:
    """Short progress line for stderr."""
    if "error" in r:
        return f"CRASH ({r['error']})"
    return (
        f"GFLOPs {r['gflops_before']:.1f}->{r['gflops_after']:.1f} ({r['gflops_ratio']:.3f}), "
        f"params ratio {r['params_ratio']:.3f}, {r['prune_s']:.2f} s, {r['peak_rss_bytes'] / 2**20:.0f} MiB"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated model names (default: all 15)")
    p.add_argument("--ratio", type=float, default=0.3, help="pruning ratio (default 0.3)")
    p.add_argument("--one", help="internal: measure a single model yaml in this process")
    p.add_argument("--json", type=Path, help="internal: where --one writes its result")
    return p.parse_args(argv)


def main() -> None:
    """Dispatch to child (--one) or parent mode."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args = parse_args()
    if args.one:
        if args.json is None:
            sys.exit("--one needs --json")
        run_child(args.one, args.ratio, args.json)
        return
    models = [normalize_name(m) for m in args.models.split(",") if m.strip()]
    command = " ".join(shlex.quote(a) for a in ["python", *sys.argv])
    run_parent(models, args.ratio, command)


if __name__ == "__main__":
    main()
