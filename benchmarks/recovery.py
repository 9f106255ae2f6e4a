"""Recovery benchmark: train a base detector on synthetic shapes, prune it, and measure how much fine-tuning recovers.

Pretrained weights cannot be downloaded here, so the base is trained from its yaml on the offline shapes dataset
(``yolo_prune.data.synthetic.make_synthetic_dataset``). Every number is mAP50-95 on a *held-out* split (drawn with
another seed, never seen by training or checkpoint selection), through stock ``YOLO(...).val(split="test")``.

Stages (each result is cached under ``benchmarks/cache/recovery/<model>/``; delete it to recompute):

* ``base``      train ``<model>.yaml`` (nc=3) for ``--base-epochs`` epochs;
* ``finetune``  ``prune_yolo(base, ratio=0.3)`` (the defaults) then stock fine-tune for ``--ft-epochs`` (<= 10% of the
                base's); with ``--calibrate`` the prune also re-estimates BatchNorm statistics (cached as
                ``finetune_bncal``);
* ``control``   the unpruned base through the same fine-tune: what the extra training alone does;
* ``distill``   the same pruned model and epochs, with ``distill_model=<base>`` (Ultralytics' DistillationModel);
* ``iterative`` ``iterative_prune(base, speed_up=2.0, steps=--iter-steps)`` with ``--iter-epochs`` per step;
* ``seeds``     ``finetune`` and ``control`` again with the training seeds ``--extra-seeds``;
* ``longer``    the ``finetune`` prune fine-tuned for twice ``--ft-epochs``;
* ``sensitivity`` ``sensitivity`` on the val split spares the groups that cannot lose channels cheaply; the same
                GFLOPs as ``finetune`` come from the others (``speed_up`` + ``layer_ratios``); same fine-tune;
* ``reconstruct`` ``prune_yolo(base, ratio=0.3, data=..., reconstruct=True)`` (least-squares refit of the pruned
                layers to the base's outputs), fine-tuned with each of ``RECONSTRUCT_RECIPES``; the one best on the
                val split is repeated with ``--extra-seeds`` and scored on the held-out split;
* ``iterative_reconstruct`` ``iterative`` in ``--iter-reconstruct-steps`` steps with ``reconstruct=True`` and the
                ``reconstruct`` stage's recipe;
* ``stem``      ratio 0.3 with the stem and the first C2f/C3k2 left whole (``STEM_LAYERS``), same fine-tune (and
                ``--extra-seeds``);
* ``short``     the plain and the reconstructed ratio-0.3 prunes fine-tuned only 1 and 2 epochs;
* ``recipes``   one-shot variants (prune options, fine-tune overrides: ``RECIPE_VARIANTS``) compared on the val split;
                only the selected one is scored on the held-out split;
* ``taylor``, ``ratio_steps``: ratio 0.3 with Taylor importance / reached in two iterative steps within the
                one-shot fine-tune's epochs;
* ``report``    write ``benchmarks/results/recovery.md`` and ``.json`` from the cached stage results.

Run from the repository root (about 55 minutes per model on 2 CPU cores):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n \\
        --stages base,finetune,control,distill,iterative,seeds,recipes,longer,sensitivity
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --model yolov8n \\
        --stages reconstruct,iterative_reconstruct,short
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/recovery.py --report-models yolov8n,yolo11n --stages report
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import recovery_finetune
import recovery_reconstruct
import recovery_sensitivity
from recovery_common import CACHE, STAGES, dataset, stage_key
from recovery_report import report

# The stages live in recovery_finetune.py, recovery_reconstruct.py and recovery_sensitivity.py (each names its runners
# in STAGE_RUNS) on top of the shared helpers in recovery_common.py; recovery_report.py writes the report.
STAGE_RUNS = {**recovery_finetune.STAGE_RUNS, **recovery_reconstruct.STAGE_RUNS, **recovery_sensitivity.STAGE_RUNS}
assert set(STAGE_RUNS) == set(STAGES) - {"report"}, "every stage but report has exactly one runner"


def run_stage(stage: str, model: str, data: Path, args: argparse.Namespace) -> None:
    out = CACHE / "recovery" / model
    out.mkdir(parents=True, exist_ok=True)
    key = stage_key(stage, args)
    path = out / f"{key}.json"
    if path.exists() and not args.force:
        print(f"[recovery] {model}/{key}: cached ({path})", flush=True)
        return
    start = time.perf_counter()
    result = STAGE_RUNS[stage](model, data, out, args)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"[recovery] {model}/{key}: {json.dumps(result, default=str)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--base-epochs", type=int, default=50)
    parser.add_argument("--ft-epochs", type=int, default=5)
    parser.add_argument("--iter-steps", type=int, default=2)
    parser.add_argument("--iter-epochs", type=int, default=5)
    parser.add_argument("--iter-reconstruct-steps", type=int, default=3, help="steps of iterative_reconstruct")
    parser.add_argument("--max-map-drop", type=float, default=0.05)
    parser.add_argument("--extra-seeds", type=lambda text: [int(x) for x in text.split(",")], default=[1, 2],
                        help="training seeds the seeds stage adds to seed 0 (comma-separated)")
    parser.add_argument("--report-models", default="yolov8n,yolo11n")
    parser.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=False,
                        help="prune with calibrate_bn=True (BatchNorm statistics re-estimated on 64 training images) "
                             "in the finetune/distill stages, cached as <stage>_bncal")
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
