"""A dataset whose files are in order, as video frames are: does the distillation still see varied images?

Builds a dataset of coco128's 64 calibration images, each as ``--frames`` consecutive "frames" (symlinks, so the
files sort image by image, as frames extracted from a video do), prunes the real COCO yolov8n with
``prune_yolo(m, speed_up=S, data=that)`` and measures mAP50-95 at 640 px on the measuring half of ``split.yaml``.
``--windows spread`` is the library's draw (each epoch's 64 images from a fixed random order of the dataset);
``--windows consecutive`` replaces it in this process with the draw before session 27 (epoch ``e`` took files
``64 e`` onwards in file order: two or three distinct images per epoch here). Run from the repository root with
``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_ordered_data.py --speed-up 1.5 --windows consecutive
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_ordered_data.py --speed-up 1.5 --windows spread
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

from torch.utils.data import Subset  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from yolo_prune import prune_yolo  # noqa: E402
from yolo_prune.recovery import calibration  # noqa: E402

COCO128 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco128"
MODEL = COCO128.parents[1] / "models" / "yolov8n-coco.pt"


def ordered_dataset(root: Path, frames: int) -> Path:
    """Each calibration image as ``frames`` consecutive files under ``root``; returns the dataset yaml."""
    for kind in ("images", "labels"):
        (root / kind / "train").mkdir(parents=True, exist_ok=True)
    for line in (COCO128 / "calib.txt").read_text().split():
        image = COCO128 / line.removeprefix("./")
        label = COCO128 / "labels" / "train2017" / f"{image.stem}.txt"
        for k in range(frames):
            (root / "images" / "train" / f"{image.stem}_{k:03d}.jpg").symlink_to(image)
            if label.exists():
                (root / "labels" / "train" / f"{image.stem}_{k:03d}.txt").symlink_to(label)
    names = (COCO128 / "split.yaml").read_text().split("names:", 1)[1]
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: {COCO128 / 'eval.txt'}\nnames:{names}")
    return yaml


def consecutive_windows(dataset, order, images: int, window: int):
    """The draw before session 27: window ``w`` is files ``w * images`` onwards in file order (wrapping; ``order``
    unused)."""
    start = window * images % len(dataset)
    if not start:
        return dataset
    subset = Subset(dataset, [(start + i) % len(dataset) for i in range(min(images, len(dataset)))])
    subset.collate_fn = dataset.collate_fn
    return subset


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--speed-up", type=float, default=1.5)
    p.add_argument("--frames", type=int, default=30, help="consecutive copies of each calibration image")
    p.add_argument("--windows", choices=("spread", "consecutive"), default="spread")
    args = p.parse_args()
    if args.windows == "consecutive":
        calibration._windowed = consecutive_windows
    with tempfile.TemporaryDirectory() as tmp:
        data, out = ordered_dataset(Path(tmp), args.frames), Path(tmp) / "pruned.pt"
        start = time.perf_counter()
        prune_yolo(str(MODEL), speed_up=args.speed_up, data=str(data), save=out, verbose=False)
        took = time.perf_counter() - start
        metrics = YOLO(out).val(data=str(COCO128 / "split.yaml"), imgsz=640, batch=16, device="cpu", plots=False,
                                verbose=False)
    print(f"{vars(args)}: mAP50-95 {metrics.box.map:.4f} ({took:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
