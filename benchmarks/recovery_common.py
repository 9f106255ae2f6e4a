"""What every stage of the recovery benchmark shares: data, the two training recipes, training, held-out evaluation,
the cached fine-tunes and val-split selection, the iterative runs, and each stage's cached result.

Imported by ``recovery.py`` (the command line) and its stage modules; see ``recovery.py`` for the stages.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results"
DATA = {"n_train": 600, "n_val": 150, "imgsz": 128, "seed": 0}
HELDOUT = {"n_train": 1, "n_val": 300, "imgsz": 128, "seed": 1}  # its val split is our test split
IMGSZ = 128
# Base and fine-tune make an optimizer step every batch of 8 (nbs=batch: Ultralytics would otherwise accumulate
# gradients to 64 images per step), so a fine-tune of 10% of the base's epochs is also 10% of its optimizer steps.
COMMON = {"imgsz": IMGSZ, "batch": 8, "nbs": 8, "workers": 2, "device": "cpu", "seed": 0, "deterministic": True}
BASE_RECIPE = {**COMMON, "optimizer": "auto", "close_mosaic": 5, "plots": False}
# Fine-tune: AdamW at about the base's learning rate (auto picks AdamW lr 0.00143 for nc=3), no warm-up, mosaic off
# throughout (close_mosaic >= epochs). batch 8 / nbs 8 beat batch 16-32 with nbs 64 on the val split of an earlier,
# shorter-trained base (see NOTES).
FT_RECIPE = {**COMMON, "optimizer": "AdamW", "lr0": 0.001, "lrf": 0.1, "warmup_epochs": 0, "close_mosaic": 10,
             "plots": False}  # fmt: skip
STAGES = ("base", "finetune", "distill", "taylor", "recipes", "iterative", "ratio_steps", "control", "seeds", "longer",
          "sensitivity", "reconstruct", "iterative_reconstruct", "short", "stem", "report")  # fmt: skip
CALIBRATED = ("finetune", "distill")  # stages whose prune follows --calibrate (cached as <stage>_bncal when on)
CACHED = ("base", "finetune", "finetune_bncal", "distill", "distill_bncal", "taylor", "recipes", "iterative", "seeds",
          "longer", "ratio_steps", "control", "sensitivity", "reconstruct", "iterative_reconstruct",
          "short", "stem")  # fmt: skip


def dataset() -> Path:
    """Write (or reuse) the train/val shapes set and a held-out test split; return the benchmark data yaml."""
    from yolo_prune.data.synthetic import make_synthetic_dataset

    train_yaml = make_synthetic_dataset(CACHE / "shapes", **DATA)
    heldout_yaml = make_synthetic_dataset(CACHE / "shapes-heldout", **HELDOUT)
    data = yaml.safe_load(train_yaml.read_text())
    data["test"] = str(heldout_yaml.parent / "images" / "val")
    out = CACHE / "recovery.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def evaluate(weights: Path, data: Path, split: str = "test") -> dict[str, float]:
    """Held-out (or ``split``) mAP50-95 / mAP50, GFLOPs at ``IMGSZ`` and parameters of a checkpoint (stock val)."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    model = YOLO(str(weights))
    metrics = model.val(data=str(data), split=split, imgsz=IMGSZ, batch=32, workers=2, device="cpu",
                        plots=False, verbose=False, project=str(CACHE / "val"), name="val", exist_ok=True)  # fmt: skip
    net = model.model
    return {
        "map50_95": round(float(metrics.box.map), 4),
        "map50": round(float(metrics.box.map50), 4),
        "gflops": round(get_flops(net, IMGSZ), 4),
        "gflops_640": round(get_flops(net, 640), 3),
        "params": sum(p.numel() for p in net.parameters()),
    }


def train(model: str, data: Path, run_dir: Path, name: str, epochs: int, recipe: dict, **extra: Any) -> Path:
    """Stock Ultralytics training; return its ``best.pt``."""
    from ultralytics import YOLO

    YOLO(model).train(data=str(data), epochs=epochs, project=str(run_dir), name=name, exist_ok=True, **recipe,
                      **extra)  # fmt: skip
    return run_dir / name / "weights" / "best.pt"


def pruned_checkpoint(base: Path, out: Path, data: Path, calibrate: bool, importance: str = "l2") -> Path:
    """``prune_yolo(base, ratio=0.3, ...)`` saved once and shared by the stages that fine-tune it.

    With ``calibrate`` the prune gets ``data=``, so BatchNorm statistics are re-estimated on 64 training images;
    ``taylor`` needs ``data=`` anyway (the same 64 images score the channels).
    """
    from yolo_prune import prune_yolo

    tag = ("" if importance == "l2" else f"-{importance}") + ("-bncal" if calibrate else "")
    path = out / f"pruned-r0.3{tag}.pt"
    if not path.exists():
        prune_yolo(str(base), ratio=0.3, importance=importance, imgsz=IMGSZ, data=str(data), calibrate_bn=calibrate,
                   save=path)  # fmt: skip
    return path


def pruned_scores(pruned: Path, data: Path) -> dict:
    """Held-out scores of the pruned checkpoint before fine-tuning, plus its val-split mAP50-95."""
    return {**evaluate(pruned, data), "val_map50_95": evaluate(pruned, data, split="val")["map50_95"]}


def select_on_val(candidates: dict[str, tuple[Path, dict]], data: Path, runs_dir: Path, epochs: int,
                  prefix: str = "") -> tuple[dict[str, dict], str]:  # fmt: skip
    """Fine-tune each ``{name: (weights, recipe)}`` once (cached as ``<prefix><name>``); return the runs and the name
    with the best val mAP50-95 (the held-out split plays no part in the choice)."""
    tried = {name: cached_finetune(weights, data, runs_dir, prefix + name, epochs, recipe)
             for name, (weights, recipe) in candidates.items()}  # fmt: skip
    return tried, max(tried, key=lambda k: tried[k]["val_map50_95"])


def cached_finetune(weights: Path, data: Path, runs_dir: Path, name: str, epochs: int, recipe: dict) -> dict:
    """Fine-tune ``weights`` once (cached as ``<runs_dir>/<name>.json``); return best.pt and its val mAP50-95."""
    cache = runs_dir / f"{name}.json"
    if not cache.exists():
        runs_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        best = train(str(weights), data, runs_dir, name, epochs, recipe)
        wall_s = round(time.perf_counter() - start, 1)
        score = evaluate(best, data, split="val")["map50_95"]
        cache.write_text(json.dumps({"weights": str(best), "recipe": recipe, "wall_s": wall_s, "val_map50_95": score},
                                    indent=2))  # fmt: skip
    result = json.loads(cache.read_text())
    print(f"[recovery] {name}: val mAP50-95 {result['val_map50_95']}", flush=True)
    return result


def run_iterative(out: Path, data: Path, name: str, max_map_drop: float, recipe: dict = FT_RECIPE,
                  **schedule: Any) -> dict:  # fmt: skip
    from yolo_prune.recovery.iterative import iterative_prune

    base = Path(load_stage(out, "base")["weights"])
    recipe = {k: v for k, v in recipe.items() if k != "imgsz"}
    result = iterative_prune(str(base), data, **schedule, max_map_drop=max_map_drop, project=str(out), name=name,
                             exist_ok=True, imgsz=IMGSZ, **recipe)  # fmt: skip
    final = result.steps[-1]
    return {
        "weights": str(result.best), "final_weights": str(final.weights), "run_dir": str(result.run_dir),
        "recipe": recipe, "epochs_per_step": schedule["epochs"], "steps_planned": schedule["steps"],
        "best_step": result.best_step,
        "final_step": final.step, "stopped_early": result.stopped_early, "steps": [s.as_row() for s in result.steps],
        "final": evaluate(final.weights, data), **evaluate(result.best, data),
    }  # fmt: skip


def load_stage(out: Path, stage: str) -> dict:
    path = out / f"{stage}.json"
    if not path.exists():
        sys.exit(f"stage '{stage}' has no cached result at {path}; run it first")
    return json.loads(path.read_text())


def stage_key(stage: str, args: argparse.Namespace) -> str:
    """Cache name of a stage: the prunes that follow ``--calibrate`` keep both variants (``<stage>_bncal``)."""
    return f"{stage}_bncal" if stage in CALIBRATED and args.calibrate else stage
