"""yolo_prune.bench: interleaved timing, reports (md/JSON/PNG), sweep mode, skipped runtimes and argument errors.

Tiny 3-class yolov8n models at imgsz 64 with a few runs keep this module well under a minute and a half.
"""

import json
import os
import time

import pytest
import torch
from conftest import tiny_detector

from yolo_prune import PruneError, prune_yolo
from yolo_prune.bench import CLI_DEFAULTS, BenchResult, benchmark, benchmark_cli
from yolo_prune.bench.options import parse_formats
from yolo_prune.bench.quiet import captured_native_output
from yolo_prune.bench.result import SCHEMA, Row, fill_ratios
from yolo_prune.bench.runtimes.openvino import OpenVINO
from yolo_prune.bench.timing import LatencyStats, time_interleaved
from yolo_prune.checkpoint import checkpoint_dict, save_atomic

IMGSZ = 64
FAST = {"imgsz": IMGSZ, "runs": 3, "warmup": 1, "threads": 1, "verbose": False}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A tiny base checkpoint and a 50% pruned one."""
    folder = tmp_path_factory.mktemp("bench_models")
    base, pruned = folder / "base.pt", folder / "pruned.pt"
    save_atomic(checkpoint_dict(tiny_detector(), {}), base)
    prune_yolo(base, 0.5, imgsz=IMGSZ, save=pruned, verbose=False)
    return base, pruned


@pytest.fixture(scope="module")
def pair_run(checkpoints, dataset_yaml, tmp_path_factory):
    """base vs pruned on torch + onnx, with mAP on the synthetic dataset."""
    base, pruned = checkpoints
    project = tmp_path_factory.mktemp("runs")
    return benchmark(base, pruned, formats="torch,onnx", batch=2, data=dataset_yaml, project=project, **FAST)


# --- timing ------------------------------------------------------------------------------------------------------


def test_runs_are_interleaved_round_robin_after_warmup():
    calls, clock = [], iter(range(1000))

    def runner(label):
        return lambda: calls.append(label)

    timer_calls = []

    def timer():
        timer_calls.append(len(calls))
        return float(next(clock))

    times = time_interleaved({"base": runner("base"), "pruned": runner("pruned")}, runs=3, warmup=2, timer=timer)
    assert calls == ["base", "pruned"] * 5  # 2 warm-up rounds, then 3 timed rounds, alternating
    assert len(timer_calls) == 2 * 2 * 3 and min(timer_calls) == 4  # the clock is read only around timed runs
    assert times == {"base": [1.0] * 3, "pruned": [1.0] * 3}


def test_time_limit_cuts_a_stalling_runtime_but_keeps_three_rounds():
    calls = []
    slow = {"base": lambda: (calls.append("base"), time.sleep(0.02)), "pruned": lambda: calls.append("pruned")}
    times = time_interleaved(slow, runs=1000, warmup=1000, time_limit=0.1)
    assert 3 <= len(times["base"]) < 10 and len(times["base"]) == len(times["pruned"])
    assert calls[:4] == ["base", "pruned", "base", "pruned"]  # still interleaved
    times = time_interleaved(slow, runs=4, warmup=0, time_limit=1e-9)
    assert len(times["pruned"]) == 3  # never fewer than three timed rounds


def test_converter_output_is_captured_and_descriptors_restored(capfd):
    with captured_native_output():
        os.write(1, b"pnnx noise\n")
    with pytest.raises(ValueError), captured_native_output():
        os.write(2, b"converter diagnosis\n")
        raise ValueError("export failed")
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert "pnnx noise" not in out + err and "after" in out


def test_latency_stats_and_efficiency():
    stats = LatencyStats.of([0.010, 0.020, 0.030, 0.040, 0.050])
    assert stats.median_ms == pytest.approx(30) and stats.p90_ms == pytest.approx(46) and stats.runs == 5
    base = Row("b", "onnx", "ORT", 1, LatencyStats.of([0.040]), 1.0, 10, 8.0)
    small = Row("p", "onnx", "ORT", 1, LatencyStats.of([0.025]), 1.0, 5, 4.0)
    fill_ratios([base, small], "b", 8.0)
    assert small.speed_up == pytest.approx(1.6) and small.gflops_ratio == pytest.approx(2.0)
    assert small.efficiency == pytest.approx(0.8) and base.efficiency == pytest.approx(1.0)
    assert small.images_per_s == pytest.approx(40.0)


# --- a base vs pruned run ----------------------------------------------------------------------------------------


def test_pair_run_writes_report_json_and_plot(pair_run: BenchResult):
    files = pair_run.files
    assert {"report", "json", "plot"} <= set(files) and all(p.stat().st_size > 0 for p in files.values())
    assert files["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pair_run.run_dir.name == "bench" and files["report"].parent == pair_run.run_dir
    report = files["report"].read_text()
    for label in ("base", "pruned"):
        assert f"| {label} | torch | 1 |" in report and f"| {label} | onnx | 1 |" in report
    assert "Efficiency per runtime" in report and "bench.png" in report


def test_pair_run_json_schema(pair_run: BenchResult):
    doc = json.loads(pair_run.files["json"].read_text())
    assert doc["schema"] == SCHEMA
    assert set(doc) >= {"config", "machine", "runtimes", "models", "results", "efficiency", "skipped", "files"}
    assert doc["config"]["threads"] == 1 and doc["config"]["formats"] == ["torch", "onnx"]
    assert {"cpu", "cores", "versions", "load_average_start", "load_average_end"} <= set(doc["machine"])
    assert [m["role"] for m in doc["models"]] == ["base", "pruned"]
    row_keys = {"model", "format", "runtime", "batch", "median_ms", "p90_ms", "runs", "images_per_s", "file_mb",
                "params", "gflops", "speed_up", "gflops_ratio", "efficiency", "map50_95"}  # fmt: skip
    for row in doc["results"]:
        assert row_keys <= set(row)
    keys = {(r["model"], r["format"], r["batch"]) for r in doc["results"]}
    assert keys == {(m, f, b) for m in ("base", "pruned") for f, b in (("torch", 1), ("torch", 2), ("onnx", 1))}
    assert doc["skipped"] == []


def test_pair_run_numbers(pair_run: BenchResult):
    base, pruned = pair_run.row("base", "onnx"), pair_run.row("pruned", "onnx")
    assert base.speed_up == pytest.approx(1.0) and base.latency.runs == 3
    assert pruned.gflops < base.gflops and pruned.params < base.params and pruned.file_mb < base.file_mb
    assert pruned.gflops_ratio == pytest.approx(base.gflops / pruned.gflops)
    assert pruned.speed_up == pytest.approx(base.latency.median_ms / pruned.latency.median_ms)
    for row in pair_run.rows:  # mAP on every batch-1 CPU row, through that runtime
        assert (row.map50_95 is not None) == (row.batch == 1)
        assert row.map50_95 is None or 0.0 <= row.map50_95 <= 1.0
    assert pair_run.row("base", "torch", 2).latency.runs == 3  # max(3, runs / batch) rounds at batch 2
    assert "ONNX Runtime" in pair_run.runtimes["onnx"]


def test_second_run_gets_an_incremented_directory(checkpoints, pair_run: BenchResult):
    base, pruned = checkpoints
    again = benchmark(base, pruned, formats="onnx", project=pair_run.run_dir.parent, **FAST)
    assert again.run_dir.name == "bench-2" and pair_run.run_dir.exists()


# --- sweep mode, skipped runtimes, CLI entry -----------------------------------------------------------------------


def test_cli_sweep_one_row_per_ratio_and_skips(checkpoints, tmp_path, monkeypatch):
    base, _ = checkpoints
    monkeypatch.setattr(OpenVINO, "requires", (("yolo_prune_no_such_module", "openvino"),))
    args = {"model": str(base), "ratios": (0.3, 0.5), "formats": "onnx,openvino,cuda", "project": str(tmp_path)}
    result = benchmark_cli(
        {**args, "imgsz": IMGSZ, "runs": 2, "warmup": 0, "threads": 1, "verbose": False, "round_to": 16}
    )
    assert [m.label for m in result.models] == ["base", "ratio0.3", "ratio0.5"]
    assert [m.role for m in result.models] == ["base", "sweep", "sweep"]
    assert [m.round_to for m in result.models[1:]] == [16, 16]
    assert [(r.model, r.format) for r in result.rows] == [("base", "onnx"), ("ratio0.3", "onnx"), ("ratio0.5", "onnx")]
    assert result.models[1].gflops > result.models[2].gflops
    skipped = {s.format: s.reason for s in result.skipped}
    assert "pip install openvino" in skipped["openvino"]
    if not torch.cuda.is_available():
        assert "no CUDA device" in skipped["cuda"]
    report = result.files["report"].read_text()
    assert "## Skipped" in report and "`openvino`" in report and "`cuda`" in report
    assert json.loads(result.files["json"].read_text())["skipped"][0]["format"] == "openvino"
    assert result.files["plot"].exists()  # speed-up bars + latency/GFLOPs vs ratio


@pytest.mark.slow
def test_edge_cpu_runtimes_time_both_models(checkpoints, tmp_path):
    """OpenVINO, NCNN and LiteRT each load their own export of both models and time them (CI installs all three)."""
    base, pruned = checkpoints
    result = benchmark(base, pruned, formats="openvino,ncnn,tflite", project=tmp_path, **FAST)
    assert result.skipped == []
    formats = ["openvino", "ncnn", "tflite"]
    assert sorted((r.model, r.format) for r in result.rows) == sorted((m, f) for m in ("base", "pruned") for f in formats)
    for row in result.rows:
        assert row.latency.median_ms > 0 and row.file_mb > 0
        assert row.speed_up is not None and row.speed_up > 0
    pruned_rows = [r for r in result.rows if r.model == "pruned"]
    assert all(r.file_mb < result.row("base", r.format).file_mb for r in pruned_rows)  # the exports are really smaller


# --- argument errors (raised before anything is written) -------------------------------------------------------


def test_bad_format_suggests_the_closest(checkpoints, tmp_path):
    base, pruned = checkpoints
    with pytest.raises(PruneError, match="Unknown format 'onnxx'. Did you mean 'onnx'"):
        benchmark(base, pruned, formats="torch,onnxx", project=tmp_path)
    with pytest.raises(PruneError, match="Did you mean 'openvino'"):
        benchmark(base, pruned, formats=["openvion"], project=tmp_path)
    assert not any(tmp_path.iterdir())


def test_format_aliases_and_default():
    assert parse_formats("TFLite, litert,engine,ort") == ["tflite", "tensorrt", "onnx"]
    assert parse_formats(None)[:2] == ["torch", "onnx"]
    assert ("cuda" in parse_formats(None)) == torch.cuda.is_available()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "Nothing to compare"),
        ({"ratios": [0.3, 1.5]}, "ratios has 1.5"),
        ({"speed_ups": "0.5"}, "speed_ups has '0.5'"),
        ({"ratios": 0.3, "runs": 0}, "runs=0"),
        ({"ratios": 0.3, "imgsz": 100}, "multiple of 32"),
        ({"ratios": 0.3, "threads": 0}, "threads=0"),
        ({"ratios": 0.3, "time_limit": -1}, "time_limit=-1"),
        ({"ratios": 0.3, "prune_args": {"ratio": 0.5}}, "prune_args may not set ratio"),
    ],
)
def test_invalid_arguments(checkpoints, tmp_path, kwargs, message):
    with pytest.raises(PruneError, match=message):
        benchmark(checkpoints[0], project=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_cli_errors():
    with pytest.raises(PruneError, match="Unknown key"):
        benchmark_cli({"model": "a.pt", "ratio": 0.3})
    with pytest.raises(PruneError, match="needs model="):
        benchmark_cli({"pruned": "b.pt"})
    assert CLI_DEFAULTS["formats"] is None and CLI_DEFAULTS["runs"] == 100 and CLI_DEFAULTS["project"] == "runs/prune"
