"""``benchmark``: latency, throughput, size, GFLOPs and mAP of a base model against its pruned versions."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ultralytics.utils import LOGGER, TQDM
from ultralytics.utils.files import increment_path

from ..api import PREFIX
from ..loading import ModelSource
from .accuracy import check_data, map50_95
from .machine import busy_warning, load_average, machine_info, usable_cores
from .models import BenchModel, SweepPlan, check_pruned_given, collect_models
from .options import check_int, check_prune_args, check_seconds, parse_formats, parse_pruned, parse_values
from .plots import write_plot
from .report import text_table, write_reports
from .result import BenchResult, Row, Skip, fill_ratios
from .runtimes import RUNTIMES, LoadOptions, Runtime, artifact_bytes
from .timing import LatencyStats, time_interleaved

PT_VAL_BATCH = 16  # validation batch for checkpoints; exports have a fixed batch of 1


@dataclass(frozen=True)
class Settings:
    """The validated knobs every runtime is measured with."""

    imgsz: int
    threads: int
    runs: int
    warmup: int
    batch: int
    gpu_batch: int
    data: str | None
    time_limit: float | None
    verbose: bool

    def rounds(self, batch: int) -> tuple[int, int]:
        """Timed and warm-up rounds at ``batch``: the same number of images as at batch 1 (at least 3 timed)."""
        if batch == 1:
            return self.runs, self.warmup
        return max(3, math.ceil(self.runs / batch)), max(1, math.ceil(self.warmup / batch))


def benchmark(
    model: ModelSource,
    pruned: ModelSource | Sequence[ModelSource] | None = None,
    *,
    formats: str | Sequence[str] | None = None,
    imgsz: int = 640,
    data: str | os.PathLike | None = None,
    threads: int | None = None,
    runs: int = 100,
    warmup: int = 10,
    batch: int = 8,
    gpu_batch: int = 32,
    time_limit: float | None = None,
    ratios: float | Sequence[float] | None = None,
    speed_ups: float | Sequence[float] | None = None,
    prune_args: Mapping[str, Any] | None = None,
    project: str | os.PathLike = "runs/prune",
    name: str = "bench",
    exist_ok: bool = False,
    verbose: bool = True,
) -> BenchResult:
    """Measure a base model against pruned versions on several runtimes and write a report.

    For every runtime the models are exported with Ultralytics (``YOLO(pt).export``), loaded into the runtime's own
    API (ONNX Runtime session, ``openvino.Core``, ``ncnn.Net``, LiteRT ``Interpreter``; no AutoBackend overhead) with
    the same thread count, warmed up, then timed round-robin (base, pruned, base, pruned...) so that load from other
    processes hits every model alike; speed-ups are ratios of medians. PyTorch is also timed at ``batch`` for
    throughput. With a CUDA device, ``cuda`` times fp16 PyTorch replayed from a CUDA graph at batch 1 and
    ``gpu_batch`` and ``tensorrt`` fp16 engines. A runtime whose packages are missing (or ``cuda``/``tensorrt``
    without a GPU) is skipped with one logged line and listed as skipped in the report.

    The run directory (``project/name``, incremented like Ultralytics runs: ``bench``, ``bench-2``...) receives the
    stored checkpoints and exports (``weights/``), ``report.md``, ``results.json`` (schema ``yolo-prune-bench/1``) and
    ``bench.png`` (speed-up per runtime against the GFLOPs ratio; latency and GFLOPs along a sweep; mAP vs GFLOPs).

    Args:
        model: The base model: ``.pt`` checkpoint, model yaml, ``YOLO`` or ``DetectionModel``.
        pruned: One pruned model or several (a list, or a comma-separated string of paths).
        formats: Runtimes to measure, from ``torch``, ``onnx``, ``openvino``, ``ncnn``, ``tflite`` (alias
            ``litert``), ``cuda``, ``tensorrt`` (alias ``engine``); a list or a comma-separated string. None:
            ``torch,onnx``, plus ``cuda`` when a CUDA device is present.
        imgsz: Square input size (a multiple of 32); GFLOPs are reported at this size.
        data: Dataset yaml: also measure mAP50-95 through every CPU runtime (val split, batch-1 rows).
        threads: CPU threads for every runtime (intra-op); None uses every core this process may run on.
        runs: Timed runs per model at batch 1 (the throughput batch gets the same number of images).
        warmup: Untimed runs per model before timing.
        batch: Throughput batch for ``torch`` (1 disables the throughput row).
        gpu_batch: Second batch size for ``cuda`` and ``tensorrt``.
        time_limit: Seconds of warm-up plus timing allowed per runtime and batch; a runtime that stalls (e.g. an
            OpenMP runtime on an oversubscribed machine) then gets fewer runs (three at least), recorded in ``runs``.
        ratios: Sweep mode: prune the base in this run to each of these ratios (``prune_yolo(ratio=...)``).
        speed_ups: Sweep mode: prune the base to each of these GFLOPs speed-up targets (``prune_yolo(speed_up=...)``).
        prune_args: Extra ``prune_yolo`` arguments for the sweep (``round_to``, ``importance``, ``global_pruning``).
        project: Parent folder of the run directory.
        name: Run directory name.
        exist_ok: Reuse ``project/name`` instead of incrementing it.
        verbose: Log progress bars and the final table.

    Returns:
        The measured rows, models, skipped runtimes and written files.

    Raises:
        PruneError: For an unknown format (with a suggestion), an invalid number, a missing/unreadable model or
            dataset, or when there is nothing to compare (no ``pruned``, ``ratios`` or ``speed_ups``).

    Examples:
        >>> from yolo_prune.bench import benchmark
        >>> r = benchmark("yolov8n.pt", "yolov8n-pruned.pt", formats="torch,onnx,openvino", threads=2)  # doctest: +SKIP
        >>> r.row("yolov8n-pruned", "onnx").speed_up  # doctest: +SKIP
        1.52
        >>> benchmark("yolov8n.pt", ratios=[0.2, 0.3, 0.5], formats="onnx", data="coco8.yaml")  # doctest: +SKIP
    """
    keys = parse_formats(formats)
    pruned_list = parse_pruned(pruned)
    sweep = SweepPlan(
        parse_values("ratios", ratios, 0.0, 1.0),
        parse_values("speed_ups", speed_ups, 1.0, None),
        check_prune_args(prune_args),
    )
    settings = Settings(
        imgsz=check_int("imgsz", imgsz, 32, multiple=32),
        threads=usable_cores() if threads is None else check_int("threads", threads, 1),
        runs=check_int("runs", runs, 1),
        warmup=check_int("warmup", warmup, 0),
        batch=check_int("batch", batch, 1),
        gpu_batch=check_int("gpu_batch", gpu_batch, 1),
        data=None if data is None else str(data),
        time_limit=check_seconds("time_limit", time_limit),
        verbose=bool(verbose),
    )
    check_pruned_given(pruned_list, sweep)
    check_data(settings.data)
    run_dir = increment_path(Path(project) / name, exist_ok=exist_ok, mkdir=True)
    if busy := busy_warning():
        LOGGER.warning(f"{PREFIX}{busy}")
    models = collect_models(model, pruned_list, sweep, run_dir / "weights", settings.imgsz)
    result = BenchResult(run_dir, _config(keys, settings, sweep), machine_info(), models)
    torch_threads = torch.get_num_threads()
    try:
        for key in keys:
            _measure_runtime(RUNTIMES[key](), result, settings)
    finally:
        torch.set_num_threads(torch_threads)
    return _finish(result, settings)


def _config(keys: list[str], settings: Settings, sweep: SweepPlan) -> dict[str, Any]:
    return {
        "formats": keys,
        "imgsz": settings.imgsz,
        "threads": settings.threads,
        "runs": settings.runs,
        "warmup": settings.warmup,
        "batch": settings.batch,
        "gpu_batch": settings.gpu_batch,
        "time_limit": settings.time_limit,
        "data": settings.data,
        "ratios": list(sweep.ratios),
        "speed_ups": list(sweep.speed_ups),
        "prune_args": dict(sweep.prune_args or {}),
    }


def _skip(result: BenchResult, fmt: str, reason: str) -> None:
    LOGGER.warning(f"{PREFIX}skipping {fmt}: {reason}")
    result.skipped.append(Skip(fmt, reason))


def _measure_runtime(runtime: Runtime, result: BenchResult, settings: Settings) -> None:
    """Export, load and time every model on one runtime, at each of its batch sizes; skip it on failure."""
    reason = runtime.unavailable()
    if reason:
        _skip(result, runtime.key, reason)
        return
    for batch in runtime.batches(settings.batch, settings.gpu_batch):
        try:
            rows = _measure_batch(runtime, result.models, settings, batch)
        except Exception as e:  # noqa: BLE001 (an export or runtime failure loses this runtime, not the whole benchmark)
            _skip(result, runtime.key if batch == 1 else f"{runtime.key}@{batch}", f"{type(e).__name__}: {e}")
            if batch == 1:
                return
            continue
        result.runtimes.setdefault(runtime.key, rows[0].runtime)
        result.rows += rows


def _measure_batch(runtime: Runtime, models: list[BenchModel], settings: Settings, batch: int) -> list[Row]:
    """Rows of every model on ``runtime`` at ``batch``: export, load, interleaved timing, then mAP if asked."""
    if settings.verbose:
        LOGGER.info(f"{PREFIX}{runtime.key}: exporting and loading {len(models)} models (batch {batch})")
    artifacts = {m.label: runtime.export(m.path, settings.imgsz, batch) for m in models}
    times, version = _time(runtime, artifacts, settings, batch)
    return [_row(m, runtime, version, batch, times[m.label], artifacts[m.label], settings) for m in models]


def _time(runtime: Runtime, artifacts: dict[str, Path], settings: Settings, batch: int) -> tuple[dict, str]:
    """Load every artifact and time them interleaved; return the run times and the runtime's description."""
    options = LoadOptions(settings.threads, batch, settings.imgsz)
    runners = {label: runtime.load(path, options) for label, path in artifacts.items()}
    version = runtime.version()  # after loading: some runtimes report what they chose (e.g. OpenVINO's precision)
    runs, warmup = settings.rounds(batch)
    bar = TQDM(total=runs + warmup, desc=f"{runtime.key} batch {batch}", disable=not settings.verbose)
    try:
        times = time_interleaved(runners, runs, warmup, time_limit=settings.time_limit, on_round=lambda: bar.update(1))
        return times, version
    finally:
        bar.close()


def _row(
    m: BenchModel, runtime: Runtime, version: str, batch: int, times: list[float], artifact: Path, settings: Settings
) -> Row:
    """One result row; mAP is measured through the runtime's export for batch-1 CPU rows when ``data`` is given."""
    score = None
    if settings.data and batch == 1 and not runtime.gpu:
        val_batch = PT_VAL_BATCH if artifact.suffix == ".pt" else 1
        score = map50_95(
            artifact, settings.data, settings.imgsz, val_batch, m.path.parent.parent / "val", task=m.task
        )  # run_dir/val
    size_mb = artifact_bytes(artifact) / 1e6
    return Row(
        m.label, runtime.key, version, batch, LatencyStats.of(times), size_mb, m.params, m.gflops, map50_95=score
    )


def _finish(result: BenchResult, settings: Settings) -> BenchResult:
    """Speed-ups, the figure, report.md, results.json and the stdout table."""
    fill_ratios(result.rows, result.base.label, result.base.gflops)
    result.machine["load_average_end"] = load_average()
    plot = write_plot(result, result.run_dir / "bench.png")
    if plot is not None:
        result.files["plot"] = plot
    write_reports(result)
    if settings.verbose:
        LOGGER.info(f"\n{text_table(result)}\n")
        LOGGER.info(
            f"{PREFIX}results saved to {result.run_dir} (report.md, results.json{', bench.png' if plot else ''})"
        )
    return result
