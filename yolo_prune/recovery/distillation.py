"""Label-free distillation: a short training of the pruned model towards the unpruned one.

Needs images only: the unpruned model's own outputs are the targets. Per anchor, the class logits learn the
teacher's sigmoid scores (binary cross-entropy with soft targets, summed and divided by the teacher's total score as
Ultralytics' detection loss does, so the many background anchors do not drown the objects) and the box branch the
teacher's box distribution (KL divergence over the DFL bins, or L1 for heads without DFL such as YOLO26), weighted by
the teacher's confidence. End-to-end heads distil both branches. Given the pruning's channel map, every convolution
block's output also mimics the teacher's on the channels it kept (feature mimicking, as in few-sample
compression: MiR, Wang et al. 2022), which gives every layer a target instead of the head alone. Each epoch draws a
fresh training-style augmentation, mosaic included (seeded), of the next 64 training images in a fixed random order
(the same ones when the dataset has no more; ``distillation_images``). BatchNorm statistics stay frozen (a
few images cannot re-estimate them), and so does the DFL convolution; every other weight trains. ``prune_yolo``
distils the full-width model while the pruned channels fade out (``fading``).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import Conv
from ultralytics.utils import TQDM

from ..errors import PruneError
from .calibration import CalibrationImages, ultralytics_loss

if TYPE_CHECKING:
    from .fading import ChannelFade

LEARNING_RATE = 1e-4  # Adam peak, one-cycle: 5e-4 lowered the real yolov8n's mAP (0.248 -> 0.183 after 6 epochs)
EPOCHS = 30  # real yolov8n, fading, speed_up=1.5: 20 -> 30: 0.269 -> 0.289 for 1.5x the time (~5 of the 10 minutes)
IMAGES = 64
# Weight of the feature term against the head term. Real yolov8n, fading, exponent 1.5, mAP50-95 at speed_up=1.5 for
# 1 / 5 / 20 / 50 / 100: 0.242 / 0.250 / 0.269 / 0.271 / 0.261; at 1.25, 5 -> 20: 0.401 -> 0.403 (without fading, the
# first measurement: 1 -> 5: 0.139 -> 0.165). The mimicked blocks, not the head's outputs, carry the recovery.
FEATURE_WEIGHT = 20.0
# Temperature of the class scores' soft targets (both sides' logits divided by it, the loss scaled by its square, as
# in Hinton et al. 2015); 1: the teacher's own scores. Real yolov8n, speed_up=1.5: 1 -> 2: 0.308 -> 0.276 (session 26):
# softened sigmoid targets put the weight on the background anchors' logits.
CLASS_TEMPERATURE = 1.0
MOSAIC = 1.0  # probability of mosaic in the distillation images (real yolov8n, speed_up=1.5: 0.163 -> 0.177)
# Global ranking exponent (score / cost ** it) for a prune that is distilled: distillation recovers damage, so the
# allocation leans further towards compute saved (real yolov8n with fading, mAP50-95 at exponent 1 -> 1.5:
# speed_up=1.25 0.374 -> 0.401, 1.5 0.203 -> 0.250; 0.5 at 1.5: 0.067; data-free 1.25: 0.321 -> 0.325). With the stem
# kept whole, 1.5 -> 1.75: 1.25 0.424 -> 0.424, 1.5 0.292 -> 0.293, 2.0 0.065 / 0.071 -> 0.084 / 0.089 (two draws
# each); 1.0 and 2.0 at 2.0: 0.002 and 0.050 (BENCHMARKS.md, session 16).
DISTILLED_COST_EXPONENT = 1.75
# Layers whose output is finer than this stride (the stem, before the P3 features) keep every channel in a distilled
# prune: distillation re-learns narrowed later layers, but what the first layers drop is lost for every layer after
# them. Real yolov8n, mAP50-95 through prune_yolo: speed_up=1.25 0.405 -> 0.426, 1.5 0.287 -> 0.291, 2.0 0.003 ->
# 0.065 (at 2.0, the backbone cut alone, 11% of the GFLOPs, had left 0.006; protecting up to stride 8: 0.024).
DISTILLED_PROTECTED_STRIDE = 8
TASK_OUTPUTS = ("mask_coefficient", "kpts", "angle")  # per-anchor outputs of the segment, pose and OBB heads
# torch's own thread count, read before any Ultralytics val/train/predict in this process lowers it to cores - 1
# (select_device leaves a core to its data-loading workers; distillation loads in its own thread): on 2 cores the
# real yolov8n's distillation takes 197-225 s with two threads and 323-347 s with one (BENCHMARKS.md, session 23).
CPU_THREADS = torch.get_num_threads()


def distillation_loss(student: dict, teacher: dict, reg_max: int) -> torch.Tensor:
    """Distance between the raw training-mode outputs of a student and a teacher detection head.

    Args:
        student: The student's raw predictions (``boxes``, ``scores``; or ``one2many``/``one2one`` dicts of them; or a
            classifier's logits).
        teacher: The teacher's, same layout.
        reg_max: DFL bins per box side (1: direct regression).

    Returns:
        A scalar loss.

    Examples:
        >>> loss = distillation_loss(student(images), teacher(images), reg_max=16)
    """
    if isinstance(student, torch.Tensor):  # a classifier's logits: KL divergence from the teacher's class distribution
        return F.kl_div(F.log_softmax(student, 1), F.log_softmax(teacher, 1), log_target=True, reduction="batchmean")
    pairs = [(student[k], teacher[k]) for k in ("one2many", "one2one")] if "one2one" in student else [(student, teacher)]
    return sum(_branch_loss(s, t, reg_max) for s, t in pairs)


def _branch_loss(student: dict, teacher: dict, reg_max: int) -> torch.Tensor:
    scores = teacher["scores"].sigmoid()
    t = CLASS_TEMPERATURE
    target = (teacher["scores"] / t).sigmoid()
    cls = F.binary_cross_entropy_with_logits(student["scores"] / t, target, reduction="sum") * t * t
    cls = cls / scores.sum().clamp_min(1.0)  # per unit of teacher score, as Ultralytics' own loss normalises
    weight = scores.max(1).values  # (B, anchors): the teacher's confidence
    b, _, anchors = student["boxes"].shape
    if reg_max > 1:
        s = F.log_softmax(student["boxes"].view(b, 4, reg_max, anchors), 2)
        t = F.log_softmax(teacher["boxes"].view(b, 4, reg_max, anchors), 2)
        box = F.kl_div(s, t, log_target=True, reduction="none").sum(2).mean(1)
    else:
        box = (student["boxes"] - teacher["boxes"]).abs().mean(1)
    return cls + (box * weight).sum() / weight.sum().clamp_min(1.0) + _task_loss(student, teacher, weight)


def _task_loss(student: dict, teacher: dict, weight: torch.Tensor) -> torch.Tensor | float:
    """Mask coefficients, keypoints and angles per anchor (weighted by the teacher's confidence), and the mask
    prototypes, each as a squared error relative to the teacher's variance."""
    loss = 0.0
    for key in TASK_OUTPUTS:
        if key in student:
            t = teacher[key]
            error = (student[key] - t).pow(2).mean(1) / t.var(dim=(0, 2)).mean().clamp_min(1e-6)
            loss = loss + (error * weight).sum() / weight.sum().clamp_min(1.0)
    if "proto" in student:
        s, t = (p[0] if isinstance(p, tuple) else p for p in (student["proto"], teacher["proto"]))  # Proto26: + semseg
        if s.requires_grad:  # the one-to-one branch holds a detached copy
            loss = loss + F.mse_loss(s, t) / t.var().clamp_min(1e-6)
    return loss


def feature_loss(student: dict, teacher: dict, kept: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean squared error of each tapped student block against the teacher channels it kept, per unit of variance.

    Args:
        student: Block name -> the student's output.
        teacher: Block name -> the teacher's output (all source channels).
        kept: BatchNorm name -> the source channels that block's output kept (``prune_with_channel_map``).

    Returns:
        The mean over blocks of ``mse(student, teacher[:, kept]) / var(teacher[:, kept])``.

    Examples:
        >>> loss = feature_loss(student_taps.outputs, teacher_taps.outputs, kept)
    """
    pairs = kept_pairs(student, teacher, kept)
    return torch.stack([F.mse_loss(out, target) / target.var().clamp_min(1e-6) for out, target in pairs]).mean()


def kept_pairs(
    student: dict, teacher: dict, kept: dict[str, torch.Tensor]
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each tapped block's student output and the teacher's, both on the channels the block keeps (``feature_loss``)."""
    for name, out in student.items():
        channels = kept[f"{name}.bn"]
        if out.shape[1] != len(channels):  # a full-width student (fading): compare the channels that stay
            out = out[:, channels]
        yield out, teacher[name][:, channels]


class FeatureTaps:
    """Forward hooks that keep the latest output of some of a model's blocks, by module name; a context manager."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        """Hook ``model``'s modules ``names``; ``outputs`` maps each name to its latest output."""
        self.outputs: dict[str, torch.Tensor] = {}
        modules = dict(model.named_modules())
        self._handles = [modules[name].register_forward_hook(self._keeper(name)) for name in names]

    def _keeper(self, name: str):
        def hook(module: nn.Module, args, output: torch.Tensor) -> None:
            self.outputs[name] = output

        return hook

    def __enter__(self) -> FeatureTaps:
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self.outputs.clear()


def mimicked_blocks(student: nn.Module, kept: dict[str, torch.Tensor]) -> list[str]:
    """Every Ultralytics ``Conv`` block of ``student`` whose kept source channels are known."""
    return [name for name, m in student.named_modules() if isinstance(m, Conv) and f"{name}.bn" in kept]


def distill(
    student: nn.Module,
    teacher: nn.Module,
    batches_for_epoch: Callable[[int], list[dict]],
    epochs: int,
    lr: float = LEARNING_RATE,
    kept: dict[str, torch.Tensor] | None = None,
    feature_weight: float = FEATURE_WEIGHT,
    verbose: bool = True,
    fade: ChannelFade | None = None,
    label_weight: float = 0.0,
    first_epoch: int = 0,
    total_epochs: int | None = None,
    moments: dict[str, dict[str, torch.Tensor]] | None = None,
) -> list[float]:
    """Train ``student`` in place towards ``teacher``'s raw head outputs and, given ``kept``, its block outputs.

    Args:
        student: The pruned detection model (float32, CPU); left in eval mode.
        teacher: The unpruned model; not modified.
        batches_for_epoch: Epoch index -> image batches (``img`` float in [0, 1]), e.g. a fresh augmentation each.
        epochs: Passes over the images in this call.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        kept: BatchNorm name -> kept source channels (from ``prune_with_channel_map``): adds ``feature_loss`` over
            every ``Conv`` block (on the channels each kept). None: head outputs only.
        feature_weight: Weight of the feature term.
        verbose: Show a progress bar.
        fade: A ``fading.ChannelFade`` on the full-width ``student``, advanced before every step.
        label_weight: Weight of Ultralytics' own loss on the batches' labels (per image), added where they have any.
        first_epoch: The epoch this call starts at, in a run split over several calls (e.g. before and after a cut):
            the images (``batches_for_epoch``), the learning-rate schedule and the fade continue from there.
        total_epochs: The epochs of that whole run (None: ``first_epoch + epochs``).
        moments: Adam's state by parameter name, for a run split over several calls: a non-empty dict starts the
            optimizer from it (the parameters whose shapes match, e.g. cut by ``fading.cut_moments``), and any dict
            is filled with the state the call ends with.

    Returns:
        The mean loss of every epoch.

    Raises:
        PruneError: If the loss becomes NaN or infinite (a source model or images with non-finite outputs).

    Examples:
        >>> distill(pruned, source, lambda e: calibration_batches("data.yaml", 320, seed=e), epochs=20)
    """
    teacher = copy.deepcopy(teacher).float().cpu()
    params = _trainable(student)
    first = batches_for_epoch(first_epoch)
    optimizer = torch.optim.Adam(params, lr=lr)
    if moments:
        _load_moments(optimizer, student, moments)
    steps = max(1, (total_epochs or first_epoch + epochs) * len(first))
    schedule = _one_cycle(optimizer, steps, start=first_epoch * len(first))
    reg_max = getattr(student.model[-1], "reg_max", 16)
    blocks = mimicked_blocks(student, kept) if kept and feature_weight else []
    losses = []
    desc = "distill (fading)" if fade is not None else "distill"
    bar = TQDM(range(first_epoch, first_epoch + epochs), desc=desc, disable=not verbose)
    labels = ultralytics_loss(student) if label_weight else contextlib.nullcontext()
    with (
        every_core(),
        channels_last(student, teacher),
        FeatureTaps(student, blocks) as student_taps,
        FeatureTaps(teacher, blocks) as teacher_taps,
        labels,
    ):
        for epoch in bar:
            batches = first if epoch == first_epoch else batches_for_epoch(epoch)
            total = 0.0
            for i, batch in enumerate(batches[: len(first)]):
                if fade is not None:
                    fade.advance(epoch * len(first) + i, steps)
                with torch.no_grad():
                    target = raw_outputs(teacher, batch["img"])
                outputs = raw_outputs(student, batch["img"])
                loss = distillation_loss(outputs, target, reg_max)
                if label_weight and len(batch.get("cls", ())):
                    loss = loss + label_weight * student.loss(batch, outputs)[0].sum() / len(batch["img"])
                if blocks:
                    loss = loss + feature_weight * feature_loss(student_taps.outputs, teacher_taps.outputs, kept)
                _check_finite(loss, epoch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item()
            losses.append(total / len(batches))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    for p in params:
        p.grad = None
    if moments is not None:
        moments.clear()
        moments.update(_named_moments(optimizer, student))
    student.eval()
    return losses


def _check_finite(loss: torch.Tensor, epoch: int) -> None:
    """Stop with a clear message when the loss is NaN or infinite, before the weights are spoiled by it."""
    if not torch.isfinite(loss):
        raise PruneError(
            f"Distillation stopped at epoch {epoch + 1}: its loss became {loss.item()}. The source model or the images "
            "give non-finite outputs; check that 'yolo val' of the source model works on these images, or prune "
            "without distillation (distill=False)."
        )


@contextlib.contextmanager
def channels_last(*models: nn.Module):
    """Keep ``models``' weights channels-last inside the block (activations follow), contiguous again after it.

    oneDNN's channels-last convolutions make a distillation step 15% faster on a 2-core AVX-512 CPU (the real
    yolov8n's speed_up=1.5 prune and its teacher, 8 images at 320 px: median 1.08 s against 1.28 s for three steps;
    BENCHMARKS.md, session 30); the saved model is contiguous, as a stock one is.
    """
    for model in models:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for model in models:
            model.to(memory_format=torch.contiguous_format)


@contextlib.contextmanager
def every_core():
    """Let torch use at least ``CPU_THREADS`` threads inside the block; the caller's count is restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(before, CPU_THREADS))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _named_moments(optimizer: torch.optim.Adam, model: nn.Module) -> dict[str, dict[str, torch.Tensor]]:
    """Adam's state of every trained parameter of ``model``, by parameter name."""
    return {name: dict(optimizer.state[p]) for name, p in model.named_parameters() if p in optimizer.state}


def _load_moments(optimizer: torch.optim.Adam, model: nn.Module, moments: dict[str, dict[str, torch.Tensor]]) -> None:
    """Start ``optimizer`` from Adam states by parameter name (those whose shapes match ``model``'s)."""
    for name, p in model.named_parameters():
        state = moments.get(name)
        if p.requires_grad and state is not None and state["exp_avg"].shape == p.shape:
            optimizer.state[p] = {k: v.clone() for k, v in state.items()}


def _one_cycle(optimizer: torch.optim.Optimizer, steps: int, start: int = 0):
    """One-cycle schedule peaking at each parameter group's rate, warming up over 5% of the steps (at least two),
    advanced to step ``start``; a constant rate for under four steps."""
    if steps < 4:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    warmup = min(0.5, max(0.05, 2 / steps))
    peaks = [group["lr"] for group in optimizer.param_groups]
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, peaks, total_steps=steps, pct_start=warmup)
    with warnings.catch_warnings():  # advancing the schedule before any optimizer step is the point here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start):
            schedule.step()
    return schedule


def _trainable(model: nn.Module) -> list[nn.Parameter]:
    """Every parameter but the fixed DFL convolution's (checkpoints may store them frozen)."""
    head = model.model[-1]
    frozen = {id(p) for p in head.dfl.parameters()} if isinstance(getattr(head, "dfl", None), nn.Module) else set()
    params = []
    for p in model.parameters():
        p.requires_grad_(id(p) not in frozen)
        if id(p) not in frozen:
            params.append(p)
    return params


def raw_outputs(model: nn.Module, x: torch.Tensor) -> dict:
    """Training-mode head outputs with BatchNorm in eval mode (statistics frozen)."""
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return model(x)


def distillation_images(
    data: str, imgsz: int, task: str = "detect", verbose: bool = True
) -> Callable[[int], list[dict]]:
    """Epoch -> the batches ``distill`` trains on: ``IMAGES`` training images of ``data`` at half ``imgsz``, mosaic on
    (labels unread), a fresh seeded augmentation each epoch. The dataset is scanned (and its scan logged) once.

    Epoch ``e`` takes the ``e``-th window of ``IMAGES`` images, so a larger dataset is walked through at the same
    compute, and one of ``IMAGES`` images or fewer is used whole in every epoch. At the same 240 steps, more distinct
    images distil as well or better (real yolov8n, mAP50-95 at ``speed_up=1.5`` with 16 / 32 / 64 images: 0.274 /
    0.278 / 0.292; at 1.25 with 32 / 64: 0.424 / 0.424). A larger dataset is walked in a fixed random order, so each
    window is spread over it even when its files are consecutive video frames (the 64 calibration images as 30
    consecutive frames each, 1.5: windows of neighbouring files 0.269, spread windows 0.295; the 64 images: 0.307).

    Half the size costs a quarter of the time; classifiers (224 px, no mosaic) distil at their own size. Real COCO
    yolov8n (640 px), from the data-free prune: ``speed_up=1.25`` 0.321 -> 0.368 mAP50-95, ``speed_up=1.5`` 0.039 ->
    0.184, in 2-4 minutes on 2 CPU cores (with ``fading.distill_while_fading``: 0.374 / 0.203).

    Args:
        data: Dataset yaml (classification: the dataset folder).
        imgsz: The pruning image size.
        task: The model's task.
        verbose: Let Ultralytics log the dataset scan.

    Returns:
        A function of the epoch index, as ``distill``'s ``batches_for_epoch``.

    Examples:
        >>> distill(pruned, source, distillation_images("data.yaml", imgsz=640), EPOCHS, kept=kept)
    """
    size = imgsz if task == "classify" else max(32, imgsz // 64 * 32)
    images = CalibrationImages(data, size, IMAGES, mosaic=MOSAIC, task=task, verbose=verbose)
    return lambda epoch: images.draw(seed=epoch, window=epoch)
