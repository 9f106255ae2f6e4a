"""The recovery benchmark's sensitivity stage: ratio 0.3's GFLOPs taken from the layer groups the val split says are
cheap, then the plain fine-tune."""

from __future__ import annotations

import argparse
from pathlib import Path

from recovery_common import FT_RECIPE, IMGSZ, evaluate, load_stage, pruned_scores, train

SENSITIVITY_DROP = 0.01  # val mAP50-95 a layer group may lose alone at a measured ratio (sensitivity stage)


def stage_sensitivity(model: str, data: Path, out: Path, args: argparse.Namespace) -> dict:
    """ratio 0.3's compute spent where the val split says it is cheap, then the same fine-tune.

    ``sensitivity`` prunes one layer group at a time at 0.3 and 0.5 and measures the val-split drop; groups that
    lose more than ``SENSITIVITY_DROP`` at some ratio are held at the ratio they tolerate
    (``suggest_layer_ratios(..., leave_tolerant=True)``), and ``speed_up`` (the uniform prune's GFLOPs ratio)
    takes the whole saving from the others.
    """
    from yolo_prune import prune_yolo, sensitivity, suggest_layer_ratios

    base_stage, uniform = load_stage(out, "base"), load_stage(out, "finetune")
    base = Path(base_stage["weights"])
    result = sensitivity(str(base), str(data), ratios=(0.3, 0.5), imgsz=IMGSZ, project=str(out), name="sensitivity",
                         exist_ok=True, batch=32, workers=2, device="cpu")  # fmt: skip
    spared = suggest_layer_ratios(result, SENSITIVITY_DROP, leave_tolerant=True)
    speed_up = base_stage["gflops"] / uniform["gflops"]
    pruned = out / "pruned-sensitivity.pt"
    prune_yolo(str(base), speed_up=speed_up, imgsz=IMGSZ, layer_ratios=spared, save=pruned, overwrite=True)
    best = train(str(pruned), data, out, "sensitivity-ft", args.ft_epochs, FT_RECIPE)
    return {"weights": str(best), "epochs": args.ft_epochs, "recipe": FT_RECIPE, "speed_up": round(speed_up, 4),
            "spared": spared, "drops": {g.name: result.drops(g.name) for g in result.groups()},
            "pruned": pruned_scores(pruned, data), "val_map50_95": evaluate(best, data, split="val")["map50_95"],
            **evaluate(best, data)}  # fmt: skip


STAGE_RUNS = {"sensitivity": stage_sensitivity}
