"""What ``export`` returns: one ``ExportResult`` per artifact, and the verification table logged for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ultralytics.utils import LOGGER, colorstr

from ..errors import PruneError

Precision = Literal["fp32", "fp16", "int8"]
Status = Literal["pass", "fail", "unverified", "not built"]

PREFIX = colorstr("yolo-prune export: ")


@dataclass(frozen=True)
class ExportResult:
    """One exported artifact (or one that could not be built here) and how its verification went.

    Attributes:
        target: The export target asked for (``rpi``, ``coral``, ``jetson`` or ``onnx``).
        format: Ultralytics format of the artifact (``ncnn``, ``litert``, ``edgetpu``, ``onnx``, ``engine``...).
        precision: ``fp32``, ``fp16`` or ``int8``.
        path: The file or folder written, None when it was not built.
        status: ``pass``/``fail`` (verified against the PyTorch model), ``unverified`` (written, but it cannot run
            here or verification was off) or ``not built`` (a toolchain is missing: ``note`` says how to build it).
        size_mb: Size on disk of the file or folder.
        agreement: Share of detections that agree with the PyTorch model (F1 of matched detections: same class,
            IoU > 0.7), or of raw output anchors that agree when the PyTorch model detects nothing (see ``metric``).
        threshold: Least agreement that passes: 0.95 for fp32/fp16, 0.85 for int8.
        metric: ``detections`` or ``raw outputs``: what ``agreement`` compares.
        latency_ms: Median inference time per image on this machine's CPU (batch 1).
        note: What to do next, or why it was not verified or built.
    """

    target: str
    format: str
    precision: Precision
    path: Path | None
    status: Status
    size_mb: float | None = None
    agreement: float | None = None
    threshold: float | None = None
    metric: str = ""
    latency_ms: float | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        """False only for an artifact whose verification failed."""
        return self.status != "fail"


class ExportVerificationError(PruneError):
    """An exported artifact disagrees with the PyTorch model; ``results`` holds every row of the table."""

    def __init__(self, message: str, results: list[ExportResult]):
        super().__init__(message)
        self.results = results


def disk_size_mb(path: Path) -> float:
    """Size of a file, or of all files under a folder, in MB."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def log_table(results: list[ExportResult], reference: tuple[Path, float | None] | None = None) -> None:
    """Log the verification table (one row per artifact, the PyTorch reference first) and the notes of built rows.

    Args:
        results: The artifacts, in export order.
        reference: The ``.pt`` file and its median latency in ms, shown as the baseline row.
    """
    header = f"{'format':<10} {'precision':<9} {'file':<44} {'size MB':>8} {'agreement':>17} {'latency ms':>11}  result"
    lines = ["", header]
    if reference is not None:
        pt, latency = reference
        lines.append(_row("pytorch", "fp32", pt, disk_size_mb(pt), "reference", latency, ""))
    for r in results:
        agreement = "-" if r.agreement is None else f"{r.agreement:.3f} {'dets' if r.metric == 'detections' else 'raw'}"
        if r.agreement is not None and r.threshold is not None:
            agreement += f" ≥{r.threshold:.2f}"
        lines.append(_row(r.format, r.precision, r.path, r.size_mb, agreement, r.latency_ms, r.status))
    lines += [f"  {r.format} {r.precision}: {r.note}" for r in results if r.note and r.status != "not built"]
    LOGGER.info("\n".join(lines))


def _row(fmt: str, precision: str, path: Path | None, size: float | None, agreement: str, latency, status) -> str:
    name = "-" if path is None else _short(path)
    size_text = "-" if size is None else f"{size:.2f}"
    latency_text = "-" if latency is None else f"{latency:.1f}"
    return f"{fmt:<10} {precision:<9} {name:<44} {size_text:>8} {agreement:>17} {latency_text:>11}  {status}"


def _short(path: Path, width: int = 44) -> str:
    """The path from its parent folder on, cut from the left to ``width`` characters."""
    text = str(Path(path.parent.name) / path.name)
    return text if len(text) <= width else "…" + text[-(width - 1) :]
