"""Progressive module replacing on the real COCO yolov8n: the fading student runs mixed with the teacher's layers.

Few-sample compression by grafting (Shen et al. 2021, progressive network grafting) and BERT-of-Theseus (Xu et al.
2020, progressive module replacing) train the compressed network's blocks inside the original one: a student block
learns to serve the teacher's own downstream layers and to read the teacher's upstream features, before the
students take over. Here, while the doomed channels fade (the library's fade over the first 30% of the steps), every
yaml layer of each training forward is the student's with probability ``p`` and the teacher's otherwise (drawn per
step), ``p`` rising linearly from ``--start`` to 1 as the fade completes; the distillation targets, the feature
mimicking (on the student's layers that ran) and everything after the fade are the library's (``cut-after-fade``,
Adam's moments carried over). ``--start 1`` is the control, the library's ``distill_while_fading`` on the distilled
ranking's channels. Run from the repository root with ``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_module_replacing.py --speed-up 1.5 --start 0.5
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_module_replacing.py --speed-up 1.5 --start 1   # the control
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
from real_ablations import SHARED, evaluate  # noqa: E402
from real_neck_depth import ranked  # noqa: E402
from torch import nn  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from yolo_prune.pruning.summary import ModelStats  # noqa: E402
from yolo_prune.recovery import distillation, fading  # noqa: E402
from yolo_prune.recovery.calibration import CalibrationImages  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(SHARED / "models" / "yolov8n-coco.pt"))
    p.add_argument("--data", default=str(SHARED / "datasets" / "coco128" / "split.yaml"))
    p.add_argument("--speed-up", type=float, default=1.5)
    p.add_argument("--start", type=float, default=0.5, help="share of student layers at the first step (1: control)")
    p.add_argument("--epochs", type=int, default=distillation.EPOCHS)
    p.add_argument("--seed", type=int, default=0, help="offset of the augmentation seeds (another draw of the images)")
    return p.parse_args()


class ModuleReplacing:
    """The student's forward runs each yaml layer as the student's or, with probability ``1 - p``, the teacher's.

    ``p`` follows the fade: ``start`` at progress 0, 1 once the fade is complete. ``used`` holds the student's layer
    indices of the latest forward, so the feature term compares only blocks that ran this step.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, fade: fading.ChannelFade, start: float) -> None:
        self.student, self.fade, self.start = student, fade, start
        self.teacher = copy.deepcopy(teacher).float().to(memory_format=torch.channels_last)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.train()  # raw training-mode head outputs, as distill's student gives them
        for m in self.teacher.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        self.used: set[int] | None = None
        self.rng = random.Random(0)

    def __enter__(self) -> ModuleReplacing:
        self.student._predict_once = self._mixed  # this instance only, for the fade
        return self

    def __exit__(self, *exc) -> None:
        del self.student._predict_once
        self.used = None

    def _mixed(self, x, profile=False, embed=None):
        p = self.start + (1 - self.start) * self.fade.progress
        y, self.used = [], set()
        for mine, theirs in zip(self.student.model, self.teacher.model):
            if mine.f != -1:
                x = y[mine.f] if isinstance(mine.f, int) else [x if j == -1 else y[j] for j in mine.f]
            if self.rng.random() < p:
                self.used.add(mine.i)
                x = mine(x)
            else:
                x = theirs(x)
            y.append(x if mine.i in self.student.save else None)
        return x


def use_feature_filter(replacing: list[ModuleReplacing]) -> None:
    """The feature term over the student's blocks that ran in the latest forward (stale taps left out)."""
    library = distillation.feature_loss

    def filtered(student: dict, teacher: dict, kept: dict) -> torch.Tensor:
        used = replacing[0].used if replacing else None
        if used is not None:
            student = {name: out for name, out in student.items() if int(name.split(".")[1]) in used}
        return library(student, teacher, kept) if student else torch.zeros(())

    distillation.feature_loss = filtered


def main() -> None:
    args = parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    source = YOLO(args.model).model.float().eval()
    scanned = CalibrationImages(args.data, 320, distillation.IMAGES, mosaic=distillation.MOSAIC)
    images = lambda epoch: scanned.draw(seed=args.seed + epoch)  # noqa: E731
    start = time.perf_counter()
    kept = ranked(source, 1 / args.speed_up)
    student, moments, active = copy.deepcopy(source), {}, []
    use_feature_filter(active)
    fade_epochs = fading.fade_epochs(args.epochs)
    with fading.ChannelFade(student, kept) as fade, ModuleReplacing(student, source, fade, args.start) as mixing:
        active.append(mixing)
        distillation.distill(student, source, images, fade_epochs, kept=kept, verbose=False, fade=fade,
                             total_epochs=args.epochs, moments=moments)
    active.clear()
    moments = fading.cut_moments(student, kept, moments)
    pruned, kept = fading.cut_faded(student, kept)
    distillation.distill(pruned, source, images, args.epochs - fade_epochs, kept=kept, verbose=False,
                         first_epoch=fade_epochs, total_epochs=args.epochs, moments=moments)
    score, gflops = evaluate(pruned, args.model, args.data), ModelStats.of(pruned, 640).gflops
    settings = {k: v for k, v in vars(args).items() if k not in ("model", "data")}
    print(f"{settings}: mAP50-95 {score:.4f}, {gflops:.2f} GFLOPs ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
