"""``yolo-prune demo``: the whole job offline, in minutes, on a CPU.

Generate a COCO-format shapes dataset and convert it for Ultralytics, train a small YOLOv8n base (cached for the next
run), prune it, fine-tune the pruned checkpoint with the stock trainer, export ONNX, benchmark base vs pruned, and write
``report.md`` with a before/after table and plots.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from ultralytics.utils import LOGGER, colorstr  # noqa: E402
from ultralytics.utils.files import increment_path  # noqa: E402

from .api import prune_yolo  # noqa: E402
from .bench import benchmark  # noqa: E402
from .bench.report import text_table  # noqa: E402
from .data.coco import coco_to_yolo  # noqa: E402
from .data.synthetic import make_synthetic_dataset  # noqa: E402
from .recovery.finetune import Scores, finetune, validate  # noqa: E402

PREFIX = colorstr("demo: ")
TRAIN_DEFAULTS = {"batch": 16, "workers": 0, "device": "cpu", "plots": False, "amp": False, "verbose": False}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run; ``quick`` is for tests (seconds), the default fits 10 minutes on 2 CPU cores."""

    n_train: int = 384
    n_val: int = 96
    imgsz: int = 128
    base_epochs: int = 30
    finetune_epochs: int = 6
    ratio: float = 0.3
    bench_runs: int = 60


QUICK = DemoConfig(n_train=16, n_val=8, imgsz=64, base_epochs=1, finetune_epochs=1, bench_runs=3)


def run_demo(
    project: str | os.PathLike = "runs/prune", name: str = "demo", quick: bool = False, exist_ok: bool = False
) -> Path:
    """Run the offline demo and return the path of its ``report.md``.

    Args:
        project: Parent folder of the run (Ultralytics' ``runs/`` layout); the base model is cached beside it.
        name: Run name; incremented (``demo-2``...) unless ``exist_ok``.
        quick: Tiny sizes, for a smoke test.
        exist_ok: Reuse ``project/name``.

    Returns:
        The written report.

    Examples:
        >>> report = run_demo()  # about 5-10 minutes on a 2-core CPU
        >>> print(report.read_text())
    """
    config = QUICK if quick else DemoConfig()
    run_dir = increment_path(Path(project) / name, exist_ok=exist_ok, mkdir=True).resolve()
    cache = Path(project).resolve() / "demo-cache" / ("quick" if quick else "full")
    steps = 6
    _step(1, steps, "dataset: synthetic shapes written as COCO JSON, converted to Ultralytics labels")
    data = _dataset(cache, config)
    _step(2, steps, f"base model: YOLOv8n from yaml, {config.base_epochs} epochs (cached in {cache})")
    base = _base_model(cache, data, config)
    _step(3, steps, f"prune: ratio={config.ratio}")
    pruned = run_dir / "weights" / "pruned.pt"
    prune_yolo(base, ratio=config.ratio, imgsz=config.imgsz, save=pruned, overwrite=True)
    _step(4, steps, f"fine-tune: stock Ultralytics trainer, {config.finetune_epochs} epochs")
    finetuned = finetune(pruned, str(data), epochs=config.finetune_epochs, imgsz=config.imgsz, run_dir=run_dir,
                         name="finetune", **TRAIN_DEFAULTS)  # fmt: skip
    finetuned = _copy(finetuned, run_dir / "weights" / "pruned-finetuned.pt")
    _step(5, steps, "validate and benchmark base vs pruned (PyTorch and ONNX Runtime)")
    scores = {
        label: validate(pt, str(data), imgsz=config.imgsz, run_dir=run_dir, batch=16, device="cpu", workers=0)
        for label, pt in _models(base, pruned, finetuned).items()
    }
    bench = benchmark(base, finetuned, formats="torch,onnx", imgsz=config.imgsz, runs=config.bench_runs,
                      warmup=max(2, config.bench_runs // 10), batch=4, project=run_dir, name="bench", exist_ok=True)  # fmt: skip
    _step(6, steps, "report")
    return _write_report(run_dir, config, scores, bench)


def _step(k: int, n: int, text: str) -> None:
    LOGGER.info(f"{PREFIX}[{k}/{n}] {text}")


def _dataset(cache: Path, config: DemoConfig) -> Path:
    """Draw the shapes set (cached), then convert its COCO JSON into an Ultralytics dataset, as a user's data would be."""
    source = make_synthetic_dataset(cache / "shapes-coco", n_train=config.n_train, n_val=config.n_val,
                                    imgsz=config.imgsz, seed=0).parent  # fmt: skip
    converted = cache / "shapes"
    if (converted / "data.yaml").is_file():
        return converted / "data.yaml"
    return coco_to_yolo(source, converted, overwrite=True)


def _base_model(cache: Path, data: Path, config: DemoConfig) -> Path:
    """Train (once) the base detector every demo run starts from."""
    cached = cache / "base.pt"
    if cached.is_file():
        LOGGER.info(f"{PREFIX}using cached base model {cached}")
        return cached
    best = finetune("yolov8n.yaml", str(data), epochs=config.base_epochs, imgsz=config.imgsz, run_dir=cache,
                    name="base-train", **TRAIN_DEFAULTS)  # fmt: skip
    return _copy(best, cached)


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())
    return dst


def _models(base: Path, pruned: Path, finetuned: Path) -> dict[str, Path]:
    return {"base": base, "pruned (no fine-tune)": pruned, "pruned + fine-tune": finetuned}


def _write_report(run_dir: Path, config: DemoConfig, scores: dict[str, Scores], bench: Any) -> Path:
    """Write ``report.md``, ``demo.json`` and ``accuracy.png`` into the run folder."""
    base = scores["base"]
    lines = [
        "# yolo-prune demo",
        "",
        f"Offline run: synthetic shapes ({config.n_train} train / {config.n_val} val images at {config.imgsz} px), "
        f"YOLOv8n base trained {config.base_epochs} epochs, pruned with ratio {config.ratio}, fine-tuned "
        f"{config.finetune_epochs} epochs with the stock trainer.",
        "",
        f"| model | params | GFLOPs @{config.imgsz} px | mAP50-95 | mAP50-95 vs base |",
        "|---|---|---|---|---|",
    ]
    for label, s in scores.items():
        ratio = s.map50_95 / base.map50_95 if base.map50_95 else float("nan")
        lines.append(f"| {label} | {s.params:,} | {s.gflops:.3f} | {s.map50_95:.3f} | {ratio:.3f}x |")
    lines += ["", "## Latency (base vs pruned + fine-tune)", "", "```", text_table(bench), "```", "",
              f"Full benchmark report: {bench.files['report'].relative_to(run_dir)}", "", "![accuracy](accuracy.png)"]  # fmt: skip
    if bench.files.get("plot"):
        lines += ["", f"![benchmark]({bench.files['plot'].relative_to(run_dir)})"]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    summary = {"config": asdict(config), "scores": {k: asdict(v) for k, v in scores.items()}}
    (run_dir / "demo.json").write_text(json.dumps(summary, indent=2))
    _plot_accuracy(run_dir / "accuracy.png", scores, config.imgsz)
    LOGGER.info(f"{PREFIX}report written to {report}")
    return report


def _plot_accuracy(path: Path, scores: dict[str, Scores], imgsz: int) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, s in scores.items():
        ax.scatter(s.gflops, s.map50_95, s=60, label=label)
    ax.set_xlabel(f"GFLOPs at {imgsz} px")
    ax.set_ylabel("mAP50-95")
    ax.set_title("Accuracy vs compute")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def demo_cli(args: dict[str, Any]) -> Path:
    """``yolo-prune demo [quick=False] [project=runs/prune] [name=demo] [exist_ok=False]``.

    Examples:
        >>> demo_cli({"quick": True})  # doctest: +SKIP
    """
    return run_demo(**args)
