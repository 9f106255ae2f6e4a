"""What every benchmarked runtime provides: availability, an exported artifact per model, and a timed runner."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Runner = Callable[[], object]  # runs one inference on a fixed, preloaded input
INPUT_SEED = 0


@dataclass(frozen=True)
class LoadOptions:
    """How a runtime loads one model: CPU threads, input batch and square image size."""

    threads: int
    batch: int
    imgsz: int


class Runtime:
    """One inference runtime (a ``formats=`` entry).

    Subclasses set the class attributes and implement :meth:`export` and :meth:`load`.

    Attributes:
        key: The name users pass in ``formats``.
        title: Human-readable runtime name for reports.
        requires: ``(import name, pip name)`` of every package the export and the runtime need.
        gpu: True if the runtime needs CUDA.
    """

    key: str = ""
    title: str = ""
    requires: tuple[tuple[str, str], ...] = ()
    gpu: bool = False

    def unavailable(self) -> str | None:
        """Why this runtime cannot run here (a one-line reason with the fix), or None if it can."""
        missing = [pip for module, pip in self.requires if importlib.util.find_spec(module) is None]
        if missing:
            return f"{', '.join(missing)} not installed (pip install {' '.join(missing)})"
        return self._unavailable_extra()

    def _unavailable_extra(self) -> str | None:
        """Runtime-specific reasons beyond missing packages (e.g. no CUDA device)."""
        return None

    def batches(self, batch: int, gpu_batch: int) -> tuple[int, ...]:
        """Batch sizes timed with this runtime (batch 1 is always the latency row)."""
        return (1,)

    def version(self) -> str:
        """Runtime name and version, for the report."""
        return self.title

    def export(self, pt: Path, imgsz: int, batch: int) -> Path:
        """Return the model file or folder this runtime loads, exporting ``pt`` if needed."""
        raise NotImplementedError

    def load(self, artifact: Path, options: LoadOptions) -> Runner:
        """Load ``artifact`` and return a runner that performs one inference on a fixed input."""
        raise NotImplementedError


def sample_input(options: LoadOptions, dtype: type = np.float32) -> np.ndarray:
    """A fixed pseudo-random image batch in [0, 1), NCHW, the same for every model and runtime."""
    rng = np.random.default_rng(INPUT_SEED)
    return rng.random((options.batch, 3, options.imgsz, options.imgsz), dtype=np.float32).astype(dtype)


def artifact_bytes(path: Path) -> int:
    """Size of an exported model: the file, or every file inside an export folder."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and f.name != "metadata.yaml")
    return path.stat().st_size


def package_version(module: str) -> str:
    """``__version__`` of an importable module, or '?'."""
    return str(getattr(importlib.import_module(module), "__version__", "?"))
