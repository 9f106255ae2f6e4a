"""Recovery stages around the plain one-shot prune: the base, fine-tune (and its seeds, a longer one, Taylor
importance, the one-shot variants), the unpruned control, distillation, and the iterative schedules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recovery_common import (BASE_RECIPE, FT_RECIPE, IMGSZ, evaluate, load_stage, pruned_checkpoint, pruned_scores,
                             run_iterative, select_on_val, stage_key, train)  # fmt: skip

# Variants the ``recipes`` stage tries for the one-shot ratio-0.3 model, same epochs: (prune_yolo options, overrides of
# FT_RECIPE). They are compared on the val split only; the held-out split scores the selected one once.
RECIPE_VARIANTS = {
    "default": ({}, {}),
    "lr2.5e-4": ({}, {"lr0": 0.00025}),
    "lr5e-4": ({}, {"lr0": 0.0005}),
    "lr2e-3": ({}, {"lr0": 0.002}),
    "lr4e-3": ({}, {"lr0": 0.004}),
    "mosaic3": ({}, {"close_mosaic": 2}),
    "calibrate_bn": ({"calibrate": True}, {}),
    "taylor": ({"importance": "taylor"}, {}),
}


def stage_base(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    best = train(f"{model}.yaml", data, out, "base", args.base_epochs, BASE_RECIPE)
    return {"weights": str(best), "epochs": args.base_epochs, "recipe": BASE_RECIPE, **evaluate(best, data)}


def prune_call(importance: str, calibrate: bool) -> str:
    data = ", data=<data>, calibrate_bn=True" if calibrate else ""
    imp = "" if importance == "l2" else f", importance={importance!r}"
    return f"prune_yolo(base, ratio=0.3{imp}, imgsz={IMGSZ}{data})"


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


def stage_recipes(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """One-shot ratio 0.3: prune options and fine-tune overrides (``RECIPE_VARIANTS``) chosen on the val split.

    Every variant is scored on the val split only (the split the trainer also uses for best.pt); the held-out test
    split is evaluated once, for the selected variant, so the reported number is not selected on test.
    """
    base = Path(load_stage(out, "base")["weights"])
    runs = out / "recipes"
    runs.mkdir(parents=True, exist_ok=True)
    default = runs / "default.json"
    if not default.exists() and (out / "finetune.json").exists():  # the default variant is that stage's very run
        done = load_stage(out, "finetune")
        default.write_text(json.dumps({"weights": done["weights"], "val_map50_95": done["val_map50_95"],
                                       "wall_s": done["wall_s"]}, indent=2))  # fmt: skip
    candidates = {name: (pruned_checkpoint(base, out, data, prune.get("calibrate", False),
                                           prune.get("importance", "l2")), {**FT_RECIPE, **overrides})
                  for name, (prune, overrides) in RECIPE_VARIANTS.items()}  # fmt: skip
    tried, chosen = select_on_val(candidates, data, runs, args.ft_epochs)
    variants = {name: {**run, "prune": RECIPE_VARIANTS[name][0], "overrides": RECIPE_VARIANTS[name][1]}
                for name, run in tried.items()}  # fmt: skip
    pick = variants[chosen]
    return {"weights": pick["weights"], "epochs": args.ft_epochs, "selected": chosen, "variants": variants,
            "val_map50_95": pick["val_map50_95"], **evaluate(Path(pick["weights"]), data)}  # fmt: skip


def stage_control(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """The unpruned base fine-tuned with the same recipe and epochs: what extra training alone gives."""
    base = Path(load_stage(out, "base")["weights"])
    best = train(str(base), data, out, "control", args.ft_epochs, FT_RECIPE)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": FT_RECIPE, **evaluate(best, data)}


def stage_seeds(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """Seed spread: the plain fine-tune of the ratio-0.3 prune and the control again with ``--extra-seeds``.

    Seed 0 is the ``finetune`` / ``control`` stage itself; the same pruned checkpoint and recipe, only the training
    seed (data order, augmentation) changes.
    """
    base = Path(load_stage(out, "base")["weights"])
    pruned = pruned_checkpoint(base, out, data, calibrate=False)
    runs = {"finetune": [load_stage(out, "finetune")["map50_95"]], "control": [load_stage(out, "control")["map50_95"]]}
    for seed in args.extra_seeds:
        for key, weights in (("finetune", pruned), ("control", base)):
            best = train(str(weights), data, out / "seeds", f"{key}-seed{seed}", args.ft_epochs,
                         {**FT_RECIPE, "seed": seed})  # fmt: skip
            runs[key].append(evaluate(best, data)["map50_95"])
    return {"seeds": [0, *args.extra_seeds], "epochs": args.ft_epochs, "recipe": FT_RECIPE, **runs}


def stage_longer(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """The one-shot ratio-0.3 model fine-tuned twice as long (20% of the base's epochs): what the budget buys."""
    base = Path(load_stage(out, "base")["weights"])
    pruned = pruned_checkpoint(base, out, data, calibrate=False)
    best = train(str(pruned), data, out, "longer", 2 * args.ft_epochs, FT_RECIPE)
    return {"weights": str(best), "epochs": 2 * args.ft_epochs, "recipe": FT_RECIPE, **evaluate(best, data)}


def stage_distill(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    return stage_finetune(model, data, out, args, distill=True)


def stage_iterative(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """``iterative_prune`` to speed_up=2.0."""
    return run_iterative(out, data, "iterative", args.max_map_drop, steps=args.iter_steps, speed_up=2.0,
                         epochs=args.iter_epochs)  # fmt: skip


def stage_ratio_steps(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3 reached in two steps of ``--ft-epochs // 2`` epochs: within the one-shot prune's fine-tune budget."""
    return run_iterative(out, data, "ratio_steps", args.max_map_drop, steps=2, ratio=0.3, epochs=args.ft_epochs // 2)


STAGE_RUNS = {"base": stage_base, "finetune": stage_finetune, "distill": stage_distill, "taylor": stage_taylor,
              "recipes": stage_recipes, "iterative": stage_iterative, "ratio_steps": stage_ratio_steps,
              "control": stage_control, "seeds": stage_seeds, "longer": stage_longer}  # fmt: skip
