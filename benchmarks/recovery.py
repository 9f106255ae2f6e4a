"""Recovery benchmark: train a base detector on synthetic shapes, prune it, and measure how much fine-tuning recovers.

Pretrained weights cannot be downloaded here, so the base is trained from its yaml on the offline shapes dataset
(``yolo_prune.data.make_synthetic_dataset``). Every number is mAP50-95 on a *held-out* split (drawn with another
seed, never seen by training or checkpoint selection), through stock ``YOLO(...).val(split="test")``.

Stages (each result is cached under ``benchmarks/cache/recovery/<model>/``; delete it to recompute):

* ``base``      train ``<model>.yaml`` (nc=3) for ``--base-epochs`` epochs;
* ``finetune``  ``prune_yolo(base, ratio=0.3)`` then stock fine-tune for ``--ft-epochs`` (<= 10% of the base's);
* ``distill``   the same pruned model and epochs, with ``distill_model=<base>`` (Ultralytics' DistillationModel);
* ``iterative`` ``iterative_prune(base, speed_up=2.0, steps=--iter-steps)`` with ``--iter-epochs`` per step;
* ``report``    write ``benchmarks/results/recovery.md`` and ``.json`` from the cached stage results.

Run from the repository root (the CPU is shared, so run it in the background and poll the log):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n \\
        --stages base,finetune,distill,iterative,report
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / "cache"
RESULTS = ROOT / "benchmarks" / "results"
DATA = {"n_train": 600, "n_val": 150, "imgsz": 128, "seed": 0}
HELDOUT = {"n_train": 1, "n_val": 300, "imgsz": 128, "seed": 1}  # its val split is our test split
IMGSZ = 128
COMMON = {"imgsz": IMGSZ, "batch": 32, "workers": 2, "device": "cpu", "seed": 0, "deterministic": True}
BASE_RECIPE = {**COMMON, "optimizer": "auto", "close_mosaic": 5, "plots": False}
FT_RECIPE = {**COMMON, "optimizer": "AdamW", "lr0": 0.001, "lrf": 0.1, "warmup_epochs": 0, "close_mosaic": 10,
             "plots": False}  # fmt: skip
STAGES = ("base", "finetune", "distill", "iterative", "control", "report")


def dataset() -> Path:
    """Write (or reuse) the train/val shapes set and a held-out test split; return the benchmark data yaml."""
    from yolo_prune.data import make_synthetic_dataset

    train_yaml = make_synthetic_dataset(CACHE / "shapes", **DATA)
    heldout_yaml = make_synthetic_dataset(CACHE / "shapes-heldout", **HELDOUT)
    data = yaml.safe_load(train_yaml.read_text())
    data["test"] = str(heldout_yaml.parent / "images" / "val")
    out = CACHE / "recovery.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def evaluate(weights: Path, data: Path) -> dict[str, float]:
    """Held-out mAP50-95 / mAP50, GFLOPs at ``IMGSZ`` and parameters of a checkpoint (stock val)."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    model = YOLO(str(weights))
    metrics = model.val(data=str(data), split="test", imgsz=IMGSZ, batch=32, workers=2, device="cpu",
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


def stage_base(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    best = train(f"{model}.yaml", data, out, "base", args.base_epochs, BASE_RECIPE)
    return {"weights": str(best), "epochs": args.base_epochs, "recipe": BASE_RECIPE, **evaluate(best, data)}


def pruned_checkpoint(base: Path, out: Path) -> Path:
    """``prune_yolo(base, ratio=0.3)`` saved once and shared by the fine-tune and distillation stages."""
    from yolo_prune import prune_yolo

    path = out / "pruned-r0.3.pt"
    if not path.exists():
        prune_yolo(str(base), ratio=0.3, imgsz=IMGSZ, save=path)
    return path


def stage_finetune(model: str, data: Path, out: Path, args: argparse.Namespace, distill: bool = False) -> dict:
    base = Path(load_stage(out, "base")["weights"])
    pruned = pruned_checkpoint(base, out)
    extra = {"distill_model": str(base)} if distill else {}
    name = "distill" if distill else "finetune"
    best = train(str(pruned), data, out, name, args.ft_epochs, FT_RECIPE, **extra)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": {**FT_RECIPE, **extra},
            "pruned": evaluate(pruned, data), **evaluate(best, data)}  # fmt: skip


def stage_control(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """The unpruned base fine-tuned with the same recipe and epochs: what extra training alone gives."""
    base = Path(load_stage(out, "base")["weights"])
    best = train(str(base), data, out, "control", args.ft_epochs, FT_RECIPE)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": FT_RECIPE, **evaluate(best, data)}


def stage_distill(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    return stage_finetune(model, data, out, args, distill=True)


def stage_iterative(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    from yolo_prune.iterative import iterative_prune

    base = Path(load_stage(out, "base")["weights"])
    result = iterative_prune(str(base), data, steps=args.iter_steps, speed_up=2.0, epochs=args.iter_epochs,
                             max_map_drop=args.max_map_drop, project=str(out), name="iterative", exist_ok=True,
                             **{k: v for k, v in FT_RECIPE.items() if k != "imgsz"}, imgsz=IMGSZ)  # fmt: skip
    final = result.steps[-1]
    return {
        "weights": str(result.best), "final_weights": str(final.weights), "run_dir": str(result.run_dir),
        "epochs_per_step": args.iter_epochs, "best_step": result.best_step, "final_step": final.step,
        "stopped_early": result.stopped_early, "steps": [s.as_row() for s in result.steps],
        "final": evaluate(final.weights, data), **evaluate(result.best, data),
    }  # fmt: skip


def load_stage(out: Path, stage: str) -> dict:
    path = out / f"{stage}.json"
    if not path.exists():
        sys.exit(f"stage '{stage}' has no cached result at {path}; run it first")
    return json.loads(path.read_text())


def run_stage(stage: str, model: str, data: Path, args: argparse.Namespace) -> None:
    out = CACHE / "recovery" / model
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stage}.json"
    if path.exists() and not args.force:
        print(f"[recovery] {model}/{stage}: cached ({path})", flush=True)
        return
    start = time.perf_counter()
    result = globals()[f"stage_{stage}"](model, data, out, args)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"[recovery] {model}/{stage}: {json.dumps(result, default=str)}", flush=True)


# ---------------------------------------------------------------------------------------------------------- report
def machine() -> str:
    import ultralytics
    from importlib.metadata import version

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), torch "
            f"{torch.__version__}, ultralytics {ultralytics.__version__}, torch-pruning {version('torch-pruning')}, "
            f"Python {platform.python_version()}")  # fmt: skip


def report(models: list[str], args: argparse.Namespace) -> None:
    """Write recovery.md / recovery.json from whatever stages are cached."""
    payload = {"machine": machine(), "data": DATA, "heldout": HELDOUT, "models": {}}
    for model in models:
        out = CACHE / "recovery" / model
        payload["models"][model] = {s: json.loads((out / f"{s}.json").read_text()) for s in STAGES
                                    if (out / f"{s}.json").exists()}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recovery.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    (RESULTS / "recovery.md").write_text(markdown(payload, args))
    print((RESULTS / "recovery.md").read_text())


def markdown(payload: dict, args: argparse.Namespace) -> str:
    lines = [
        "# Recovery benchmark: fine-tune, distillation and iterative pruning on synthetic shapes",
        "",
        f"- Machine: {payload['machine']}. CPU only, shared with other jobs (wall times are indicative).",
        f"- Data: `make_synthetic_dataset(n_train={DATA['n_train']}, n_val={DATA['n_val']}, imgsz={DATA['imgsz']}, "
        f"seed={DATA['seed']})` for training and checkpoint selection; every mAP below is on a held-out split of "
        f"{HELDOUT['n_val']} images drawn with seed {HELDOUT['seed']} (never seen in training or selection), via "
        "stock `YOLO(w).val(split='test')`.",
        f"- Base recipe: `YOLO('<model>.yaml').train(data, epochs=<base>, {fmt(BASE_RECIPE)})` (nc=3 from the data).",
        f"- Fine-tune recipe (plain, distill and every iterative step): `YOLO(pruned).train(data, epochs=<ft>, "
        f"{fmt(FT_RECIPE)})`; distillation adds `distill_model=<base best.pt>` (Ultralytics' DistillationModel, "
        "default `dis=6.0`).",
        "- Pruning: `prune_yolo(base, ratio=0.3, imgsz=128)` (l2, uniform); iterative: "
        "`iterative_prune(base, data, speed_up=2.0, steps=..., epochs=..., max_map_drop=...)`, geometric GFLOPs "
        "schedule, each step pruned from the previous step's best checkpoint.",
        "- Command: `YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n "
        f"--base-epochs {args.base_epochs} --ft-epochs {args.ft_epochs} --iter-steps {args.iter_steps} "
        f"--iter-epochs {args.iter_epochs} --max-map-drop {args.max_map_drop}` (stages are cached in "
        "`benchmarks/cache/recovery/<model>/`).",
        "",
        "| Model | Variant | Epochs | GFLOPs@128 | GFLOPs@640 | Params (M) | mAP50-95 | × base | mAP50 | Wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, stages in payload["models"].items():
        lines += table_rows(model, stages)
    lines += ["", "## Targets", ""]
    for model, stages in payload["models"].items():
        lines += target_lines(model, stages)
    for model, stages in payload["models"].items():
        if "iterative" in stages:
            header = "| step | GFLOPs@128 | params (M) | val mAP50-95 | drop | admissible |"
            lines += ["", f"## Iterative steps ({model})", "", header, "|---|---|---|---|---|---|"]
            for s in stages["iterative"]["steps"]:
                lines.append(f"| {s['step']} | {s['gflops']:.4f} | {s['params'] / 1e6:.2f} | {s['map50_95']:.4f} | "
                             f"{s['map_drop']:+.4f} | {s['admissible']} |")  # fmt: skip
            lines.append("")
            lines.append("(val = the training val split, used by the stop rule; the main table is held-out)")
    return "\n".join(lines) + "\n"


def fmt(recipe: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in recipe.items())


def table_rows(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base = stages["base"]["map50_95"]
    variants = [("base", "base (unpruned)", stages.get("base"))]
    if "finetune" in stages:
        pruned = {**stages["finetune"]["pruned"], "epochs": 0, "wall_s": "—"}
        variants.append(("pruned", "ratio 0.3, no fine-tune", pruned))
    labels = {"control": "control: unpruned + same fine-tune", "finetune": "ratio 0.3 + plain fine-tune",
              "distill": "ratio 0.3 + distillation", "iterative": "iterative speed_up=2.0 (kept step)"}  # fmt: skip
    variants += [(key, label, stages.get(key)) for key, label in labels.items()]
    if "iterative" in stages and stages["iterative"]["final_step"] != stages["iterative"]["best_step"]:
        final = {**stages["iterative"]["final"], "epochs": "—", "wall_s": "—"}
        variants.append(("final", "iterative, last step run", final))
    rows = []
    for _, label, s in variants:
        if s is None:
            continue
        epochs = s.get("epochs", f"{s.get('epochs_per_step')}/step")
        rows.append(f"| {model} | {label} | {epochs} | {s['gflops']:.4f} | {s['gflops_640']:.2f} | "
                    f"{s['params'] / 1e6:.2f} | {s['map50_95']:.4f} | {s['map50_95'] / base:.3f} | {s['map50']:.4f} | "
                    f"{s['wall_s']} |")  # fmt: skip
    return rows


def target_lines(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base, lines = stages["base"], []
    checks = (("finetune", 0.98, "ratio 0.3 + fine-tune (<= 10% of base epochs)"),
              ("iterative", 0.95, "iterative to speed_up=2.0"))  # fmt: skip
    for key, need, label in checks:
        if key in stages:
            got = stages[key]["map50_95"] / base["map50_95"]
            extra = ""
            if key == "finetune":
                extra = f", {stages[key]['epochs']} vs {base['epochs']} base epochs"
            if key == "iterative":
                extra = f", GFLOPs x{base['gflops'] / stages[key]['gflops']:.2f} fewer"
            lines.append(f"- {model} {label}: {got:.3f}x base (need >= {need}){extra}: "
                         f"**{'met' if got >= need else 'NOT met'}**")  # fmt: skip
    if "finetune" in stages and "distill" in stages:
        d, f = stages["distill"]["map50_95"], stages["finetune"]["map50_95"]
        lines.append(f"- {model} distillation vs plain fine-tune, same epochs: {d:.4f} vs {f:.4f} "
                     f"({'distillation recovers more' if d > f else 'plain fine-tune recovers as much or more'})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--base-epochs", type=int, default=30)
    parser.add_argument("--ft-epochs", type=int, default=3)
    parser.add_argument("--iter-steps", type=int, default=2)
    parser.add_argument("--iter-epochs", type=int, default=3)
    parser.add_argument("--max-map-drop", type=float, default=0.05)
    parser.add_argument("--report-models", default="yolov8n,yolo11n")
    parser.add_argument("--force", action="store_true", help="recompute stages even if cached")
    args = parser.parse_args()
    data = dataset()
    for stage in args.stages.split(","):
        if stage == "report":
            report(args.report_models.split(","), args)
        else:
            run_stage(stage, args.model, data, args)


if __name__ == "__main__":
    main()
