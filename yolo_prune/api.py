"""``prune_yolo``: the one call a user needs to turn a YOLO model into a smaller stock Ultralytics model."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from ultralytics import YOLO
from ultralytics.utils import LOGGER, colorstr
from ultralytics.utils.torch_utils import get_flops

from . import __version__
from .checkpoint import checkpoint_dict, save_atomic, temporary_checkpoint_path, temporary_folder
from .data.dead_leaves import write_dead_leaves
from .errors import PruneError
from .loading import ModelSource, load_model, restricted_yolo
from .pruning.architecture import check_supported
from .pruning.core import PruneOptions, prune_with_channel_map
from .pruning.heads import is_supported_head, task_of
from .pruning.compensation import compensate_removed_channels
from .pruning.importance import CHOICES, DATA_DRIVEN, IMPORTANCE, LABELLED, resolve_importance
from .pruning.summary import ModelStats, equal_cost_imgsz, input_grid, log_summary
from .recovery.calibration import (
    calibration_batches,
    match_batchnorm_statistics,
    recalibrate_batchnorm,
    require_labels,
    sharing_scans,
)
from .recovery import distillation
from .recovery.allocation import PROBE_IMAGES, least_damaging_prune
from .recovery.distillation import DISTILLED_COST_EXPONENT, DISTILLED_PROTECTED_STRIDE, EPOCHS, distillation_images
from .recovery.fading import distill_while_fading, fades_every_cut
from .recovery.reconstruction import reconstruct_convolutions, reconstruction_images

PREFIX = colorstr("yolo-prune: ")
TRAINING_FREE_GFLOPS = 0.85  # below this share of GFLOPs, a prune without data= may keep little mAP (_warn_if_deep)
DEFAULT_IMGSZ = {"classify": 224}  # Ultralytics' classification models train at 224; every other task at 640
GENERATED_IMAGES = 64  # dead-leaves images distilled on without data (1,920, a fresh 64 per epoch: no better)


def prune_yolo(
    model: ModelSource,
    ratio: float | None = None,
    *,
    target_gflops: float | None = None,
    speed_up: float | None = None,
    importance: str = "auto",
    global_pruning: bool | None = None,
    layer_ratios: dict[int, float] | None = None,
    round_to: int = 8,
    imgsz: int | None = None,
    data: str | os.PathLike | None = None,
    compensate: bool = True,
    distill: bool | None = None,
    calibrate_bn: bool = False,
    reconstruct: bool = False,
    save: str | os.PathLike | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> YOLO:
    """Prune whole channels from a YOLO model of any task; the result is a stock Ultralytics model of that task.

    Coupled channels come from torch-pruning's DependencyGraph; every pruned width is written into the model's yaml,
    so ``yolo train``/``val``/``predict``/``export`` rebuild exactly the pruned model in any process (DDP included)
    and training starts from every pruned tensor. Nothing is patched and no new class enters the checkpoint.
    Detect, segment, pose, OBB and classify models of YOLOv8, YOLO11 and YOLO26 are supported; the task heads' output
    widths (classes, masks, keypoints, angles) stay, the segmentation prototypes' width ``npr`` is pruned.

    Args:
        model: Checkpoint path (``yolov8n.pt``, downloaded by Ultralytics if needed), model yaml (``yolov8n.yaml``,
            ``yolo11n-seg.yaml``: random init), ``ultralytics.YOLO`` or an Ultralytics model (``DetectionModel``,
            ``SegmentationModel``, ...). The caller's file and object are never changed.
        ratio: Fraction of channels removed, in (0, 1): of all channels ranked together with ``global_pruning``, else
            from every prunable group; 0.3 when neither a target nor ``layer_ratios`` is given (with ``layer_ratios``
            alone, unlisted layers stay as they are). Without ``data``, a prune below 0.85x GFLOPs logs a warning:
            the released yolo11n and yolo26n keep almost no mAP at 0.80x before fine-tuning (yolov8n 0.74x).
        target_gflops: Instead of a ratio, prune to this many GFLOPs at ``imgsz`` (reached within about 3%).
        speed_up: Instead of a ratio, prune to ``1 / speed_up`` of the source's GFLOPs (e.g. 2.0 halves them).
        importance: Channel criterion. ``auto`` (default) is ``damage``: a data-free score of the error a channel's
            removal leaves in its consumers, from BatchNorm statistics. ``fisher`` scores how much a channel moves the
            model's own predictions on 64 images of ``data`` (label-free output Fisher information). Also
            torch-pruning's ``l1``, ``l2`` (group magnitude), ``bn`` (BatchNorm scale), ``lamp``, ``random``
            (seeded), and ``taylor`` / ``hessian`` (gradients of Ultralytics' detection loss on ``data``, labels
            needed). Real COCO yolov8n, ``speed_up=1.25``, no training: ``l2`` keeps 0.00x of the base's mAP50-95,
            ``damage`` 0.68x, ``fisher`` 0.50x (BENCHMARKS.md, "Real models").
        global_pruning: Rank channels across layers by score per GFLOP they cost, instead of removing ``ratio`` from
            each group; no layer loses more than 90% of its channels. ``None`` (default): global unless
            ``layer_ratios`` is given. Uniform pruning of a real model loses far more (speed_up 1.25 with
            ``damage``: 0.13x uniform vs 0.52x global).
        layer_ratios: Ratio per yaml layer index (e.g. from ``sensitivity``), overriding ``ratio`` there; the Detect
            layer's index covers its classification branch; 0 leaves a layer untouched. Uniform pruning only.
        round_to: Channel multiple for every pruned width; a multiple of 8 (stock yaml widths are multiples of 8).
            Widths Ultralytics derives (SPPF and C3k2 inner widths, the Detect box branch) follow their formulas.
        imgsz: Image size for the reported GFLOPs, compute targets and calibration; a multiple of 32. ``None``
            (default): 640, or 224 for classification models.
        data: Dataset yaml whose training images (labels optional) distill the pruned model (see ``distill``) and
            feed ``fisher``, ``taylor``/``hessian`` (labels needed), ``calibrate_bn`` (64 training images, augmented
            as in training, seeded) and ``reconstruct``. For a classification model: the dataset folder
            (``train/<class>/`` images, as for ``yolo classify train``).
        compensate: Fold every removed channel's expected output (from its BatchNorm statistics) into the biases or
            BatchNorm means of the layers that read it, so their pre-activations keep their mean (data-free). With
            ``distill`` it is part of fading and always done.
        distill: Train towards the original on ``data``'s training images (no labels needed; 64 images per epoch,
            the next 64 each epoch when there are more, at half ``imgsz``, 30 epochs, a fresh augmentation each,
            mosaic on): its raw head outputs, and every convolution block's output on the channels that block keeps
            (feature mimicking). The first 30% of the epochs train the full-width model while the channels the
            prune drops fade into their expected value; then they are removed, their constant folded into the
            consumers (gradual removal instead of one cut), and the remaining epochs train the pruned model.
            Where a cut layer has no BatchNorm to fade by (the segmentation prototypes' upsampler) the model is cut
            first and then distilled. Distillation keeps BatchNorm statistics frozen while the weights move;
            afterwards each BatchNorm's stored statistics are set to what its input has on 64 of the images, its
            scale and shift adjusted so the model computes the same, so that a fine-tune (training-mode BatchNorm)
            starts from the model evaluated (real yolov8n, ``speed_up=1.5``, 10 epochs of the README recipe: 0.368
            -> 0.419 mAP50-95).
            Before it, a global ranking is built twice, by absolute damage and by each group's LAMP shares, and the
            LAMP one is distilled when its compensated outputs stay at least 5% closer to the source's on 16 of the
            images (``recovery.allocation``: yolov8 keeps the absolute ranking, the released yolo11n at
            ``speed_up=1.25`` goes from 0.098 to 0.358 mAP50-95 with the LAMP one).
            ``None`` (default): on when ``data`` is given. ``True`` without ``data``: distil on 64 generated
            "dead leaves" images (``data.dead_leaves``: occluding textured shapes over smooth noise; no real image
            needed), whose BatchNorm statistics are not stored (they are not your images'). Real COCO yolov8n,
            mAP50-95 at ``speed_up=1.25`` / ``1.5``: 0.321 / 0.039 without distillation (seconds), 0.417 / 0.270 on
            generated images, 0.425 / 0.307 on 64 real ones (minutes either way; BENCHMARKS.md, session 28).
            History of the ``data=`` default: real COCO yolov8n, mAP50-95 (base 0.474), ranked per
            GFLOP as without data: data-free ``speed_up=1.25`` 0.321 -> 0.374, ``speed_up=1.5`` 0.039 -> 0.203 (cut
            first, then distil: 0.368 / 0.184; head outputs alone: 0.336 / 0.125). When distilling, the global
            ranking weighs compute saved more (damage / cost ** 1.5 instead of damage per GFLOP), which lifts the
            fading numbers to 0.401 / 0.250; block outputs weighted 20x the head outputs over 30 epochs: 0.405 /
            0.287. The ranking also keeps the stem (the layers whose output stride is below 8) whole, since
            distillation cannot restore what the first layers drop (today's defaults, ``prune_yolo`` itself: 0.426
            / 0.291, and 0.065 at ``speed_up=2.0``), in 5-8 minutes on 2 CPU cores.
        calibrate_bn: Re-estimate the pruned model's BatchNorm statistics on ``data`` ("adaptive BN"). It lifts
            accuracy before any fine-tuning (shapes set, yolov8n ratio 0.3: mAP50-95 0.026 -> 0.16) but did not help
            after a short fine-tune, and it lowers an unpruned model's accuracy, so it is off by default.
        reconstruct: Refit every pruned convolution by least squares so that, on 128 training images of ``data``
            (fewer above 128 px), it reproduces the source model's outputs on the channels it kept, layer after layer
            in forward order. Shapes stay as pruned; only weights, biases and BatchNorm means change. It keeps most
            of the accuracy without any fine-tuning (trained yolov8n / yolo11n, ratio 0.3: held-out mAP50-95 0.01x /
            0.06x of the base -> 0.92x / 0.89x); it leads the plain prune by 3-6 points after a 1-epoch fine-tune
            (use a gentle one, e.g. ``lr0=1e-4``) and by 0.2-1.2 after 5 epochs. On 2 CPU cores an n model takes
            30-50 s at 128 px and about 3 minutes at 640 px. With ``distill`` it refits the distilled model.
        save: Also write the pruned checkpoint here (atomically). Without it the checkpoint is written to a temporary
            folder that is removed when the Python process exits; use ``.save()`` or ``save=`` to keep it.
        overwrite: Allow ``save`` to replace an existing file.
        verbose: Log the per-layer width table and before/after params, GFLOPs and size.

    Returns:
        An ``ultralytics.YOLO`` holding the pruned model of the source's task, loaded from a real checkpoint (``save``
        or a temporary file), so ``.train()``, ``.val()``, ``.export()`` and ``.save()`` behave as for any checkpoint.

    Raises:
        PruneError: For a missing/corrupt file, an unsupported model or task, or an option out of range.

    Examples:
        >>> from yolo_prune import prune_yolo
        >>> pruned = prune_yolo("yolov8n.pt", speed_up=1.25)  # 0.80x GFLOPs, data-free
        >>> pruned.save("yolov8n-pruned.pt")
        >>> prune_yolo("yolov8n.pt", ratio=0.3)  # a share of channels (about half the GFLOPs: fine-tune after)
        >>> prune_yolo("yolo11n.yaml", ratio=0.5, global_pruning=True, save="yolo11n-pruned.pt")
        >>> prune_yolo("yolo26n.pt", speed_up=2.0)  # half the GFLOPs
        >>> prune_yolo("yolo11n-seg.pt", speed_up=1.25)  # segment, pose, OBB and classify models alike
        >>> prune_yolo("best.pt", speed_up=1.25, data="data.yaml")  # + label-free distillation on your images
        >>> prune_yolo("best.pt", speed_up=1.5, distill=True)  # no images: distil on generated ones (minutes)
        >>> prune_yolo("best.pt", ratio=0.3, data="data.yaml", reconstruct=True)  # refit on your images
    """
    if ratio is not None and (target_gflops is not None or speed_up is not None):
        raise PruneError("Give either ratio or a compute target (target_gflops / speed_up), not both.")
    source, source_file = load_model(model)
    if not is_supported_head(source):  # fail before any work; the core runs the full check_supported once
        check_supported(source)
    task = task_of(source)
    imgsz = DEFAULT_IMGSZ.get(task, 640) if imgsz is None else imgsz
    importance = resolve_importance(importance)
    if global_pruning is None:
        global_pruning = not layer_ratios
    options = _validated_options(ratio, importance, global_pruning, round_to, imgsz)
    options = replace(options, layer_ratios=_validated_layer_ratios(layer_ratios, source, global_pruning))
    if ratio is None and layer_ratios and target_gflops is None and speed_up is None:
        options = replace(options, ratio=0.0)
    options = _with_compute_target(options, source, target_gflops, speed_up)
    _check_data_given(data, importance, calibrate_bn, reconstruct)
    if save is not None and source_file is not None and Path(save).resolve() == source_file.resolve():
        raise PruneError(f"save='{save}' is the input checkpoint; choose another name so the original is kept.")
    distill = data is not None if distill is None else distill
    generated = temporary_folder("yolo_prune_leaves_") if distill and data is None else None
    data = _dead_leaves_dataset(generated, source, task, imgsz, verbose) if generated else data
    if distill:  # the ranking leans further towards compute saved when distillation will recover the damage
        options = replace(options, cost_exponent=DISTILLED_COST_EXPONENT, protected_stride=DISTILLED_PROTECTED_STRIDE)
    with sharing_scans():  # a dataset built at several sizes is scanned once
        needs_batches = importance in DATA_DRIVEN or calibrate_bn
        batches = calibration_batches(str(data), imgsz, task=task, verbose=verbose) if needs_batches else None
        if importance in LABELLED:
            require_labels(batches, str(data), f"importance='{importance}' (the detection loss's gradients)")
        if importance in DATA_DRIVEN:
            options = replace(options, calibration=batches)
        if distill and global_pruning:  # the absolute or the layer-adaptive ranking, whichever damages less
            probe = torch.cat([b["img"] for b in distillation_images(str(data), imgsz, task, verbose)(0)])
            pruned, kept = least_damaging_prune(source, options, probe[:PROBE_IMAGES], verbose)
        else:
            pruned, kept = prune_with_channel_map(source, options)
        fade = distill and fades_every_cut(source, pruned)
        if fade:
            pruned, kept = distill_while_fading(source, kept, str(data), imgsz, verbose=verbose, task=task)
        elif compensate:
            compensate_removed_channels(pruned, source, kept)
        if distill and not fade:
            batches_for_epoch = distillation_images(str(data), imgsz, task, verbose)
            distillation.distill(pruned, source, batches_for_epoch, EPOCHS, kept=kept, verbose=verbose)
        if distill and not generated:  # generated images' statistics are not the user's: the source's stay
            # the distillation's first 64 images again (it has logged their scan), or the batches read above
            calibration = batches or calibration_batches(str(data), imgsz, task=task, verbose=False)
            match_batchnorm_statistics(pruned, calibration)  # so that a fine-tune starts from the evaluated model
        if generated:
            shutil.rmtree(generated, ignore_errors=True)
        if reconstruct:
            scanned = distill or needs_batches
            images = calibration_batches(
                str(data), imgsz, images=reconstruction_images(imgsz), task=task, verbose=verbose and not scanned
            )
            reconstruct_convolutions(pruned, source, kept, [b["img"] for b in images], verbose=verbose)
        if calibrate_bn:
            recalibrate_batchnorm(pruned, batches)
    stats = ModelStats.of(source, imgsz), ModelStats.of(pruned, imgsz)
    if data is None:
        _warn_if_deep(stats[1].gflops / stats[0].gflops, imgsz, input_grid(source))
    if verbose:
        label = model if isinstance(model, (str, os.PathLike)) else type(model).__name__
        goal = f"ratio={options.ratio}" if options.gflops_fraction is None else f"GFLOPs x{options.gflops_fraction:.3f}"
        LOGGER.info(f"{PREFIX}pruned {label}: {goal}, importance={importance}, global={global_pruning}")
        log_summary(source, pruned, stats, imgsz)
    metadata = {**_metadata(options, source_file, stats, reconstruct), "compensated": bool(compensate),
                "distilled": bool(distill)}
    out = Path(save) if save is not None else temporary_checkpoint_path()
    save_atomic(checkpoint_dict(pruned, metadata), out, overwrite=overwrite)
    if verbose and save is not None:
        LOGGER.info(f"{PREFIX}saved {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return restricted_yolo(out)  # the file is ours, but its path is the user's: load it as untrusted


def _validated_options(ratio, importance, global_pruning, round_to, imgsz) -> PruneOptions:
    """Check every option once, with a message that says what to pass instead."""
    ratio = 0.3 if ratio is None else ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise PruneError(f"ratio={ratio!r} must be a number strictly between 0 and 1 (the share of channels removed).")
    if importance not in IMPORTANCE:
        raise PruneError(f"importance='{importance}' is not one of {', '.join(CHOICES)}.")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 8 or round_to % 8:
        raise PruneError(
            f"round_to={round_to!r} must be a positive multiple of 8: Ultralytics' yaml rounds every layer width up to "
            "a multiple of 8, so other values cannot be stored in a stock checkpoint."
        )
    if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32 or imgsz % 32:
        raise PruneError(f"imgsz={imgsz!r} must be a positive multiple of 32 (the model's largest stride).")
    return PruneOptions(float(ratio), importance, bool(global_pruning), round_to, imgsz=imgsz)


def _check_data_given(data, importance: str, calibrate_bn: bool, reconstruct: bool) -> None:
    """The data-driven options need ``data``: say which one asked for it."""
    if data is not None:
        return
    if importance in DATA_DRIVEN:
        raise PruneError(f"importance='{importance}' scores channels with the loss on your data: pass data=data.yaml.")
    if calibrate_bn:
        raise PruneError("calibrate_bn=True re-estimates BatchNorm statistics on your images: pass data=data.yaml.")
    if reconstruct:
        raise PruneError("reconstruct=True refits the pruned layers on your images: pass data=data.yaml.")


def _dead_leaves_dataset(folder: Path, source, task: str, imgsz: int, verbose: bool) -> Path:
    """Generated images to distil on when no data is given (``data.dead_leaves``), written into ``folder`` (a private
    temporary folder that ``prune_yolo`` removes when done, and this process at exit if the prune fails): a data.yaml,
    or for a classifier a class-folder dataset."""
    if verbose:
        LOGGER.info(f"{PREFIX}no data given: distilling on {GENERATED_IMAGES} generated dead-leaves images")
    extras = {"kpt_shape": list(source.yaml["kpt_shape"])} if task == "pose" else {}
    return write_dead_leaves(folder, GENERATED_IMAGES, imgsz, extras=extras, classify=task == "classify")


def _validated_layer_ratios(layer_ratios, source, global_pruning: bool) -> dict[int, float] | None:
    """Check ``layer_ratios``: yaml layer indices of ``source`` mapped to ratios in [0, 1)."""
    if not layer_ratios:
        return None
    if global_pruning:
        raise PruneError("layer_ratios sets each layer's ratio itself; it cannot be combined with global_pruning=True.")
    if not isinstance(layer_ratios, dict):
        raise PruneError(f"layer_ratios must be a dict {{layer_index: ratio}}, not {type(layer_ratios).__name__}.")
    n = len(source.model)
    for index, value in layer_ratios.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n:
            raise PruneError(f"layer_ratios key {index!r} is not a layer index of this model (0..{n - 1}).")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise PruneError(f"layer_ratios[{index}]={value!r} must be in [0, 1) (0 leaves the layer untouched).")
    return {int(k): float(v) for k, v in layer_ratios.items()}


def _with_compute_target(options: PruneOptions, source, target_gflops, speed_up) -> PruneOptions:
    """Turn ``target_gflops`` or ``speed_up`` into a GFLOPs fraction of ``source`` (at most one target)."""
    if target_gflops is None and speed_up is None:
        return options
    if target_gflops is not None and speed_up is not None:
        raise PruneError("Give either target_gflops or speed_up, not both.")
    base = get_flops(source, options.imgsz)
    if speed_up is not None:
        if isinstance(speed_up, bool) or not isinstance(speed_up, (int, float)) or speed_up <= 1:
            raise PruneError(f"speed_up={speed_up!r} must be a number above 1 (the GFLOPs ratio base/pruned).")
        fraction = 1 / speed_up
    else:
        if isinstance(target_gflops, bool) or not isinstance(target_gflops, (int, float)) or not 0 < target_gflops < base:
            raise PruneError(f"target_gflops={target_gflops!r} must be above 0 and below the model's {base:.2f} GFLOPs.")
        fraction = target_gflops / base
    return replace(options, gflops_fraction=fraction)


def _warn_if_deep(gflops_share: float, imgsz: int, grid: int) -> None:
    """Say so when a prune without data went deeper than some real detectors survive without training.

    Measured on Ultralytics' released COCO checkpoints (BENCHMARKS.md, "Real models"; mAP50-95 kept, data-free): at
    0.80x GFLOPs yolov8n 0.68-0.74x and yolov8s 0.71x, but yolo11n 0.00x and yolo26n 0.04x (at 0.91x: 0.61x and 0.53x);
    at 0.66x yolov8n 0.08-0.15x; the unpruned yolov8n at 448 px (0.49x GFLOPs) keeps 0.91x.
    """
    if gflops_share < TRAINING_FREE_GFLOPS:
        size = equal_cost_imgsz(gflops_share, imgsz, grid)
        LOGGER.warning(
            f"{PREFIX}pruned to {gflops_share:.2f}x GFLOPs without data: real detectors may keep little accuracy this "
            f"deep before fine-tuning (COCO mAP kept at 0.80x GFLOPs: yolov8n 0.68-0.74x, yolov8s 0.71x, but yolo11n "
            f"0.00x and yolo26n 0.04x, which keep 0.53-0.61x at 0.91x; at 0.66x yolov8n keeps 0.08-0.15x). Check "
            f"with yolo val on your images. Pass data=your.yaml (its images, labels optional, distill the pruned "
            f"model), or distill=True to distil on generated images when you have none, and fine-tune with yolo "
            f"train; or compare a smaller input first: the unpruned model at imgsz={size} costs the same GFLOPs "
            f"(yolo val ... imgsz={size}; the COCO yolov8n at 448 px, 0.49x GFLOPs, keeps 0.91x on coco128)."
        )


def _metadata(
    options: PruneOptions, source_file: Path | None, stats: tuple[ModelStats, ModelStats], reconstruct: bool
) -> dict:
    """Plain-data record of the pruning run stored in the checkpoint."""
    return {
        "version": __version__,
        "source": str(source_file) if source_file else None,
        "ratio": options.ratio if options.gflops_fraction is None else None,
        "gflops_fraction": options.gflops_fraction,
        "importance": options.importance,
        "global_pruning": options.global_pruning,
        "round_to": options.round_to,
        "reconstructed": reconstruct,
        "layer_ratios": {str(k): v for k, v in (options.layer_ratios or {}).items()} or None,
        "params": [s.params for s in stats],
        "gflops": [s.gflops for s in stats],
    }
