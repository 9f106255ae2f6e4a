"""Recovery stages around ``reconstruct=True`` and the uniform prune's narrow layers: the reconstructed prune and its
fine-tune recipes, short fine-tunes of the plain and reconstructed prunes, the stem-spared prune, and iterative
pruning with reconstructed steps."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from recovery_common import (FT_RECIPE, IMGSZ, cached_finetune, evaluate, load_stage, pruned_checkpoint,
                             pruned_scores, run_iterative, select_on_val, train)  # fmt: skip

STEM_LAYERS = (0, 2)  # yolov8n / yolo11n: the 16-channel stem conv and the first C2f / C3k2 (16-channel halves)
SHORT_EPOCHS = (1, 2)  # the ``short`` stage's fine-tune lengths, and the recipes it picks from on the val split
SHORT_RECIPES = {"lr1e-3": {}, "lr1e-4": {"lr0": 0.0001}}

# Fine-tune recipes the ``reconstruct`` stage compares on the val split (overrides of FT_RECIPE, same epochs): a
# reconstructed prune starts close to the base, so gentler steps than the default's may keep more of it, or a
# learning rate that ends lower (lrf) may settle it better.
RECONSTRUCT_RECIPES = {
    "lr1e-3": {},
    "lr2.5e-4": {"lr0": 0.00025},
    "lr1e-4": {"lr0": 0.0001},
    "sgd1e-3": {"optimizer": "SGD", "lr0": 0.001},
    "lrf0.01": {"lrf": 0.01},
    "lr2e-3-lrf0.01": {"lr0": 0.002, "lrf": 0.01},
}


def stage_reconstruct(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3 (uniform, l2) with ``reconstruct=True``, fine-tuned with the val-selected ``RECONSTRUCT_RECIPES``.

    Each recipe fine-tunes the same reconstructed checkpoint (seed 0) and is scored on the val split; the selected
    one is repeated with ``--extra-seeds`` and only those runs are scored on the held-out split.
    """
    from yolo_prune import prune_yolo

    base = Path(load_stage(out, "base")["weights"])
    pruned, runs_dir = out / "pruned-r0.3-reconstruct.pt", out / "reconstruct"
    timing = runs_dir / "prune.json"
    if not pruned.exists() or not timing.exists():
        start = time.perf_counter()
        prune_yolo(str(base), ratio=0.3, imgsz=IMGSZ, data=str(data), reconstruct=True, save=pruned, overwrite=True)
        runs_dir.mkdir(parents=True, exist_ok=True)
        timing.write_text(json.dumps({"prune_s": round(time.perf_counter() - start, 1)}))
    prune_s = json.loads(timing.read_text())["prune_s"]
    candidates = {name: (pruned, {**FT_RECIPE, **overrides}) for name, overrides in RECONSTRUCT_RECIPES.items()}
    recipes, chosen = select_on_val(candidates, data, runs_dir, args.ft_epochs)
    recipe = {**FT_RECIPE, **RECONSTRUCT_RECIPES[chosen]}
    runs = [recipes[chosen]] + [cached_finetune(pruned, data, runs_dir, f"{chosen}-seed{seed}", args.ft_epochs,
                                                {**recipe, "seed": seed}) for seed in args.extra_seeds]  # fmt: skip
    held_out = [evaluate(Path(r["weights"]), data) for r in runs]
    return {"weights": runs[0]["weights"], "epochs": args.ft_epochs, "recipe": recipe, "selected": chosen,
            "recipes": recipes, "seeds": [0, *args.extra_seeds], "map50_95_seeds": [h["map50_95"] for h in held_out],
            "prune": f"prune_yolo(base, ratio=0.3, imgsz={IMGSZ}, data=<data>, reconstruct=True)", "prune_s": prune_s,
            "prune_weights": str(pruned), "pruned": pruned_scores(pruned, data),
            "val_map50_95": runs[0]["val_map50_95"],
            "ft_wall_s": runs[0]["wall_s"], **held_out[0]}  # fmt: skip


def stage_short(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """Plain and reconstructed ratio-0.3 prunes fine-tuned 1 and 2 epochs: what the refit is worth when there is
    little compute. Per start and length, the ``SHORT_RECIPES`` run (seed 0) are compared on the val split and only
    the selected one is scored on the held-out split."""
    base = Path(load_stage(out, "base")["weights"])
    starts = {"plain": pruned_checkpoint(base, out, data, calibrate=False),
              "reconstruct": Path(load_stage(out, "reconstruct")["prune_weights"])}  # fmt: skip
    runs = {}
    for epochs in SHORT_EPOCHS:
        for start, weights in starts.items():
            candidates = {name: (weights, {**FT_RECIPE, **overrides}) for name, overrides in SHORT_RECIPES.items()}
            tried, chosen = select_on_val(candidates, data, out / "short", epochs, prefix=f"{start}-{epochs}ep-")
            runs[f"{start}-{epochs}ep"] = {"selected": chosen, "val": {k: v["val_map50_95"] for k, v in tried.items()},
                                           "epochs": epochs, **evaluate(Path(tried[chosen]["weights"]), data)}
    return {"recipe": FT_RECIPE, "recipes": SHORT_RECIPES, "runs": runs}


def stage_stem(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3 on every layer but the stem and the first C2f/C3k2 (``STEM_LAYERS`` kept whole), plain fine-tune:
    checks whether halving those 16-channel layers (the rounding of ratio 0.3 to multiples of 8) is what costs."""
    from yolo_prune import prune_yolo

    base = Path(load_stage(out, "base")["weights"])
    pruned = out / "pruned-r0.3-stem.pt"
    prune_yolo(str(base), ratio=0.3, layer_ratios=dict.fromkeys(STEM_LAYERS, 0.0), imgsz=IMGSZ, save=pruned,
               overwrite=True)  # fmt: skip
    best = train(str(pruned), data, out, "stem-ft", args.ft_epochs, FT_RECIPE)
    seeds = [evaluate(train(str(pruned), data, out / "seeds", f"stem-seed{seed}", args.ft_epochs,
                            {**FT_RECIPE, "seed": seed}), data)["map50_95"] for seed in args.extra_seeds]  # fmt: skip
    scores = evaluate(best, data)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": FT_RECIPE, "layers": list(STEM_LAYERS),
            "pruned": pruned_scores(pruned, data), "val_map50_95": evaluate(best, data, split="val")["map50_95"],
            "seeds": [0, *args.extra_seeds], "map50_95_seeds": [scores["map50_95"], *seeds], **scores}  # fmt: skip


def stage_iterative_reconstruct(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """``iterative_prune(..., reconstruct=True)`` to speed_up=2.0 in ``--iter-reconstruct-steps`` steps, with the
    ``reconstruct`` stage's selected recipe."""
    recipe = load_stage(out, "reconstruct")["recipe"]
    return run_iterative(out, data, "iterative_reconstruct", args.max_map_drop, recipe=recipe, reconstruct=True,
                         steps=args.iter_reconstruct_steps, speed_up=2.0, epochs=args.iter_epochs)  # fmt: skip


STAGE_RUNS = {"reconstruct": stage_reconstruct, "iterative_reconstruct": stage_iterative_reconstruct,
              "short": stage_short, "stem": stage_stem}  # fmt: skip
