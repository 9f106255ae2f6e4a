"""The recovery benchmark's report: ``benchmarks/results/recovery.md`` and ``.json`` from the cached stage results."""

from __future__ import annotations

import argparse
import json
import os
import platform

import torch
from recovery_common import BASE_RECIPE, CACHE, CACHED, DATA, FT_RECIPE, HELDOUT, IMGSZ, RESULTS, STAGES
from recovery_reconstruct import SHORT_EPOCHS

NOTES = [
    "- The bases are trained here from their yaml (no pretrained weights offline), 50 epochs with the recipe above. "
    "One-shot ratio 0.3 (l2, uniform, every layer including the Detect cls branch) collapses a trained model to "
    "near-zero mAP before fine-tuning; the fine-tune has to re-learn, so the budget in optimizer steps decides it.",
    "- An earlier run used a base trained 30 epochs at batch 32 (nbs 64: ~285 optimizer steps, held-out 0.664, not "
    "converged). Fine-tuning that one 3 epochs at batch 32 kept 0.83x; stepping every batch of 8 (nbs=8) kept 1.00x, "
    "but that fine-tune then made ~80% as many optimizer steps as the whole base training, and the control moved "
    "too, so it flattered pruning. This run gives base and fine-tune the same step density, so 10% of the epochs "
    "is 10% of the steps.",
    "- BatchNorm re-estimation after pruning (`calibrate_bn=True`) lifts the model *before* fine-tuning (earlier "
    "base: 0.017 -> 0.157), but 5 epochs of training replace the running statistics anyway (Ultralytics' BN "
    "momentum 0.03 over 375 steps), so the fine-tuned result is the same (the `calibrate_bn` variant in the variants tables).",
    "- Distillation (Ultralytics' DistillationModel, default dis=6.0, fresh projectors) did not beat plain "
    "fine-tuning at equal epochs in any run here (earlier base: 0.767x vs 0.827x).",
    "- Sensitivity (one layer group at a time at ratios 0.3 and 0.5, val split) finds the loss concentrated in the "
    "stem and P3 path (layers 0-4 and the P3 neck block lose 0.09-0.24 mAP50-95 alone at 0.3) and the Detect head "
    "(0.014-0.016), while the P4/P5 path loses < 0.006 even at 0.5: the synthetic objects are small at 128 px, so "
    "P4/P5 do little here (on COCO-like data far fewer channels will be this cheap). Holding the sensitive groups "
    "and taking ratio 0.3's GFLOPs from the rest keeps the base's accuracy *before* fine-tuning (1.000x / 0.998x); "
    "the 5-epoch fine-tune then costs 1-2%, as it costs the unpruned control — best.pt is chosen among the "
    "fine-tune's epochs, never the starting point, so validate before fine-tuning a prune that is already good.",
    "- Least-squares reconstruction (`reconstruct=True`: every pruned convolution refitted in forward order so that, "
    "fed the pruned model's activations on 128 training images, it reproduces the base's outputs on its kept "
    "channels; 33-47 s here) turns the uniform one-shot ratio-0.3 prune from near zero into 0.917x (yolov8n) / "
    "0.894x (yolo11n) of the base *before any fine-tuning*, at the same widths. The 5-epoch fine-tune then ends "
    "only a little higher than from the plain prune (3-seed means 0.951x vs 0.949x, 0.950x vs 0.938x): its first "
    "epoch at lr 1e-3 drops the reconstructed yolov8n from val 0.844 to 0.815, as it drops the unpruned control "
    "from 0.927 to 0.840, and gentler recipes (lr 2.5e-4 / 1e-4, SGD) keep the start but recover less within 5 "
    "epochs (recipe tables). The recipes differ by less than the seeds do (yolov8n: the val-selected recipe's "
    "seeds span 0.944-0.958x). With every layer at ratio 0.3, the narrow stem and P3 path (see the sensitivity "
    "note) seem to bound what 5 epochs reach, whatever the start: rounding to multiples of 8 keeps 8 of the "
    "16 channels of yolov8n's stem and of layer 2's C2f halves (11.2 rounds to 8), so the most sensitive layers "
    "lose 50%, not 30%.",
    "- Sparing only the stem and the first C2f/C3k2 (`layer_ratios={0: 0, 2: 0}`, ratio 0.3 everywhere else, the "
    "plain 5-epoch fine-tune, 3 seeds) gives 0.974x mean (0.966-0.984x; yolov8n, GFLOPs x0.63 instead of x0.58) "
    "and 0.964x (0.958-0.973x; yolo11n, x0.66 instead of x0.59), against 0.949x / 0.938x for the uniform prune: "
    "halving those 16-channel layers costs about 2.5 of the uniform prune's 3-5 points. It costs 5-7% more "
    "GFLOPs; the sensitivity-guided prune keeps more at the uniform prune's own GFLOPs.",
    "- The shorter the fine-tune, the more the refit is worth (table by fine-tune length): after 1 epoch (2% of the "
    "base's) 0.927x vs 0.896x (yolov8n) and 0.904x vs 0.848x (yolo11n), after 2 epochs +1.4 / +1.7 points, after 5 "
    "+0.2 / +1.2. A reconstructed model wants a gentle first epoch (lr0 1e-4 won on val at 1 epoch for both): "
    "the default lr 1e-3 first pulls it below its starting point.",
    "- Iterative pruning with reconstructed steps (`iterative_prune(..., reconstruct=True)`, 3 steps x 5 epochs, the "
    "recipe the reconstruct stage selected) reaches speed_up=2.0 at 0.977x (yolov8n) and 0.965x (yolo11n), every "
    "step within max_map_drop=0.05; the plain 2-step runs reached 0.964x / stopped at GFLOPs x0.71. Steps, "
    "recipe and reconstruction all changed together (15 vs 10 fine-tune epochs): a 2-step reconstructed yolo11n "
    "run with the same recipe stopped at step 2 again (val drop 0.053), so the third step matters as much as the "
    "refit.",
    "- The fine-tune itself costs the unpruned model 1-2% (control rows: yolov8n 0.991x, yolo11n 0.976x over 3 "
    "seeds); measured against the control, the one-shot ratio-0.3 models keep 0.958x (yolov8n) and 0.961x (yolo11n).",
    "- Twice the fine-tune (20% of the base's epochs) reaches 0.974x (yolov8n) / 0.967x (yolo11n): the one-shot "
    "gap is a budget question. Pruning in steps keeps more at a *larger* compression for yolov8n (0.964x at GFLOPs "
    "x0.50); for yolo11n the second step's val drop (5.5%) exceeded max_map_drop=0.05, so the step at GFLOPs x0.71 "
    "was kept (its last step scores 0.944x held-out). Reaching ratio 0.3 in two 2-epoch steps within the one-shot "
    "budget (yolov8n) stopped after the first step (GFLOPs x0.76, val drop 5.5%, 0.946x held-out), as five 1-epoch "
    "steps did (val drop 6.3%): steps that short do not recover either.",
]


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
        f"- Machine: {payload['machine']}. CPU only (wall times are indicative).",
        f"- Data: `make_synthetic_dataset(n_train={DATA['n_train']}, n_val={DATA['n_val']}, imgsz={DATA['imgsz']}, "
        f"seed={DATA['seed']})` for training and checkpoint selection; every mAP below is on a held-out split of "
        f"{HELDOUT['n_val']} images drawn with seed {HELDOUT['seed']} (never seen in training or selection), via "
        "stock `YOLO(w).val(split='test')`.",
        f"- Base: `YOLO('<model>.yaml').train(data, epochs=<base>, {fmt(BASE_RECIPE)})` (nc=3 from the data).",
        f"- Fine-tune (plain, distillation, control and every iterative step): `YOLO(pruned).train(data, epochs=<ft>, "
        f"{fmt(FT_RECIPE)})`; distillation adds `distill_model=<base best.pt>` (Ultralytics' DistillationModel, "
        "default `dis=6.0`). Base and fine-tune both step the optimizer every batch of 8 (`nbs=8`), so the "
        "fine-tune's share of the base's epochs is also its share of optimizer steps.",
        "- One-shot pruning: `prune_yolo(base, ratio=0.3, imgsz=128)` — the defaults (l2, uniform, round_to 8, no "
        "data). Iterative: `iterative_prune(base, data, speed_up=2.0, steps=<n>, epochs=<per step>, "
        "max_map_drop=<d>)` with the fine-tune recipe, geometric GFLOPs schedule, each step pruned from the previous "
        "step's best checkpoint.",
        "- Reconstruction: `prune_yolo(base, ratio=0.3, imgsz=128, data=<data>, reconstruct=True)`; its fine-tune "
        "recipe is chosen on the val split among `RECONSTRUCT_RECIPES` (overrides of the recipe above, table per "
        "model below), and `iterative_reconstruct` uses that recipe in each of its steps.",
        "- Seeds: the one-shot fine-tune and the control are repeated with other training seeds (same pruned "
        "checkpoint, same recipe; data order and augmentation change).",
        "- Command (stages cached in `benchmarks/cache/recovery/<model>/`, `YOLO_OFFLINE=1`):",
        "",
        *[f"      .venv/bin/python benchmarks/recovery.py --model {m} {command(args, stages)}"
          for m, stages in payload["models"].items()],
        f"      .venv/bin/python benchmarks/recovery.py --report-models {','.join(payload['models'])} --stages report",
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
        lines += recipe_lines(model, stages) + reconstruct_lines(model, stages) + short_lines(model, stages)
    lines += ["", "## Notes (observations from the recorded runs)", "", *NOTES]
    for model, stages in payload["models"].items():
        for key in ("iterative", "ratio_steps", "iterative_reconstruct"):
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


def command(args: argparse.Namespace, cached: dict) -> str:
    """The recovery.py arguments that reproduce one model's cached stages."""
    stages = ",".join(stage for stage in STAGES if stage in cached)
    return (f"--base-epochs {args.base_epochs} --ft-epochs {args.ft_epochs} --iter-steps {args.iter_steps} "
            f"--iter-epochs {args.iter_epochs} --iter-reconstruct-steps {args.iter_reconstruct_steps} "
            f"--max-map-drop {args.max_map_drop} --extra-seeds "
            f"{','.join(map(str, args.extra_seeds))} --stages {stages}")  # fmt: skip


def fmt(recipe: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in recipe.items())


def table_rows(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base = stages["base"]["map50_95"]
    variants = [("base", "base (unpruned)", stages.get("base"))]
    for key, label in (("finetune", "ratio 0.3, no fine-tune"),
                       ("finetune_bncal", "ratio 0.3 (BN recalibrated), no fine-tune"),
                       ("taylor", "ratio 0.3 taylor (BN recalibrated), no fine-tune"),
                       ("sensitivity", "sensitivity-guided, ratio 0.3's GFLOPs, no fine-tune"),
                       ("reconstruct", "ratio 0.3 reconstructed (`reconstruct=True`), no fine-tune"),
                       ("stem", "ratio 0.3, stem and first C2f/C3k2 whole, no fine-tune")):  # fmt: skip
        if key in stages:
            variants.append((key, label, {**stages[key]["pruned"], "epochs": 0, "wall_s": "—"}))
    recipe = ""
    if "recipes" in stages:
        recipe = f"ratio 0.3, variant `{stages['recipes']['selected']}` (selected on val) + fine-tune"
    labels = {"control": "control: unpruned + same fine-tune", "finetune": "ratio 0.3 + plain fine-tune",
              "distill": "ratio 0.3 + distillation",
              "finetune_bncal": "ratio 0.3 (BN recalibrated) + plain fine-tune",
              "distill_bncal": "ratio 0.3 (BN recalibrated) + distillation",
              "taylor": "ratio 0.3 taylor (BN recalibrated) + plain fine-tune", "recipes": recipe,
              "longer": "ratio 0.3 + plain fine-tune, twice as long",
              "sensitivity": "sensitivity-guided, ratio 0.3's GFLOPs + plain fine-tune",
              "ratio_steps": "ratio 0.3 in 2 steps within the same budget (kept step)",
              "iterative": "iterative speed_up=2.0 (kept step)",
              "iterative_reconstruct": "iterative speed_up=2.0, reconstructed steps (kept step)",
              "stem": "ratio 0.3, stem and first C2f/C3k2 whole + plain fine-tune"}  # fmt: skip
    if "iterative_reconstruct" in stages:
        labels["iterative_reconstruct"] = (f"iterative speed_up=2.0, {stages['iterative_reconstruct']['steps_planned']}"
                                           " reconstructed steps (kept step)")  # fmt: skip
    if "reconstruct" in stages:
        labels["reconstruct"] = (f"ratio 0.3 reconstructed + fine-tune `{stages['reconstruct']['selected']}` "
                                 "(selected on val), seed 0")  # fmt: skip
    variants += [(key, label, stages.get(key)) for key, label in labels.items()]
    for key in ("ratio_steps", "iterative", "iterative_reconstruct"):  # cut short by the stop rule: show its last step
        if key in stages and stages[key]["final_step"] != stages[key]["best_step"]:
            final = {**stages[key]["final"], "epochs": "—", "wall_s": "—"}
            variants.append((f"{key}_final", f"{labels[key].removesuffix(' (kept step)')}, last step run", final))
    rows = []
    for _, label, s in variants:
        if s is None:
            continue
        epochs = s.get("epochs", f"{s.get('epochs_per_step')}/step")
        rows.append(f"| {model} | {label} | {epochs} | {s['gflops']:.4f} | {s['gflops_640']:.2f} | "
                    f"{s['params'] / 1e6:.2f} | {s['map50_95']:.4f} | {s['map50_95'] / base:.3f} | {s['map50']:.4f} | "
                    f"{s.get('ft_wall_s', s.get('wall_s'))} |")  # fmt: skip
    return rows


def target_lines(model: str, stages: dict) -> list[str]:
    if "base" not in stages:
        return []
    base, lines = stages["base"], []
    checks = (("finetune", 0.98, "ratio 0.3 one-shot + fine-tune, seed 0 (<= 10% of base epochs)"),
              ("finetune_bncal", 0.98, "ratio 0.3 one-shot, BN recalibrated, + fine-tune"),
              ("taylor", 0.98, "ratio 0.3 one-shot taylor, BN recalibrated, + fine-tune"),
              ("recipes", 0.98, "ratio 0.3 one-shot, val-selected variant + fine-tune"),
              ("ratio_steps", 0.98, "ratio 0.3 in 2 prune/fine-tune steps (<= the one-shot's epochs)"),
              ("sensitivity", 0.98, "sensitivity-guided one-shot at ratio 0.3's GFLOPs + fine-tune"),
              ("reconstruct", 0.98, "ratio 0.3 one-shot, reconstructed, + val-selected fine-tune, seed 0"),
              ("stem", 0.98, "ratio 0.3 one-shot, stem and first C2f/C3k2 whole, + fine-tune, seed 0 (not the check)"),
              ("iterative", 0.95, "iterative to speed_up=2.0"),
              ("iterative_reconstruct", 0.95, "iterative to speed_up=2.0, reconstructed steps"))  # fmt: skip
    for key, need, label in checks:
        if key in stages and stages[key].get("stopped_early"):
            s = stages[key]
            lines.append(f"- {model} {label}: stopped at step {s['final_step']} (val drop above max_map_drop) before "
                         f"reaching the target; kept step {s['best_step']} at {s['map50_95'] / base['map50_95']:.3f}x "
                         "base: **NOT met**")  # fmt: skip
        elif key in stages:
            got = stages[key]["map50_95"] / base["map50_95"]
            extra = ""
            if key in ("finetune", "finetune_bncal", "taylor", "recipes", "sensitivity", "reconstruct", "stem"):
                extra = f", {stages[key]['epochs']} vs {base['epochs']} base epochs"
            if key == "ratio_steps":
                s = stages[key]
                extra = f", {len(s['steps']) - 1} x {s['epochs_per_step']} epochs vs {base['epochs']} base epochs"
            if key in ("iterative", "iterative_reconstruct"):
                extra = f", GFLOPs x{base['gflops'] / stages[key]['gflops']:.2f} fewer"
            lines.append(f"- {model} {label}: {got:.3f}x base (need >= {need}){extra}: "
                         f"**{'met' if got >= need else 'NOT met'}**")  # fmt: skip
    lines += seed_lines(model, stages)
    for ft, dist, tag in (("finetune", "distill", ""), ("finetune_bncal", "distill_bncal", " (BN recalibrated)")):
        if ft in stages and dist in stages:
            d, f = stages[dist]["map50_95"], stages[ft]["map50_95"]
            lines.append(f"- {model} distillation vs plain fine-tune{tag}, same epochs: {d:.4f} vs {f:.4f} "
                         f"({'distillation recovers more' if d > f else 'plain fine-tune recovers as much or more'})")
    return lines


def seed_lines(model: str, stages: dict) -> list[str]:
    """The one-shot fine-tunes and the control over every training seed: mean, range, and the 0.98x check."""
    runs, base, lines = dict(stages.get("seeds", {})), stages["base"]["map50_95"], []
    for key in ("reconstruct", "stem"):
        if key in stages and "map50_95_seeds" in stages[key]:
            runs[key] = stages[key]["map50_95_seeds"]
            runs.setdefault("seeds", stages[key]["seeds"])
    for key, label in (("finetune", "ratio 0.3 one-shot + fine-tune"), ("control", "control (unpruned + fine-tune)"),
                       ("reconstruct", "ratio 0.3 one-shot reconstructed + fine-tune"),
                       ("stem", "ratio 0.3 with the stem and first C2f/C3k2 whole + fine-tune")):  # fmt: skip
        if key not in runs:
            continue
        values = runs[key]
        mean = sum(values) / len(values)
        verdict = f": **{'met' if mean / base >= 0.98 else 'NOT met'}** (mean >= 0.98x)" if key != "control" else ""
        verdict += " (not the uniform check: 5-7% more GFLOPs)" if key == "stem" else ""
        lines.append(f"- {model} {label}, seeds {runs['seeds']}: {', '.join(f'{v:.4f}' for v in values)}; mean "
                     f"{mean:.4f} = {mean / base:.3f}x base (range {min(values) / base:.3f}-{max(values) / base:.3f}x)"
                     f"{verdict}")  # fmt: skip
    return lines


def reconstruct_lines(model: str, stages: dict) -> list[str]:
    """The fine-tune recipes compared on the reconstructed ratio-0.3 model (val split)."""
    from yolo_prune.recovery.reconstruction import reconstruction_images

    if "reconstruct" not in stages:
        return []
    r = stages["reconstruct"]
    lines = ["", f"## Fine-tune recipes after `reconstruct=True` ({model}, ratio 0.3, {r['epochs']} epochs, val)",
             "", f"Reconstruction itself took {r['prune_s']} s (prune + refit on {reconstruction_images(IMGSZ)} "
             "training images).", "",
             "| recipe | overrides of the fine-tune recipe | val mAP50-95 | wall (s) |",
             "|---|---|---|---|"]  # fmt: skip
    for name, v in r["recipes"].items():
        mark = " **(selected)**" if name == r["selected"] else ""
        overrides = {k: x for k, x in v["recipe"].items() if FT_RECIPE.get(k) != x}
        lines.append(f"| {name}{mark} | {fmt(overrides) or '—'} | {v['val_map50_95']:.4f} | {v['wall_s']} |")
    return lines


def short_lines(model: str, stages: dict) -> list[str]:
    """Plain vs reconstructed ratio-0.3 prune after 0, 1, 2 and 5 fine-tune epochs (held-out, x base)."""
    if "short" not in stages or "reconstruct" not in stages:
        return []
    base, runs, rec = stages["base"]["map50_95"], stages["short"]["runs"], stages["reconstruct"]

    def cell(run: dict) -> str:
        return f"{run['map50_95'] / base:.3f}x (`{run['selected']}`)"

    plain0, rec0 = stages["finetune"]["pruned"]["map50_95"], rec["pruned"]["map50_95"]
    rows = [("0", f"{plain0 / base:.3f}x", f"{rec0 / base:.3f}x")]
    rows += [(str(e), cell(runs[f"plain-{e}ep"]), cell(runs[f"reconstruct-{e}ep"])) for e in SHORT_EPOCHS]
    plain5, rec5 = sum(stages["seeds"]["finetune"]) / 3, sum(rec["map50_95_seeds"]) / 3
    rows.append((f"{rec['epochs']} (3-seed means)", f"{plain5 / base:.3f}x (`lr1e-3`)",
                 f"{rec5 / base:.3f}x (`{rec['selected']}`)"))  # fmt: skip
    lines = ["", f"## Plain vs reconstructed ratio-0.3 prune by fine-tune length ({model}, held-out, x base)", "",
             "| fine-tune epochs | plain prune (recipe) | `reconstruct=True` (recipe) |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {e} | {p} | {r} |" for e, p, r in rows]
    lines += ["", "Recipes: the default fine-tune (`lr1e-3`) or `lr0=1e-4`, whichever is better on the val split for "
              "that start and length (seed 0); 5 epochs: the seeds / reconstruct stages."]  # fmt: skip
    return lines


def recipe_lines(model: str, stages: dict) -> list[str]:
    if "recipes" not in stages:
        return []
    r = stages["recipes"]
    lines = ["", f"## One-shot variants ({model}, ratio 0.3, {r['epochs']} epochs, compared on the val split)", "",
             "| variant | prune_yolo options | fine-tune overrides | val mAP50-95 | wall (s) |",
             "|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        mark = " **(selected)**" if name == r["selected"] else ""
        lines.append(f"| {name}{mark} | {fmt(v['prune']) or '—'} | {fmt(v['overrides']) or '—'} | "
                     f"{v['val_map50_95']:.4f} | {v['wall_s']} |")  # fmt: skip
    lines += ["", f"Held-out mAP50-95 of the selected variant only: {r['map50_95']:.4f} (val {r['val_map50_95']:.4f})."]
    return lines
