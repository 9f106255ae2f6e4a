"""Real-model benchmark: how much of a real COCO detector's mAP each pruning method keeps, by compute target.

For each ``--speed-ups`` target and each method, prune the real checkpoint, save it, and measure mAP50-95 at 640 px
on the measuring split through stock ``YOLO(file).val``; optionally fine-tune with stock ``YOLO(file).train`` and
measure again. Methods:

* ``previous``   the defaults before the real-data work: ``importance="l2", global_pruning=False``, no data;
* ``data_free``  today's defaults without data (``prune_yolo(model, speed_up=s)``);
* ``data``       today's defaults with calibration images (``prune_yolo(model, speed_up=s, data=calib.yaml)``);
* ``generated``  no images: distillation on generated dead-leaves images (``prune_yolo(model, speed_up=s,
  distill=True)``);
* ``data_nodistill`` the data-free prune with its BatchNorm statistics matched to the images as after distillation
  (same function, so the same mAP as ``data_free`` before a fine-tune; it fine-tuned worse, so ``distill=False``
  does not do it): measured with that match added to ``prune_yolo(..., distill=False)``; read from the cache only;
* ``data_oneshot`` the ``data`` default before fading (prune once, then distil the pruned model): measured at commit
  9921245 (``git checkout 9921245`` and run ``--methods data``); read from the cache only;
* ``data_fade``  the ``data`` default without its last step (BatchNorm statistics matched to the images): the same
  weights, so the same mAP before fine-tuning; read from the cache only.
* ``resolution`` a control, not a prune: the unpruned model measured at the smaller image size (a multiple of 32)
  whose GFLOPs come closest to the target, the other way to buy the same speed-up without retraining.

Each result is cached in ``benchmarks/cache/real/<model>/``; the report is ``benchmarks/results/real_models.md``
(+ ``.json`` and the mAP-vs-GFLOPs frontier ``real_models.png``; ``--report NAME`` names it otherwise).
``--by-size`` adds COCO AP of small, medium and large objects (``pip install faster-coco-eval``). Run from the repository root with the real files
of ``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_models.py --speed-ups 1.25,1.5,2.0 \\
        --methods previous,data_free,data --finetune data@1.5,unpruned@1.0,data@1.5@1,data@1.5@2,data@1.5@3 \\
        --ft-recipe optimizer=AdamW,lr0=0.001,warmup_epochs=0 \\
        --ft-recipe optimizer=AdamW,lr0=0.001,warmup_epochs=0,distill_model=../shared/models/yolov8n-coco.pt \\
        --ft-recipe optimizer=AdamW,lr0=0.002,warmup_epochs=0 --ft-recipe optimizer=AdamW,lr0=0.0005,warmup_epochs=0
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
METHOD_ARGS = {
    "previous": {"importance": "l2", "global_pruning": False},
    "data_free": {},
    "data": {"data": True},
    "generated": {"distill": True},
}
SIZES = ("small", "medium", "large")
DEFAULT_MODEL = SHARED / "models" / "yolov8n-coco.pt"
DEFAULT_FT_DATA = SHARED / "datasets" / "coco128" / "coco128.yaml"
LABELS = {
    "previous": "previous defaults (l2, uniform), no data",
    "data_free": "defaults, no data",
    "data": "defaults + 64 unlabeled images",
    "generated": "no images: distil on 64 generated dead-leaves images (distill=True)",
    "data_nodistill": "data-free prune, BatchNorm statistics then matched to 64 images (experiment, not a default)",
    "data_oneshot": "previous data default (prune once, then distil), 64 unlabeled images",
    "data_fade": "fading without the final BatchNorm statistics match, 64 unlabeled images",
    "unpruned": "control: the unpruned model",
    "resolution": "control: the unpruned model at a smaller image size",
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="e.g. a checkpoint of benchmarks/real_weights.py")
    p.add_argument("--calib", default=str(SHARED / "datasets" / "coco128" / "split.yaml"),
                   help="dataset yaml whose train split calibrates and whose val split measures")
    p.add_argument("--ft-data", default=str(DEFAULT_FT_DATA),
                   help="dataset yaml the fine-tunes train on (default: all 128 coco128 images, the measuring ones "
                   "included; the calibration yaml: only its train split)")
    p.add_argument("--speed-ups", default="1.25,1.5,2.0")
    p.add_argument("--methods", default="previous,data_free,data")
    p.add_argument("--finetune", default="", help="method@speed_up[@k] to fine-tune with the k-th --ft-recipe "
                   "(default 0), e.g. data@1.5,unpruned@1,data@1.5@1 (unpruned: the same fine-tune of the unpruned "
                   "model, a control)")
    p.add_argument("--ft-epochs", type=int, default=10)
    p.add_argument("--ft-recipe", action="append", default=None,
                   help="extra stock train arguments, e.g. optimizer=AdamW,lr0=0.001 (repeat for several recipes)")
    p.add_argument("--imgsz", type=int, default=640)
    p.add_argument("--report", default="real_models", help="report name in benchmarks/results/ (.md, .json, .png)")
    p.add_argument("--by-size", action="store_true", help="also COCO AP of small/medium/large objects "
                   "(needs faster-coco-eval)")
    return p.parse_args()


def evaluate(weights: Path, data: str, imgsz: int, by_size: bool = False) -> dict:
    """mAP50-95 (``map``) and, with ``by_size``, COCO AP of small / medium / large objects (box area < 32^2, up to
    96^2, above: Ultralytics' ``save_json`` evaluation of a custom dataset, which needs ``faster-coco-eval``)."""
    from ultralytics import YOLO
    from ultralytics.models.yolo.detect import DetectionValidator

    yolo = YOLO(str(weights))
    settings = dict(data=data, imgsz=imgsz, batch=16, device="cpu", workers=0, plots=False, verbose=False, half=False,
                    project=str(CACHE / "val"), name="v", exist_ok=True, save_json=by_size)
    # as YOLO.val, whose returned metrics leave out the by-size entries of the validator's statistics
    stats = DetectionValidator(args={**yolo.overrides, "rect": True, **settings, "mode": "val"})(model=yolo.model)
    result = {"map": round(float(stats["metrics/mAP50-95(B)"]), 4)}
    if by_size:
        result["by_size"] = {size: round(float(stats[f"metrics/mAP_{size}(B)"]), 4) for size in SIZES}
    return result


def prune(method: str, speed_up: float, args: argparse.Namespace, out: Path) -> dict:
    from yolo_prune import prune_yolo

    kwargs = dict(METHOD_ARGS[method])
    if kwargs.pop("data", False):
        kwargs["data"] = args.calib
    torch.set_num_threads(os.cpu_count() or 1)  # as a fresh `yolo-prune prune` has: every val resets it to cores - 1
    start = time.perf_counter()
    model = prune_yolo(args.model, speed_up=speed_up, imgsz=args.imgsz, save=out, overwrite=True, **kwargs)
    seconds = time.perf_counter() - start
    meta = model.ckpt["yolo_prune"]
    return {"prune_s": round(seconds, 1), "gflops": meta["gflops"], "params": meta["params"]}


def recipe(text: str) -> dict:
    """One ``--ft-recipe`` as stock train arguments."""
    from ultralytics.cfg import smart_value

    pairs = (item.split("=", 1) for item in text.split(",") if item)
    return {key: smart_value(value) for key, value in pairs}


def recipe_tag(text: str) -> str:
    """A file-name-safe tag of a recipe (paths by their stem)."""
    return "".join(f"_{k}{Path(v).stem if '/' in str(v) else v}" for k, v in recipe(text).items())


def ft_data_tag(args: argparse.Namespace) -> str:
    """A cache-name tag of a non-default ``--ft-data`` (its file stem), so fine-tunes on other data do not collide."""
    return "" if Path(args.ft_data) == DEFAULT_FT_DATA else f"_data{Path(args.ft_data).stem}"


def finetune(weights: Path, recipe_text: str, args: argparse.Namespace, name: str) -> Path:
    from ultralytics import YOLO

    YOLO(str(weights)).train(data=args.ft_data, epochs=args.ft_epochs, batch=16, nbs=16, imgsz=args.imgsz,
                             device="cpu", workers=0, plots=False, val=False, seed=0, deterministic=True,
                             project=str(CACHE / "train"), name=name, exist_ok=True, **recipe(recipe_text))
    return CACHE / "train" / name / "weights" / "last.pt"


def resolution_control(speed_up: float, args: argparse.Namespace) -> dict:
    """The unpruned model at the image size (a multiple of 32) whose GFLOPs are nearest ``1 / speed_up`` of its own."""
    from ultralytics import YOLO

    from yolo_prune.pruning.summary import ModelStats, equal_cost_imgsz, input_grid

    model = YOLO(args.model).model
    imgsz = equal_cost_imgsz(1 / speed_up, args.imgsz, input_grid(model))
    stats = [ModelStats.of(model, size) for size in (args.imgsz, imgsz)]
    result = {"method": "resolution", "speed_up": speed_up, "imgsz": imgsz, "prune_s": 0.0,
              "gflops": [round(s.gflops, 3) for s in stats], "params": [s.params for s in stats]}
    return {**result, **evaluate(Path(args.model), args.calib, imgsz, args.by_size)}


def run(method: str, speed_up: float, args: argparse.Namespace) -> dict:
    path = CACHE / f"{method}_{speed_up}.json"
    if path.exists() and (not args.by_size or "by_size" in json.loads(path.read_text())):
        return json.loads(path.read_text())
    if method == "resolution":
        result = resolution_control(speed_up, args)
    elif method in METHOD_ARGS:
        weights = CACHE / f"{method}_{speed_up}.pt"
        result = {"method": method, "speed_up": speed_up, **prune(method, speed_up, args, weights)}
        result.update(evaluate(weights, args.calib, args.imgsz, args.by_size))
    else:
        raise SystemExit(f"{method}@{speed_up} is not cached; it was measured at an earlier commit (see --help)")
    path.write_text(json.dumps(result, indent=1))
    return result


def run_finetune(method: str, speed_up: float, recipe_text: str, args: argparse.Namespace) -> dict:
    tag = f"ft{args.ft_epochs}{recipe_tag(recipe_text)}{ft_data_tag(args)}"
    path = CACHE / f"{method}_{speed_up}_{tag}.json"
    if path.exists() and (not args.by_size or "by_size" in json.loads(path.read_text())):
        return json.loads(path.read_text())
    weights = Path(args.model) if method == "unpruned" else CACHE / f"{method}_{speed_up}.pt"
    if method != "unpruned":
        run(method, speed_up, args)
    start = time.perf_counter()
    last = finetune(weights, recipe_text, args, f"{method}_{speed_up}_{tag}")
    result = {"method": method, "speed_up": speed_up, "epochs": args.ft_epochs, "recipe": recipe_text or "defaults",
              **evaluate(last, args.calib, args.imgsz, args.by_size), "train_s": round(time.perf_counter() - start)}
    path.write_text(json.dumps(result, indent=1))
    return result


def report(base: dict, results: list[dict], tuned: list[dict], args: argparse.Namespace) -> None:
    out, base_map = ROOT / "benchmarks" / "results", base["map"]
    payload = {"model": Path(args.model).name, "base_map": base_map, "machine": machine(), "results": results,
               "finetuned": tuned, "command": command(args)}
    if "by_size" in base:
        payload["base_by_size"] = base["by_size"]
    (out / f"{args.report}.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# Real-model pruning: {payload['model']}, mAP50-95 at {args.imgsz} px on the measuring split", "",
             f"Base: {base_map:.3f}. Machine: {payload['machine']}. Command: `{payload['command']}`", "",
             "| method | speed_up | GFLOPs | params | mAP50-95 | x base | prune time |", "|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["speed_up"], r["method"])):
        g, p = r["gflops"], r["params"]
        lines.append(f"| {label(r)} | {r['speed_up']} | {g[1]:.2f} ({g[1] / g[0]:.2f}x) | "
                     f"{p[1] / 1e6:.2f}M | {r['map']:.3f} | {r['map'] / base_map:.2f} | {r['prune_s']:.0f} s |")
    if tuned:
        lines += ["", f"After stock `yolo train` ({args.ft_epochs} epochs, `batch=16 nbs=16`, {Path(args.ft_data).name}):",
                  "", "| start | speed_up | recipe | mAP50-95 | x base | train time |", "|---|---|---|---|---|---|"]
        for r in tuned:
            shown = r["recipe"].replace(",", " ").replace(str(SHARED) + "/", "../shared/")
            lines.append(f"| {LABELS[r['method']]} | {r['speed_up']} | `{shown}` | {r['map']:.3f} | "
                         f"{r['map'] / base_map:.2f} | {r['train_s'] / 60:.0f} min |")
    if args.by_size:
        lines += ["", *size_table(base, results + tuned)]
    (out / f"{args.report}.md").write_text("\n".join(lines) + "\n")
    plot(base_map, results, tuned, out / f"{args.report}.png", args)


def label(result: dict) -> str:
    """A result's method label; the resolution control names its image size."""
    return LABELS[result["method"]] + (f" ({result['imgsz']} px)" if "imgsz" in result else "")


def size_table(base: dict, rows: list[dict]) -> list[str]:
    """COCO AP by object size (box area in the original image), each x the unpruned model's."""
    lines = ["AP by object size (COCO: small < 32^2 px, large > 96^2 px):", "",
             "| model | speed_up | small | medium | large |", "|---|---|---|---|---|",
             "| unpruned | 1.0 | " + " | ".join(f"{base['by_size'][s]:.3f}" for s in SIZES) + " |"]
    for r in rows:
        name = label(r) + (f" + {r['epochs']}-epoch fine-tune" if "epochs" in r else "")
        cells = (f"{r['by_size'][s]:.3f} ({r['by_size'][s] / base['by_size'][s]:.2f}x)" for s in SIZES)
        lines.append(f"| {name} | {r['speed_up']} | " + " | ".join(cells) + " |")
    return lines


def plot(base_map: float, results: list[dict], tuned: list[dict], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for method in [m for m in LABELS if m != "unpruned"]:
        rows = sorted((r for r in results if r["method"] == method), key=lambda r: r["gflops"][1])
        if rows:
            ax.plot([r["gflops"][1] for r in rows], [r["map"] for r in rows], "o-", label=LABELS[method])
    gflops = {(r["method"], r["speed_up"]): r["gflops"][1] for r in results}
    headline = (args.ft_recipe or [""])[0] or "defaults"  # the first recipe; the others are in the table
    pruned = [r for r in tuned if (r["method"], r["speed_up"]) in gflops and r["recipe"] == headline]
    if pruned:
        ax.plot([gflops[(r["method"], r["speed_up"])] for r in pruned], [r["map"] for r in pruned], "*", ms=12,
                label=f"+ {args.ft_epochs} epochs stock fine-tune ({headline.replace(',', ' ')})")
    base_gflops = results[0]["gflops"][0]
    ax.plot([base_gflops], [base_map], "ks", label="unpruned")
    ax.set_xlabel(f"GFLOPs (pruned models at {args.imgsz} px)")
    ax.set_ylabel("mAP50-95 (measuring split)")
    ax.set_title(Path(args.model).name)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))  # below: the lines stay clear
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def command(args: argparse.Namespace) -> str:
    parts = ["benchmarks/real_models.py", f"--speed-ups {args.speed_ups}", f"--methods {args.methods}"]
    parts += [f"--model {os.path.relpath(args.model, ROOT)}"] if Path(args.model) != DEFAULT_MODEL else []
    parts += [f"--finetune {args.finetune}", f"--ft-epochs {args.ft_epochs}"] if args.finetune else []
    parts += [f"--ft-data {args.ft_data}"] if args.finetune and ft_data_tag(args) else []
    parts += ["--by-size"] if args.by_size else []
    parts += [f"--report {args.report}"] if args.report != "real_models" else []
    parts += [f"--ft-recipe {r}" for r in args.ft_recipe or []]
    return " ".join(parts).replace(str(SHARED), "../shared")


def main() -> None:
    global CACHE
    args = parse_args()
    if args.by_size and importlib.util.find_spec("faster_coco_eval") is None:
        # without it Ultralytics warns and reports 0.0 for every size instead of failing
        raise SystemExit("--by-size needs faster-coco-eval: pip install faster-coco-eval")
    CACHE = ROOT / "benchmarks" / "cache" / "real" / Path(args.model).stem
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    base_path = CACHE / "base.json"
    if not base_path.exists() or (args.by_size and "by_size" not in json.loads(base_path.read_text())):
        base_path.write_text(json.dumps(evaluate(Path(args.model), args.calib, args.imgsz, args.by_size)))
    base = json.loads(base_path.read_text())
    speed_ups = [float(s) for s in args.speed_ups.split(",")]
    results = [run(m, s, args) for s in speed_ups for m in args.methods.split(",")]
    recipes = args.ft_recipe or [""]
    jobs = [(p.split("@") + ["0"])[:3] for p in args.finetune.split(",") if p]
    tuned = [run_finetune(m, float(s), recipes[int(k)], args) for m, s, k in jobs]
    report(base, results, tuned, args)


CACHE = ROOT / "benchmarks" / "cache" / "real"

if __name__ == "__main__":
    main()
