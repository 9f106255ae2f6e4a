"""What a benchmark run produced: models, one row per model x runtime x batch, skipped runtimes, written files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .models import BenchModel
from .timing import LatencyStats

SCHEMA = "yolo-prune-bench/1"


@dataclass
class Row:
    """One model timed on one runtime at one batch size.

    Attributes:
        model: The model's label.
        format: The runtime key (``torch``, ``onnx``...).
        runtime: Runtime name and version.
        batch: Images per inference.
        latency: Interleaved timing summary.
        file_mb: Size of the file (or export folder) the runtime loaded, in MB.
        params: Parameter count of the model.
        gflops: GFLOPs of the model at the benchmark's image size (per image).
        speed_up: Base median latency / this median latency (same runtime and batch); 1.0 for the base.
        gflops_ratio: Base GFLOPs / this model's GFLOPs.
        map50_95: mAP50-95 measured through this runtime, when ``data`` was given (batch-1 CPU rows).
    """

    model: str
    format: str
    runtime: str
    batch: int
    latency: LatencyStats
    file_mb: float
    params: int
    gflops: float
    speed_up: float | None = None
    gflops_ratio: float | None = None
    map50_95: float | None = None

    @property
    def images_per_s(self) -> float:
        """Throughput: images per second at this batch."""
        return self.batch * 1e3 / self.latency.median_ms

    @property
    def efficiency(self) -> float | None:
        """How much of the GFLOPs promise the runtime delivers: speed-up / GFLOPs ratio (1.0 = all of it)."""
        if self.speed_up is None or not self.gflops_ratio:
            return None
        return self.speed_up / self.gflops_ratio

    def to_dict(self) -> dict[str, Any]:
        """Flat plain-JSON form."""
        out = {k: v for k, v in asdict(self).items() if k != "latency"}
        out.update(asdict(self.latency), images_per_s=self.images_per_s, efficiency=self.efficiency)
        return out


@dataclass(frozen=True)
class Skip:
    """A requested runtime that was not measured, and why."""

    format: str
    reason: str


@dataclass
class BenchResult:
    """Everything one ``benchmark`` call measured and wrote.

    Attributes:
        run_dir: The run directory (``runs/prune/bench``, ``bench-2``...).
        config: The settings used (formats, imgsz, threads, runs...).
        machine: CPU, cores, library versions and load average.
        models: The compared models, base first.
        rows: One row per model, runtime and batch.
        skipped: Runtimes not measured, with the reason.
        runtimes: Runtime key -> runtime name and version, for the measured runtimes.
        files: ``report``, ``json`` and ``plot`` paths once written.
    """

    run_dir: Path
    config: dict[str, Any]
    machine: dict[str, Any]
    models: list[BenchModel]
    rows: list[Row] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    runtimes: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def base(self) -> BenchModel:
        """The reference model."""
        return self.models[0]

    def row(self, model: str, fmt: str, batch: int = 1) -> Row | None:
        """The row of ``model`` on ``fmt`` at ``batch``, or None if it was not measured."""
        return next((r for r in self.rows if (r.model, r.format, r.batch) == (model, fmt, batch)), None)

    def efficiency(self, fmt: str, batch: int = 1) -> float | None:
        """Mean efficiency of the pruned models on ``fmt`` at ``batch`` (None if nothing was measured)."""
        values = [r.efficiency for r in self.rows if (r.format, r.batch) == (fmt, batch) and r.model != self.base.label]
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document written as ``results.json`` (schema ``yolo-prune-bench/1``)."""
        return {
            "schema": SCHEMA,
            "run_dir": str(self.run_dir),
            "config": self.config,
            "machine": self.machine,
            "runtimes": self.runtimes,
            "models": [{**asdict(m), "path": str(m.path)} for m in self.models],
            "results": [r.to_dict() for r in self.rows],
            "efficiency": {
                f"{fmt}@{batch}": self.efficiency(fmt, batch)
                for fmt, batch in dict.fromkeys((r.format, r.batch) for r in self.rows)
            },
            "skipped": [asdict(s) for s in self.skipped],
            "files": {k: str(v) for k, v in self.files.items()},
        }


def fill_ratios(rows: list[Row], base_label: str, base_gflops: float) -> None:
    """Set every row's speed-up against the base row of the same runtime and batch, and its GFLOPs ratio."""
    for row in rows:
        base = next((r for r in rows if (r.model, r.format, r.batch) == (base_label, row.format, row.batch)), None)
        row.gflops_ratio = base_gflops / row.gflops if row.gflops else None
        row.speed_up = base.latency.median_ms / row.latency.median_ms if base else None
