"""Recovery benchmark: train a base detector on synthetic shapes, prune it, and measure how much fine-tuning recovers.

Pretrained weights cannot be downloaded here, so the base is trained from its yaml on the offline shapes dataset
(``yolo_prune.data.make_synthetic_dataset``). Every number is mAP50-95 on a *held-out* split (drawn with another
seed, never seen by training or checkpoint selection), through stock ``YOLO(...).val(split="test")``.

Stages (each result is cached under ``benchmarks/cache/recovery/<model>/``; delete it to recompute):

* ``base``      train ``<model>.yaml`` (nc=3) for ``--base-epochs`` epochs;
* ``finetune``  ``prune_yolo(base, ratio=0.3, data=<data>)`` (``--calibrate``, the default: BatchNorm statistics
                re-estimated on 64 training images) then stock fine-tune for ``--ft-epochs`` (<= 10% of the base's);
                ``--no-calibrate`` runs the earlier path without ``data=`` (cached separately, as ``finetune.json``;
                the calibrated result is ``finetune_bncal.json``);
* ``distill``   the same pruned model and epochs, with ``distill_model=<base>`` (Ultralytics' DistillationModel);
* ``taylor``    ``prune_yolo(base, ratio=0.3, importance="taylor", data=<data>)`` then the same plain fine-tune;
* ``recipes``   fine-tune recipe variants (same epochs) on the calibrated ratio-0.3 model, *selected on the val split*;
                only the selected one is then scored on the held-out split;
* ``iterative`` ``iterative_prune(base, speed_up=2.0, steps=--iter-steps)`` with ``--iter-epochs`` per step;
* ``report``    write ``benchmarks/results/recovery.md`` and ``.json`` from the cached stage results.

Run from the repository root (the CPU is shared, so run it in the background and poll the log):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n \\
        --stages base,finetune,distill,taylor,recipes,iterative,report          # BN-recalibrated prunes (default)
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n --no-calibrate \\
        --stages finetune,distill                                              # the earlier, uncalibrated prunes
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
NOTES = [
    "- The base is trained from scratch (no pretrained weights offline) for 30 epochs (~20 min on the shared CPU); "
    "it had not converged (val mAP50-95 still rising in the last epochs). The control row shows that three more "
    "epochs with the fine-tune recipe move even the unpruned model (0.970x), so the ratios carry that noise.",
    "- One-shot ratio 0.3 (l2, uniform: GFLOPs x0.58) collapses this from-scratch model to mAP50-95 ~0.02 before "
    "fine-tuning; l1/bn/lamp gave 0.003-0.027 on the val split and global_pruning 0.0-0.004, so no magnitude "
    "criterion avoids it (earlier run; importance='taylor' then raised inside torch-pruning, now fixed).",
    "- BN recalibration (`data=`) lifts the pruned model before fine-tuning from 0.017 to 0.157 held-out (val "
    "0.026 -> 0.161); taylor + recalibration reaches 0.183 (val 0.172).",
    "- After the 3-epoch fine-tune the BN-recalibrated prune scores *lower* than the uncalibrated one (0.503 vs "
    "0.549 held-out, val 0.473 vs 0.524) although the fine-tuned weights are identical (same seed, identical "
    "training losses: BatchNorm runs on batch statistics while training, so the starting running statistics only "
    "reach evaluation). The difference is the running statistics: at Ultralytics' BN momentum 0.03, 0.97^57 = 18% "
    "of the starting statistics survive three epochs of 19 batches, and statistics taken on *un-augmented* images "
    "do not suit this model: re-estimating the trained, unpruned base on 64 (or 600) un-augmented training images "
    "drops its val mAP50-95 from 0.625 to 0.42 (to 0.52 even on the val images themselves), whereas re-estimating "
    "on augmented train-mode batches (mosaic off) keeps 0.626, gives the uncalibrated prune 0.177 (vs 0.161) and "
    "the uncalibrated fine-tuned model 0.547 (vs 0.524; 0.447 with un-augmented images). So "
    "`calibration_batches` (val-mode loader) is a weak choice for `recalibrate_batchnorm`; augmented training "
    "batches would be better (not changed here: outside this benchmark).",
    "- Earlier fine-tune recipes for the one-shot model, 3 epochs, val split (base 0.625, 0.98x = 0.613): the "
    "recipe above 0.524, AdamW lr0=0.002 batch 16 0.552, SGD lr0=0.01 batch 16 0.551, AdamW lr0=0.001 batch 8 "
    "0.548. Those changed the batch but not `nbs` (64): Ultralytics accumulates gradients to 64 images per "
    "optimizer step, so all of them made only ~28 optimizer steps in 3 epochs. With `nbs=batch` (recipes stage) "
    "batch 16 makes 4x and batch 8 8x as many steps: val 0.584 / 0.624 on the taylor prune, against 0.495 for the "
    "default recipe; re-estimating BN statistics afterwards (augmented batches) adds 0.02-0.05 more (0.641 for the "
    "selected `b8_nbs8+bn`). The held-out 0.667 (1.005x) of the selected variant was measured once, after selection.",
    "- Caveat for the 0.98x target: the base was not converged and no control was run with the selected recipe "
    "(the control row uses the default recipe), so part of the one-shot recovery may be extra training any model "
    "would get; the selected recipe's BN re-estimation is done by this benchmark (`bn_recalibrated`), not by "
    "yolo-prune. 'default' in the recipe table reuses the `taylor` stage's run (its wall time includes the prune).",
    "- Iterative pruning in steps of 3 epochs reaches GFLOPs x0.50 at 0.98x base with 6 fine-tune epochs in all; "
    "1-epoch steps are too short with this recipe (the 'ratio 0.3 in 1-epoch steps' row stopped at step 2).",
    "- Distillation (Ultralytics' DistillationModel, dis=6.0, fresh projectors) recovered less than plain "
    "fine-tuning in 3 epochs here (uncalibrated 0.510 vs 0.549; BN recalibrated 0.503 vs 0.503).",
    "- YOLO11n was not run: its base training (~15-20 min here) plus the stages did not fit the ~60 min compute "
    "budget of this run; `--model yolo11n` runs the same stages.",
]
STAGES = ("base", "finetune", "distill", "taylor", "recipes", "iterative", "ratio_steps", "control", "report")
CALIBRATED = ("finetune", "distill")  # stages whose prune follows --calibrate (cached as <stage>_bncal when on)
CACHED = ("base", "finetune", "finetune_bncal", "distill", "distill_bncal", "taylor", "recipes", "iterative",
          "ratio_steps", "control")  # fmt: skip
# Fine-tune recipe variants for the ``recipes`` stage: overrides of FT_RECIPE, same epochs. Ultralytics accumulates
# gradients up to nbs=64 images per optimizer step, so with batch 32 three epochs of 600 images are only ~28 steps
# whatever the batch; setting nbs=batch makes every batch a step (4x / 8x more updates at batch 16 / 8).
RECIPE_VARIANTS = {
    "default": {},
    "b16_nbs16": {"batch": 16, "nbs": 16},
    "b8_nbs8": {"batch": 8, "nbs": 8},
    "b16_nbs16_lr2e-3": {"batch": 16, "nbs": 16, "lr0": 0.002},
}


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


def stage_base(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    best = train(f"{model}.yaml", data, out, "base", args.base_epochs, BASE_RECIPE)
    return {"weights": str(best), "epochs": args.base_epochs, "recipe": BASE_RECIPE, **evaluate(best, data)}


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


def prune_call(importance: str, calibrate: bool) -> str:
    data = ", data=<data>, calibrate_bn=True" if calibrate else ""
    imp = "" if importance == "l2" else f", importance={importance!r}"
    return f"prune_yolo(base, ratio=0.3{imp}, imgsz={IMGSZ}{data})"


def pruned_scores(pruned: Path, data: Path) -> dict:
    """Held-out scores of the pruned checkpoint before fine-tuning, plus its val-split mAP50-95."""
    return {**evaluate(pruned, data), "val_map50_95": evaluate(pruned, data, split="val")["map50_95"]}


def stage_finetune(model: str, data: Path, out: Path, args: argparse.Namespace, distill: bool = False,
                   importance: str = "l2", name: str | None = None) -> dict:  # fmt: skip
    base = Path(load_stage(out, "base")["weights"])
    calibrate = args.calibrate or importance != "l2"
    pruned = pruned_checkpoint(base, out, data, calibrate, importance)
    extra = {"distill_model": str(base)} if distill else {}
    name = name or stage_key("distill" if distill else "finetune", args)
    best = train(str(pruned), data, out, name, args.ft_epochs, FT_RECIPE, **extra)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": {**FT_RECIPE, **extra},
            "prune": prune_call(importance, calibrate), "calibrated": calibrate, "pruned_weights": str(pruned),
            "pruned": pruned_scores(pruned, data), "val_map50_95": evaluate(best, data, split="val")["map50_95"],
            **evaluate(best, data)}  # fmt: skip


def stage_taylor(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3 with ``importance="taylor"`` (loss gradients on the data; BN recalibrated) + plain fine-tune."""
    return stage_finetune(model, data, out, args, importance="taylor", name="taylor")


def augmented_batches(data: Path, images: int = 600, batch: int = 32) -> list[dict]:
    """Training batches as the fine-tune sees them (train-mode augmentation, mosaic off as after close_mosaic)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    torch.manual_seed(0)
    info = check_det_dataset(str(data))
    cfg = get_cfg(overrides={"imgsz": IMGSZ, "task": "detect", "mosaic": 0.0})
    dataset = build_yolo_dataset(cfg, info["train"], batch, info, mode="train", rect=False)
    batches = []
    for b in build_dataloader(dataset, batch, workers=0, shuffle=True):
        batches.append({**b, "img": b["img"].float() / 255})
        if len(batches) * batch >= images:
            break
    return batches


def bn_recalibrated(weights: Path, data: Path, dest: Path) -> Path:
    """Copy of a fine-tuned checkpoint with BatchNorm statistics re-estimated on augmented training batches.

    Three epochs at Ultralytics' BN momentum (0.03) leave running statistics that lag the final weights; this
    re-estimates them (no gradient step). Augmented batches matter: the trained base keeps 0.625 val mAP50-95 with
    statistics from augmented batches but drops to ~0.42 with un-augmented ones.
    """
    from yolo_prune.calibration import recalibrate_batchnorm

    ckpt = torch.load(weights, map_location="cpu", weights_only=False)
    model = ckpt["model"].float()
    recalibrate_batchnorm(model, augmented_batches(data))
    ckpt["model"] = model.half()
    torch.save(ckpt, dest)
    return dest


def stage_recipes(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """Fine-tune recipe variants (``--ft-epochs`` each) on the calibrated ratio-0.3 prune, chosen on the val split.

    Every variant is scored on the val split only (the split the trainer also uses for best.pt); the held-out test
    split is evaluated once, for the selected variant, so the reported number is not selected on test.
    """
    base = Path(load_stage(out, "base")["weights"])
    importance = args.recipe_importance
    pruned = pruned_checkpoint(base, out, data, True, importance)
    runs = out / "recipes"
    runs.mkdir(parents=True, exist_ok=True)
    variants = {}
    for name, overrides in RECIPE_VARIANTS.items():
        cache = runs / f"{importance}-{name}.json"
        same = out / ("finetune_bncal.json" if importance == "l2" else "taylor.json")
        if not cache.exists() and not overrides and same.exists():  # the default recipe is that stage's run
            done = json.loads(same.read_text())
            cache.write_text(json.dumps({"weights": done["weights"], "overrides": {}, "recipe": done["recipe"],
                                         "val_map50_95": done["val_map50_95"], "wall_s": done["wall_s"]}, indent=2))
        if cache.exists():
            variants[name] = json.loads(cache.read_text())
            continue
        recipe = {**FT_RECIPE, **overrides}
        start = time.perf_counter()
        best = train(str(pruned), data, runs, f"{importance}-{name}", args.ft_epochs, recipe)
        variants[name] = {"weights": str(best), "overrides": overrides, "recipe": recipe,
                          "val_map50_95": evaluate(best, data, split="val")["map50_95"],
                          "wall_s": round(time.perf_counter() - start, 1)}  # fmt: skip
        cache.write_text(json.dumps(variants[name], indent=2))
        print(f"[recovery] recipe {importance}-{name}: val mAP50-95 {variants[name]['val_map50_95']}", flush=True)
    for name in list(variants):  # each variant also with BN statistics re-estimated after the fine-tune
        cache = runs / f"{importance}-{name}+bn.json"
        if not cache.exists():
            src = Path(variants[name]["weights"])
            dest = bn_recalibrated(src, data, runs / f"{importance}-{name}+bn.pt")
            cache.write_text(json.dumps({"weights": str(dest), "overrides": {**variants[name]["overrides"],
                                         "post_bn_recalibration": True}, "recipe": variants[name]["recipe"],
                                         "val_map50_95": evaluate(dest, data, split="val")["map50_95"],
                                         "wall_s": variants[name]["wall_s"]}, indent=2))  # fmt: skip
        variants[f"{name}+bn"] = json.loads(cache.read_text())
    chosen = max(variants, key=lambda k: variants[k]["val_map50_95"])
    pick = variants[chosen]
    return {"weights": pick["weights"], "epochs": args.ft_epochs, "recipe": pick["recipe"], "selected": chosen,
            "prune": prune_call(importance, True), "pruned_weights": str(pruned),
            "variants": {k: {"overrides": v["overrides"], "val_map50_95": v["val_map50_95"], "wall_s": v["wall_s"]}
                         for k, v in variants.items()},
            "val_map50_95": pick["val_map50_95"], **evaluate(Path(pick["weights"]), data),
            "wall_s_selected": pick["wall_s"]}  # fmt: skip


def stage_control(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """The unpruned base fine-tuned with the same recipe and epochs: what extra training alone gives."""
    base = Path(load_stage(out, "base")["weights"])
    best = train(str(base), data, out, "control", args.ft_epochs, FT_RECIPE)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": FT_RECIPE, **evaluate(best, data)}


def stage_distill(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    return stage_finetune(model, data, out, args, distill=True)


def stage_iterative(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """``iterative_prune`` to speed_up=2.0."""
    return run_iterative(out, data, "iterative", args.max_map_drop, steps=args.iter_steps, speed_up=2.0,
                         epochs=args.iter_epochs)  # fmt: skip


def stage_ratio_steps(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3 reached in ``--ft-epochs`` one-epoch steps: the same fine-tuning epochs as the one-shot prune."""
    return run_iterative(out, data, "ratio_steps", args.max_map_drop, steps=args.ft_epochs, ratio=0.3, epochs=1)


def run_iterative(out: Path, data: Path, name: str, max_map_drop: float, **schedule: Any) -> dict:
    from yolo_prune.iterative import iterative_prune

    base = Path(load_stage(out, "base")["weights"])
    recipe = {k: v for k, v in FT_RECIPE.items() if k != "imgsz"}
    result = iterative_prune(str(base), data, **schedule, max_map_drop=max_map_drop, project=str(out), name=name,
                             exist_ok=True, imgsz=IMGSZ, **recipe)  # fmt: skip
    final = result.steps[-1]
    return {
        "weights": str(result.best), "final_weights": str(final.weights), "run_dir": str(result.run_dir),
        "epochs_per_step": schedule["epochs"], "steps_planned": schedule["steps"], "best_step": result.best_step,
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


def run_stage(stage: str, model: str, data: Path, args: argparse.Namespace) -> None:
    out = CACHE / "recovery" / model
    out.mkdir(parents=True, exist_ok=True)
    key = stage_key(stage, args)
    path = out / f"{key}.json"
    if path.exists() and not args.force:
        print(f"[recovery] {model}/{key}: cached ({path})", flush=True)
        return
    start = time.perf_counter()
    result = globals()[f"stage_{stage}"](model, data, out, args)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"[recovery] {model}/{key}: {json.dumps(result, default=str)}", flush=True)


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
        payload["models"][model] = {s: json.loads((out / f"{s}.json").read_text()) for s in CACHED
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
        "- Pruning: `prune_yolo(base, ratio=0.3, imgsz=128)` (l2, uniform) for the uncalibrated rows; "
        "`prune_yolo(base, ratio=0.3, imgsz=128, data=<data>, calibrate_bn=True)` for the 'BN recalibrated' rows "
        "(BatchNorm running statistics re-estimated on 64 training images, `yolo_prune.calibration.recalibrate_batchnorm`;"
        " the rows in this table were measured when these images were un-augmented; they are augmented since); "
        "`importance='taylor'` adds loss-gradient channel scores on the same images. Iterative: "
        "`iterative_prune(base, data, speed_up=2.0, steps=..., epochs=..., max_map_drop=...)`, geometric GFLOPs "
        "schedule, each step pruned from the previous step's best checkpoint (cached from the earlier run, before "
        "`iterative_prune` passed `data=` on to `prune_yolo`: its steps were not BN-recalibrated).",
        "- Recipe variants (`recipes` stage): the same 3-epoch fine-tune with the overrides listed below, each also "
        "with BatchNorm statistics re-estimated after the fine-tune on 600 augmented training images (train-mode "
        "pipeline, mosaic off; no gradient step). Selected on the val split only; the held-out split scores only "
        "the selected one.",
        "- Commands (stages are cached in `benchmarks/cache/recovery/<model>/`; all with `YOLO_OFFLINE=1`):",
        "",
        *[f"      .venv/bin/python benchmarks/recovery.py --model yolov8n {c}" for c in commands(args)],
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
        lines += recipe_lines(model, stages)
    lines += ["", "## Notes (observations from the recorded runs)", "", *NOTES]
    for model, stages in payload["models"].items():
        for key in ("iterative", "ratio_steps"):
            if key not in stages:
                continue
            header = "| step | GFLOPs@128 | params (M) | val mAP50-95 | drop | admissible |"
            lines += ["", f"## Steps of `{key}` ({model})", "", header, "|---|---|---|---|---|---|"]
            for s in stages[key]["steps"]:
                lines.append(f"| {s['step']} | {s['gflops']:.4f} | {s['params'] / 1e6:.2f} | {s['map50_95']:.4f} | "
                             f"{s['map_drop']:+.4f} | {s['admissible']} |")  # fmt: skip
            lines.append("")
            lines.append("(val = the training val split, used by the stop rule; the main table is held-out)")
    return "\n".join(lines) + "\n"


def commands(args: argparse.Namespace) -> list[str]:
    common = (f"--base-epochs {args.base_epochs} --ft-epochs {args.ft_epochs} --iter-steps {args.iter_steps} "
              f"--iter-epochs {args.iter_epochs} --max-map-drop {args.max_map_drop}")  # fmt: skip
    return [
        f"{common} --no-calibrate --stages base,finetune,distill,iterative,ratio_steps,control  # earlier run",
        f"{common} --stages finetune,distill,taylor  # BN recalibrated (--calibrate is the default)",
        f"{common} --stages recipes --recipe-importance {args.recipe_importance}",
        f"{common} --recipe-importance {args.recipe_importance} --stages report",
    ]


def fmt(recipe: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in recipe.items())


def table_rows(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base = stages["base"]["map50_95"]
    variants = [("base", "base (unpruned)", stages.get("base"))]
    for key, label in (("finetune", "ratio 0.3, no fine-tune"),
                       ("finetune_bncal", "ratio 0.3 (BN recalibrated), no fine-tune"),
                       ("taylor", "ratio 0.3 taylor (BN recalibrated), no fine-tune")):  # fmt: skip
        if key in stages:
            variants.append((key, label, {**stages[key]["pruned"], "epochs": 0, "wall_s": "—"}))
    recipe = ""
    if "recipes" in stages:
        imp = " taylor" if "taylor" in stages["recipes"]["prune"] else ""
        recipe = f"ratio 0.3{imp} (BN recalibrated) + recipe `{stages['recipes']['selected']}` (selected on val)"
    labels = {"control": "control: unpruned + same fine-tune", "finetune": "ratio 0.3 + plain fine-tune",
              "distill": "ratio 0.3 + distillation",
              "finetune_bncal": "ratio 0.3 (BN recalibrated) + plain fine-tune",
              "distill_bncal": "ratio 0.3 (BN recalibrated) + distillation",
              "taylor": "ratio 0.3 taylor (BN recalibrated) + plain fine-tune", "recipes": recipe,
              "ratio_steps": "ratio 0.3 in 1-epoch steps (kept step)",
              "iterative": "iterative speed_up=2.0 (kept step)"}  # fmt: skip
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
                    f"{s.get('wall_s_selected', s.get('wall_s'))} |")  # fmt: skip
    return rows


def target_lines(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base, lines = stages["base"], []
    checks = (("finetune", 0.98, "ratio 0.3 one-shot + fine-tune (<= 10% of base epochs)"),
              ("finetune_bncal", 0.98, "ratio 0.3 one-shot, BN recalibrated, + fine-tune"),
              ("taylor", 0.98, "ratio 0.3 one-shot taylor, BN recalibrated, + fine-tune"),
              ("recipes", 0.98, "ratio 0.3 one-shot (recipes-stage prune, BN recalibrated) + val-selected recipe"),
              ("ratio_steps", 0.98, "ratio 0.3 in 1-epoch prune/fine-tune steps (same total epochs)"),
              ("iterative", 0.95, "iterative to speed_up=2.0"))  # fmt: skip
    for key, need, label in checks:
        if key in stages and stages[key].get("stopped_early"):
            s = stages[key]
            lines.append(f"- {model} {label}: stopped at step {s['final_step']} (val drop above max_map_drop) before "
                         f"reaching the target; kept step {s['best_step']} at {s['map50_95'] / base['map50_95']:.3f}x "
                         "base: **NOT met**")  # fmt: skip
        elif key in stages:
            got = stages[key]["map50_95"] / base["map50_95"]
            extra = ""
            if key in ("finetune", "finetune_bncal", "taylor", "recipes"):
                extra = f", {stages[key]['epochs']} vs {base['epochs']} base epochs"
            if key == "ratio_steps":
                extra = f", {len(stages[key]['steps']) - 1} x 1 epoch vs {base['epochs']} base epochs"
            if key == "iterative":
                extra = f", GFLOPs x{base['gflops'] / stages[key]['gflops']:.2f} fewer"
            lines.append(f"- {model} {label}: {got:.3f}x base (need >= {need}){extra}: "
                         f"**{'met' if got >= need else 'NOT met'}**")  # fmt: skip
    for ft, dist, tag in (("finetune", "distill", ""), ("finetune_bncal", "distill_bncal", " (BN recalibrated)")):
        if ft in stages and dist in stages:
            d, f = stages[dist]["map50_95"], stages[ft]["map50_95"]
            lines.append(f"- {model} distillation vs plain fine-tune{tag}, same epochs: {d:.4f} vs {f:.4f} "
                         f"({'distillation recovers more' if d > f else 'plain fine-tune recovers as much or more'})")
    return lines


def recipe_lines(model: str, stages: dict) -> list[str]:
    if "recipes" not in stages:
        return []
    r = stages["recipes"]
    lines = ["", f"## Fine-tune recipe variants ({model}, `{r['prune']}`, {r['epochs']} epochs, val split)", "",
             "| variant | overrides of the fine-tune recipe | val mAP50-95 | wall (s) |", "|---|---|---|---|"]
    for name, v in r["variants"].items():
        mark = " **(selected)**" if name == r["selected"] else ""
        lines.append(f"| {name}{mark} | {fmt(v['overrides']) or '—'} | {v['val_map50_95']:.4f} | {v['wall_s']} |")
    lines += ["", f"Held-out mAP50-95 of the selected variant only: {r['map50_95']:.4f} (val {r['val_map50_95']:.4f})."]
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
    parser.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                        help="prune with data= (BatchNorm statistics re-estimated on 64 training images) in the "
                             "finetune/distill stages; --no-calibrate reproduces the earlier, uncalibrated path")
    parser.add_argument("--recipe-importance", default="l2", choices=("l2", "taylor"),
                        help="which calibrated ratio-0.3 prune the recipes stage fine-tunes")
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
