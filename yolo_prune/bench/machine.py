"""Describe the machine a benchmark ran on: CPU model, cores, load and library versions."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

PACKAGES = ("ultralytics", "torch", "torch-pruning", "onnxruntime", "openvino", "ncnn", "ai-edge-litert", "tensorrt")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD extensions that decide kernel blocking (AVX2, AVX-512 variants, AMX, NEON...)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith(("flags", "Features"))), []
    )
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "asimd", "fphp")
    return [f for f in wanted if f in flags]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """1/5/15-minute load average, where the OS reports one (a busy shared machine shows here)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info() -> dict:
    """Everything about the machine and software that a reader needs to compare numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": usable_cores(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "versions": versions,
        "load_average_start": load_average(),
        "busy": busy_warning(),
    }


def busy_warning() -> str | None:
    """A warning when other processes already keep every core busy (1-minute load average >= cores), else None."""
    load = load_average()
    cores = usable_cores()
    if load is None or load[0] < cores:
        return None
    return (
        f"machine busy (load average {load[0]:.1f} on {cores} cores): multi-threaded OpenMP runtimes (PyTorch CPU, "
        "NCNN) stall at every barrier while a thread is descheduled; ratios of interleaved runs stay comparable, "
        "absolute times do not (threads=1 avoids the stalls)"
    )
