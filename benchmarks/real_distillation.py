"""Distillation ablations on the real COCO yolov8n: one recovery choice changed at a time, no labels, no fine-tune.

Prunes the real checkpoint with the data-free defaults (damage score, global per-GFLOP ranking, compensation) to
``--speed-up``, distils it on the calibration images of ``--data`` with ``yolo_prune.recovery.distillation.distill``
and measures mAP50-95 at 640 px on the measuring split. ``--steps N`` instead reaches the speed-up in N prune-and-
distil steps (each pruning the distilled model of the step before; the features always mimic the unpruned model).
``--fade SHARE`` distils the full-width model while the channels the prune drops fade into their expectation over
that share of the steps, then removes them (``recovery.fading``, the library default with ``SHARE`` 0.3; with
``--cut-after-fade`` they are removed as soon as the fade ends and the narrow model distils on, Adam's moments cut
and carried over unless ``--fresh-moments``); ``--cap``
limits the share of any slot's channels the global ranking removes, ``--cost-exponent`` how strongly it prefers
cheap channels (damage / cost ** E) and ``--protected-stride S`` keeps the layers whose output stride is below S whole
(the library's distilled default: 8, the stem) and ``--layer-adaptive`` ranks each group's damage scores as LAMP
shares (``widths.layer_adaptive_scores``); ``--mixup P`` blends images as Ultralytics' mixup and
``--label-weight W`` adds Ultralytics' detection loss on the calibration images' labels; ``--only FIRST-LAST`` cuts
only those yaml layers (as the ranking chose them; the rest stays whole), ``--batch`` sets the images per optimizer
step, ``--mimic REGEX`` lets only the blocks whose BatchNorm names match mimic the teacher and ``--seed K`` draws
other augmentations of the same images (epoch ``e`` uses seed ``K + e``; the library uses ``e``) and ``--images N``
distils on N of the calibration images (default 64; fewer: the first N of a fixed random order since session 27, the
first N files before); ``--tap bn`` mimics each block's BatchNorm output (before
the activation, as Heo et al. 2019) and ``--channel-norm`` weighs each channel's error by its own variance;
``--stagger S`` fades the doomed channels one after another instead of all together (each over ``1 / (1 + S)`` of
the fade; ``--stagger-by variance``: within each block, the lowest output variance first; ``depth``: block by block,
the earliest yaml layer first, as progressive grafting hands blocks over); ``--optimizer sgd`` trains with SGD
(Nesterov momentum 0.9) at ``--lr`` instead of Adam (``scaled-adam``: Adam with each tensor's step scaled by its
size), ``--beta2`` sets Adam's second-moment decay,
``--temperature T`` softens the class scores' targets, ``--flat-lr-scale K`` trains the 1-D parameters (BatchNorm
scales and shifts, biases) at K times the rate and ``--cut-lr-exponent E`` each narrowed block's weights at
(source width / kept width) ** E times it; ``--cwd-weight W`` adds channel-wise distillation (Shu et al. 2021: each
kept channel's map softmaxed over its positions at temperature ``--cwd-tau``, KL to the teacher's) to the feature
term at weight W; ``--foreground A`` weighs each position's feature error by 1 + A x the teacher's confidence there
(object regions first, as detection distillation does with boxes: Li et al. 2017, FGD Yang et al. 2022; here the
teacher's own scores, no labels) and ``--multiscale LO,HI`` resizes each batch to a random multiple of 32 in that
range; ``--carry-weight W`` adds W x how well each cut block's kept channels predict the teacher's removed ones
through a learned 1x1 projector (ridge-fitted on the teacher at the start, trained at ``--carry-lr-scale`` x the
rate, not saved; FitNets' hint regressor aimed at what the cut takes away). Run from the
repository root with ``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_distillation.py --speed-up 1.5 --feature-weight 0   # head only
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_distillation.py --speed-up 1.5                      # defaults
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_distillation.py --speed-up 1.5 --steps 3 --epochs 10
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_distillation.py --speed-up 1.5 --fade 0.5           # fading
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import re
import time
from dataclasses import replace

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from real_ablations import SHARED, evaluate  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from yolo_prune.pruning import widths  # noqa: E402
from yolo_prune.pruning.summary import ModelStats  # noqa: E402
from yolo_prune.pruning.channel_map import batchnorms  # noqa: E402
from yolo_prune.pruning.compensation import compensate_removed_channels  # noqa: E402
from yolo_prune.pruning.core import PruneOptions, prune_with_channel_map  # noqa: E402
from yolo_prune.recovery import distillation, fading  # noqa: E402
from yolo_prune.recovery.calibration import CalibrationImages  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(SHARED / "models" / "yolov8n-coco.pt"))
    p.add_argument("--data", default=str(SHARED / "datasets" / "coco128" / "split.yaml"))
    p.add_argument("--speed-up", type=float, default=1.5)
    p.add_argument("--epochs", type=int, default=distillation.EPOCHS, help="per step")
    p.add_argument("--imgsz", type=int, default=320, help="distillation image size")
    p.add_argument("--feature-weight", type=float, default=distillation.FEATURE_WEIGHT, help="0: head outputs only")
    p.add_argument("--mosaic", type=float, default=distillation.MOSAIC)
    p.add_argument("--mixup", type=float, default=0.0)
    p.add_argument("--label-weight", type=float, default=0.0, help="weight of Ultralytics' loss on the labels")
    p.add_argument("--lr", type=float, default=distillation.LEARNING_RATE)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--cost-exponent", type=float, default=1.0, help="ranking: damage / cost ** this")
    p.add_argument("--only", default="", help="yaml layers FIRST-LAST the prune may cut (the others stay whole)")
    p.add_argument("--batch", type=int, default=0, help="images per optimizer step (0: the calibration batch)")
    p.add_argument("--fade", type=float, default=0.0, help="fade share of the steps (0: cut first, then distil)")
    p.add_argument("--mimic", default="", help="regex: only blocks whose BatchNorm name matches mimic the teacher")
    p.add_argument("--cap", type=float, default=widths.MAX_GROUP_RATIO, help="most of a slot the ranking removes")
    p.add_argument("--protected-stride", type=int, default=0, help="layers whose output stride is below this stay whole")
    p.add_argument("--layer-adaptive", action="store_true", help="rank each group's damage as LAMP shares")
    p.add_argument("--seed", type=int, default=0, help="offset of the augmentation seeds (another draw of the images)")
    p.add_argument("--tap", choices=("output", "bn"), default="output",
                   help="what mimics: each Conv block's output, or its BatchNorm's (before the activation)")
    p.add_argument("--channel-norm", action="store_true", help="feature error per unit of each channel's variance")
    p.add_argument("--images", type=int, default=distillation.IMAGES, help="distinct calibration images distilled on")
    p.add_argument("--cut-after-fade", action="store_true",
                   help="with --fade: cut the faded channels as soon as the fade ends and distil the narrow model on")
    p.add_argument("--stagger", type=float, default=0.0,
                   help="ordered fade: each block's doomed channels fade one after another, lowest variance first "
                        "(0: all together; S: each channel fades over 1 / (1 + S) of the fade)")
    p.add_argument("--stagger-by", choices=("variance", "depth"), default="variance",
                   help="--stagger order: each block's channels by output variance, or whole blocks by yaml layer")
    p.add_argument("--temperature", type=float, default=distillation.CLASS_TEMPERATURE,
                   help="temperature of the class scores' soft targets (distillation.CLASS_TEMPERATURE)")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam's second-moment decay (torch's default 0.999)")
    p.add_argument("--optimizer", choices=("adam", "sgd", "scaled-adam"), default="adam",
                   help="sgd: SGD with Nesterov momentum 0.9 in place of the library's Adam (at --lr); scaled-adam: "
                        "each tensor's Adam step times its RMS over the median tensor's (both: fresh moments at the "
                        "cut, --beta2 unused)")
    p.add_argument("--flat-lr-scale", type=float, default=1.0,
                   help="peak rate of the 1-D parameters (BatchNorm scales and shifts, biases) x this")
    p.add_argument("--cut-lr-exponent", type=float, default=0.0,
                   help="each Conv block's weights at (source / kept output width) ** this x the rate (at most 8x)")
    p.add_argument("--cwd-weight", type=float, default=0.0,
                   help="add channel-wise distillation (each channel's spatial softmax, KL) x this to the feature term")
    p.add_argument("--cwd-tau", type=float, default=4.0, help="temperature of the channel-wise spatial softmax")
    p.add_argument("--foreground", type=float, default=0.0,
                   help="feature error at each position x (1 + this x the teacher's confidence there)")
    p.add_argument("--multiscale", default="", help="LO,HI: each batch resized to a random multiple of 32 in it")
    p.add_argument("--carry-weight", type=float, default=0.0,
                   help="add x this: the teacher's removed channels, predicted from each block's kept ones by a "
                        "learned 1x1 projector (dropped after), to the feature term")
    p.add_argument("--carry-lr-scale", type=float, default=10.0, help="the projectors' rate x the distillation's")
    p.add_argument("--fresh-moments", action="store_true",
                   help="with --cut-after-fade: a fresh Adam after the cut (the library carries the moments over)")
    return p.parse_args()


def _options(gflops_fraction: float, cost_exponent: float = 1.0, protected_stride: int = 0,
             layer_adaptive: bool = False) -> PruneOptions:
    options = PruneOptions(0.3, "damage", global_pruning=True, cost_exponent=cost_exponent,
                           protected_stride=protected_stride, layer_adaptive=layer_adaptive)
    return replace(options, gflops_fraction=gflops_fraction)


def prune_step(model, gflops_fraction: float, cost_exponent: float, protected_stride: int = 0):
    pruned, kept = prune_with_channel_map(model, _options(gflops_fraction, cost_exponent, protected_stride))
    compensate_removed_channels(pruned, model, kept)
    return pruned, kept


def faded(source, args: argparse.Namespace, images):
    """Distil a full-width copy while the doomed channels fade over ``args.fade`` of the steps, then prune them."""
    options = _options(1 / args.speed_up, args.cost_exponent, args.protected_stride, args.layer_adaptive)
    _, kept = prune_with_channel_map(source, options)
    if args.only:
        kept = _restricted(kept, source, args.only)
    student = copy.deepcopy(source)
    if args.carry_weight:
        use_carry(args.carry_weight, kept, source, args.carry_lr_scale)
    fade_epochs = fading.fade_epochs(args.epochs, args.fade) if args.cut_after_fade else args.epochs
    moments = None if args.fresh_moments or args.optimizer != "adam" else {}

    def train(model, kept: dict, first: int, epochs: int, fade=None) -> None:
        if args.cut_lr_exponent:
            use_cut_lr(model, kept, source, args.cut_lr_exponent)
        distillation.distill(model, source, images, epochs, lr=args.lr, kept=_mimicked(kept, args.mimic),
                             feature_weight=args.feature_weight, verbose=False, fade=fade,
                             label_weight=args.label_weight, first_epoch=first, total_epochs=args.epochs,
                             moments=moments)

    if args.stagger:
        fade = StaggeredFade(student, kept, args.fade, args.stagger, args.stagger_by)
    else:
        fade = fading.ChannelFade(student, kept, share=args.fade)
    with fade:
        train(student, kept, 0, fade_epochs, fade)
    if fade_epochs == args.epochs:
        return fading.cut_faded(student, kept)[0]
    if moments is not None:
        moments = fading.cut_moments(student, kept, moments)
    pruned, kept = fading.cut_faded(student, kept)
    train(pruned, kept, fade_epochs, args.epochs - fade_epochs)
    return pruned


class StaggeredFade(fading.ChannelFade):
    """A fade in which the doomed channels fade one after another: in each block by output variance, lowest first,
    or block by block from the first yaml layer (``by="depth"``)."""

    def __init__(self, model, kept, share: float, stagger: float, by: str = "variance") -> None:
        self.stagger, self.by = stagger, by
        last = len(model.model) - 1
        self.depth = {m: int(n.split(".")[1]) / last for n, m in model.named_modules() if n.count(".") >= 1}
        super().__init__(model, kept, share)

    def _amounts(self, block, doomed: torch.Tensor):
        variance = fading.block_moments(block)[1][doomed][None, :, None, None]
        if self.by == "depth":
            rank = torch.full_like(variance, self.depth[block])
        else:  # 0 for the doomed channel of lowest variance, 1 for the highest
            rank = variance.flatten().argsort().argsort().double().view_as(variance) / max(1, len(doomed) - 1)
        return lambda progress: ((1 + self.stagger) * progress - self.stagger * rank).clamp(0, 1)


def use_sgd() -> None:
    """Distil with SGD (Nesterov momentum 0.9) where the library builds Adam (this process trains nothing else)."""
    torch.optim.Adam = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


class ScaledAdam(torch.optim.Adam):
    """Adam whose step on each tensor is scaled by that tensor's RMS over the median tensor's (0.1x to 10x, fixed when
    built): a static, LAMB-like trust ratio, so every tensor moves by about the same share of its own size."""

    def __init__(self, params, lr: float) -> None:
        params = list(params)
        super().__init__(params, lr=lr)
        rms = torch.stack([p.detach().pow(2).mean().sqrt() for p in params])
        self.scales = dict(zip(params, (rms / rms.median().clamp_min(1e-8)).clamp(0.1, 10).tolist()))

    @torch.no_grad()
    def step(self, closure=None):
        before = {p: p.clone() for p in self.scales}
        loss = super().step(closure)
        for p, scale in self.scales.items():
            p.copy_(before[p] + scale * (p - before[p]))
        return loss


def use_beta2(beta2: float) -> None:
    """Distil with Adam's second moments decaying at ``beta2`` (the first moments follow the one-cycle schedule)."""
    adam = torch.optim.Adam
    torch.optim.Adam = lambda params, lr: adam(params, lr=lr, betas=(0.9, beta2))


def use_flat_lr_scale(scale: float) -> None:
    """Distil with the 1-D parameters (BatchNorm affine, biases) in their own Adam group at ``scale`` x the rate: at
    1e-4, 240 Adam steps move a weight by ~0.01 at most, a quarter of a typical convolution weight but 1% of a
    BatchNorm scale (~0.5-3) or a class bias (~11)."""
    adam = torch.optim.Adam

    def grouped(params, lr):
        params = list(params)
        flat = [p for p in params if p.dim() == 1]
        rest = [p for p in params if p.dim() != 1]
        return adam([{"params": rest, "lr": lr}, {"params": flat, "lr": lr * scale}], lr=lr)

    torch.optim.Adam = grouped


def use_cut_lr(model, kept: dict, source, exponent: float) -> None:
    """Distil with each ``Conv`` block's convolution weight at ``(source width / kept width) ** exponent`` x the rate
    (at most 8x): the narrowed blocks have the most to re-learn."""
    norms = batchnorms(source)
    scales = {}
    for name, p in model.named_parameters():
        block = name.removesuffix(".conv.weight")
        if block != name and f"{block}.bn" in kept:
            width = norms[f"{block}.bn"].num_features / max(1, len(kept[f"{block}.bn"]))
            scales[p] = min(8.0, width ** exponent)
    adam = getattr(torch.optim.Adam, "plain", torch.optim.Adam)

    def grouped(params, lr):
        groups = {}
        for p in params:
            groups.setdefault(scales.get(p, 1.0), []).append(p)
        return adam([{"params": ps, "lr": lr * scale} for scale, ps in groups.items()], lr=lr)

    grouped.plain = adam
    torch.optim.Adam = grouped


def use_channel_wise(weight: float, tau: float) -> None:
    """Add channel-wise distillation (Shu et al. 2021) to the feature term: each kept channel's map, softmaxed over
    its positions at temperature ``tau``, matches the teacher's by KL divergence (x tau^2), so the positions where a
    channel fires (a few, for a small object) weigh more than under the squared error, which the background fills."""
    mse = distillation.feature_loss

    def with_cwd(student: dict, teacher: dict, kept: dict) -> torch.Tensor:
        losses = []
        for out, target in distillation.kept_pairs(student, teacher, kept):
            t = torch.log_softmax(target.flatten(2) / tau, dim=2)
            s = torch.log_softmax(out.flatten(2) / tau, dim=2)
            losses.append((t.exp() * (t - s)).sum(2).mean() * tau * tau)
        return mse(student, teacher, kept) + weight * torch.stack(losses).mean()

    distillation.feature_loss = with_cwd


def fit_projector(projector: torch.nn.Conv2d, inputs: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-3):
    """Set a 1x1 projector to the ridge regression of ``targets`` on ``inputs`` (channels as features, every
    position a sample; the ridge relative to the inputs' mean variance)."""
    x = inputs.detach().double().transpose(0, 1).flatten(1).T
    y = targets.detach().double().transpose(0, 1).flatten(1).T
    x = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    gram = x.T @ x
    gram += ridge * gram.diagonal()[:-1].mean() * torch.eye(len(gram), dtype=x.dtype)
    solution = torch.linalg.solve(gram, x.T @ y)
    with torch.no_grad():
        projector.weight.copy_(solution[:-1].T[:, :, None, None])
        projector.bias.copy_(solution[-1])


def use_carry(weight: float, kept: dict, source, lr_scale: float = 10.0) -> None:
    """Add to the feature term, x ``weight``, how well each cut block's kept channels carry the ones it loses: a
    learned 1x1 projector (the teacher's own ridge regression at the start, trained with the student at
    ``lr_scale`` x its rate, not saved) predicts the teacher's removed
    channels from the student's kept ones; squared error per unit of the removed channels' variance (FitNets' hint
    regressor, Romero et al. 2015, aimed at what the cut takes away). A narrow block is pushed towards the kept
    channels that best span its whole output, instead of only copying the teacher's channels of the same index."""
    norms, projectors = batchnorms(source), {}
    for name, channels in kept.items():
        removed = torch.ones(norms[name].num_features, dtype=torch.bool)
        removed[channels] = False
        if removed.any() and len(channels):
            projector = torch.nn.Conv2d(len(channels), int(removed.sum()), 1, bias=True)
            projectors[name.removesuffix(".bn")] = (projector, removed.nonzero().flatten())
    extra = [p for projector, _ in projectors.values() for p in projector.parameters()]
    adam, mse, fitted = torch.optim.Adam, distillation.feature_loss, set()
    torch.optim.Adam = lambda params, lr: adam([{"params": list(params), "lr": lr},
                                                {"params": extra, "lr": lr * lr_scale}], lr=lr)

    def with_carry(student: dict, teacher: dict, kept: dict) -> torch.Tensor:
        losses = []
        for name, out in student.items():
            if name in projectors:
                projector, removed = projectors[name]
                channels = kept[f"{name}.bn"]
                if name not in fitted:
                    fit_projector(projector, teacher[name][:, channels], teacher[name][:, removed])
                    fitted.add(name)
                out = out[:, channels] if out.shape[1] != len(channels) else out
                target = teacher[name][:, removed]
                losses.append(F.mse_loss(projector(out), target) / target.var().clamp_min(1e-6))
        return mse(student, teacher, kept) + weight * torch.stack(losses).mean()

    distillation.feature_loss = with_carry


def use_feature_variant(tap: str, channel_norm: bool) -> None:
    """Swap the library's feature taps / loss for the ``--tap bn`` and ``--channel-norm`` ablations."""
    blocks, loss = distillation.mimicked_blocks, distillation.feature_loss
    if tap == "bn":
        distillation.mimicked_blocks = lambda student, kept: [f"{n}.bn" for n in blocks(student, kept)]

    def variant(student: dict, teacher: dict, kept: dict) -> torch.Tensor:
        student = {n.removesuffix(".bn"): o for n, o in student.items()}  # a BatchNorm tap stands for its block
        teacher = {n.removesuffix(".bn"): o for n, o in teacher.items()}
        if not channel_norm:
            return loss(student, teacher, kept)
        losses = []
        for out, target in distillation.kept_pairs(student, teacher, kept):
            error = (out - target).pow(2).mean(dim=(0, 2, 3)) / target.var(dim=(0, 2, 3)).clamp_min(1e-6)
            losses.append(error.mean())
        return torch.stack(losses).mean()

    distillation.feature_loss = variant


def use_foreground(alpha: float) -> None:
    """Weigh each position's feature error by ``1 + alpha x`` the teacher's confidence there: its highest class
    probability over the anchors of every level at that place (nearest-upsampled, the levels' maximum), max-pooled to
    each feature's grid; the weights are normalised so the feature term keeps its scale."""
    raw, teacher = distillation.raw_outputs, {}

    def stashing(model, x):
        out = raw(model, x)
        if not torch.is_grad_enabled():  # ``distill`` runs the teacher under no_grad, then the student
            teacher["scores"], teacher["size"] = out["scores"].detach(), x.shape[-2:]
        return out

    def confidence(grid) -> torch.Tensor:
        scores, (h, w) = teacher["scores"].sigmoid().amax(1), teacher["size"]
        levels, start = [], 0
        for stride in (8, 16, 32):
            n = (h // stride) * (w // stride)
            level = scores[:, start:start + n].view(-1, 1, h // stride, w // stride)
            levels.append(F.interpolate(level, size=(h // 2, w // 2), mode="nearest"))
            start += n
        return F.adaptive_max_pool2d(torch.stack(levels).amax(0), grid)

    def weighted(student: dict, targets: dict, kept: dict) -> torch.Tensor:
        losses = []
        for out, target in distillation.kept_pairs(student, targets, kept):
            weight = 1 + alpha * confidence(out.shape[-2:])
            error = (out - target).pow(2).mean(1, keepdim=True)
            losses.append((error * weight).sum() / weight.sum() / target.var().clamp_min(1e-6))
        return torch.stack(losses).mean()

    distillation.raw_outputs, distillation.feature_loss = stashing, weighted


def _multiscale(images, sizes: str):
    """``images`` with each batch resized (bilinear) to a random multiple of 32 in ``LO,HI``, drawn per epoch."""
    low, high = (int(v) for v in sizes.split(","))

    def epoch_images(epoch: int) -> list[dict]:
        rng, resized = random.Random(epoch), []
        for batch in images(epoch):
            size = rng.randrange(low, high + 1, 32)
            img = F.interpolate(batch["img"], size=(size, size), mode="bilinear", align_corners=False)
            resized.append({**batch, "img": img})
        return resized

    return epoch_images


def _mimicked(kept: dict, pattern: str) -> dict:
    """The part of ``kept`` whose BatchNorm names match ``pattern``: only those blocks mimic the teacher."""
    return {name: channels for name, channels in kept.items() if re.search(pattern, name)}


def _restricted(kept: dict, source, layers: str) -> dict:
    """``kept`` with every BatchNorm outside yaml layers ``FIRST-LAST`` keeping all its channels."""
    first, last = (int(x) for x in layers.split("-"))
    norms = batchnorms(source)
    inside = lambda name: first <= int(name.split(".")[1]) <= last  # noqa: E731  ("model.<layer>. ...")
    return {n: c if inside(n) else torch.arange(norms[n].num_features) for n, c in kept.items()}


def _rebatched(images, size: int):
    """The same images per epoch, in optimizer steps of ``size`` images (distillation reads only ``img``)."""
    def epoch_images(epoch: int) -> list[dict]:
        stacked = torch.cat([b["img"] for b in images(epoch)])
        return [{"img": chunk} for chunk in stacked.split(size)]

    return epoch_images


def main() -> None:
    args = parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    widths.MAX_GROUP_RATIO = args.cap
    if args.tap != "output" or args.channel_norm:
        use_feature_variant(args.tap, args.channel_norm)
    if args.optimizer == "sgd":
        use_sgd()
    elif args.optimizer == "scaled-adam":
        torch.optim.Adam = ScaledAdam
    elif args.beta2 != 0.999:
        use_beta2(args.beta2)
    elif args.flat_lr_scale != 1.0:
        use_flat_lr_scale(args.flat_lr_scale)
    distillation.CLASS_TEMPERATURE = args.temperature
    if args.cwd_weight:
        use_channel_wise(args.cwd_weight, args.cwd_tau)
    source = YOLO(args.model).model.float().eval()
    scanned = CalibrationImages(args.data, args.imgsz, args.images, mosaic=args.mosaic, mixup=args.mixup)
    images = lambda epoch: scanned.draw(seed=args.seed + epoch)  # noqa: E731
    if args.batch:
        images = _rebatched(images, args.batch)
    if args.multiscale:
        images = _multiscale(images, args.multiscale)
    if args.foreground:
        use_foreground(args.foreground)
    start, model, kept = time.perf_counter(), source, None
    if args.fade:
        pruned = faded(source, args, images)
        score, gflops = evaluate(pruned, args.model, args.data), ModelStats.of(pruned, 640).gflops
        print(f"{vars(args)}: mAP50-95 {score:.3f}, {gflops:.2f} GFLOPs ({time.perf_counter() - start:.0f} s)",
              flush=True)
        return
    for step in range(args.steps):
        model, step_kept = prune_step(model, (1 / args.speed_up) ** (1 / args.steps), args.cost_exponent,
                                      args.protected_stride)
        kept = step_kept if kept is None else {name: kept[name][step_kept[name]] for name in step_kept}
        distillation.distill(model, source, images, args.epochs, lr=args.lr, kept=_mimicked(kept, args.mimic),
                             feature_weight=args.feature_weight, verbose=False)
        score = evaluate(model, args.model, args.data)
        print(f"step {step + 1}/{args.steps}: mAP50-95 {score:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("model", "data")}
    print(f"{settings}: mAP50-95 {score:.3f}", flush=True)


if __name__ == "__main__":
    main()
