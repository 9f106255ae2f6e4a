"""Learned channel selection on the real COCO yolov8n: gates trained under a compute penalty choose what to prune.

Every channel of every group the distilled ranking may cut (stem excluded) gets a gate ``m`` in [0, 1] that blends
its output towards its expected value, ``m * y + (1 - m) * E[y]`` (what fading does, with the amount learned). The
gates train for ``--epochs`` epochs on the head distillation loss plus ``--penalty`` x their cost-weighted L1
(``train_gates``; as Network Slimming's L1 on BatchNorm scales, Liu et al. 2017, or budget-aware gates), the weights
frozen (``--train-weights``: trained too, at the distillation's rate). The gates then rescale the
damage score (``damage x m^2``: a gated channel's variance is ``m^2`` of its own), the library's ranking picks the
channels at ``--speed-up`` from those scores, and the library's ``data=`` pipeline (fade, cut, distil, from the
source's weights) runs on that choice. ``--penalty 0`` leaves the gates at 1: the library's own choice (the control).
Run from the repository root with ``../shared`` (see REAL_DATA.md there):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_learned_selection.py --speed-up 1.5 --gate-lr 0.03 --penalty 1
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("YOLO_OFFLINE", "1")

import torch  # noqa: E402
from real_ablations import SHARED, evaluate  # noqa: E402
from ultralytics import YOLO  # noqa: E402

from yolo_prune.pruning.compensation import block_moments  # noqa: E402
from yolo_prune.pruning.core import PruneOptions, analyse, apply_plan, search_plan  # noqa: E402
from yolo_prune.pruning.summary import ModelStats  # noqa: E402
from yolo_prune.recovery import distillation, fading  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(SHARED / "models" / "yolov8n-coco.pt"))
    p.add_argument("--data", default=str(SHARED / "datasets" / "coco128" / "split.yaml"))
    p.add_argument("--speed-up", type=float, default=1.5)
    p.add_argument("--epochs", type=int, default=8, help="epochs of gate training (before the library's pipeline)")
    p.add_argument("--gate-lr", type=float, default=0.03, help="Adam rate of the gates (the weights: 1e-4)")
    p.add_argument("--penalty", type=float, default=1.0, help="weight of the gates' cost-weighted L1")
    p.add_argument("--train-weights", action="store_true", help="the weights train with the gates (default: frozen)")
    return p.parse_args()


def gate_free_groups(analysis, student) -> tuple[list, list[torch.nn.Parameter], list]:
    """A gate per channel of every group the distilled ranking may cut, hooked onto ``student``'s blocks."""
    strides = analysis.strides
    free = [g for g in analysis.groups if g.slot in analysis.original and strides.get(g.slot.layer, 8) >= 8]
    blocks = {name: m for name, m in student.named_modules() if hasattr(m, "bn")}
    gates, handles = [], []
    for group in free:
        gate = torch.nn.Parameter(torch.ones(group.size))
        gates.append(gate)
        for conv in group.convs:
            name, offset = conv.rsplit(".", 1)[0], 0
            if name.endswith("cv1b"):  # the second half of a split C2f stem: channels after the first half's
                offset = analysis.work.get_submodule(name[:-1] + "a.conv").out_channels
            block = blocks[name[:-1] if name.endswith(("cv1a", "cv1b")) else name]
            mean = block_moments(block)[0][offset:offset + group.size].detach()[None, :, None, None]
            handles.append(block.register_forward_hook(_blender(gate, offset, mean)))
    return free, gates, handles


def _blender(gate: torch.nn.Parameter, offset: int, mean: torch.Tensor):
    def hook(module, args, output: torch.Tensor) -> torch.Tensor:
        m, width = gate[None, :, None, None], len(gate)
        blended = output.clone()
        blended[:, offset:offset + width] = m * output[:, offset:offset + width] + (1 - m) * mean
        return blended

    return hook


def train_gates(source, student, free, gates, images, keep: float, args: argparse.Namespace) -> None:
    """Distil ``student`` (head outputs) with the gates' cost-weighted L1, gates clamped to [0, 1] after each step.

    A gate's weight is its channel's share of the free groups' compute times its group's per-channel cost over the
    mean group's (so dear channels are pushed harder, as the ranking's exponent above 1 does), over ``keep``, the
    share of that compute the library's choice keeps.
    """
    costs = torch.tensor([g.cost for g in free], dtype=torch.float64)
    share = costs / (costs * torch.tensor([g.size for g in free])).sum()
    weights = (share * costs / costs.mean() / keep).float()
    groups = [{"params": gates, "lr": args.gate_lr}]
    if args.train_weights:
        groups.append({"params": distillation._trainable(student), "lr": distillation.LEARNING_RATE})
    optimizer = torch.optim.Adam(groups)
    teacher = copy.deepcopy(source)
    for epoch in range(args.epochs):
        for batch in images(100 + epoch):
            with torch.no_grad():
                target = distillation.raw_outputs(teacher, batch["img"])
            loss = distillation.distillation_loss(distillation.raw_outputs(student, batch["img"]), target, 16)
            penalty = sum((w * gate).sum() for w, gate in zip(weights, gates))
            optimizer.zero_grad()
            (loss + args.penalty * penalty).backward()
            optimizer.step()
            with torch.no_grad():
                for gate in gates:
                    gate.clamp_(0, 1)
        compute = sum(float((s * gate.detach()).sum()) for s, gate in zip(share, gates))
        print(f"gates epoch {epoch + 1}: compute share {compute:.3f}, "
              f"{sum(int((g < 0.5).sum()) for g in gates)} gates below 0.5", flush=True)


def main() -> None:
    args = parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    source = YOLO(args.model).model.float().eval()
    options = PruneOptions(0.3, "damage", global_pruning=True, cost_exponent=distillation.DISTILLED_COST_EXPONENT,
                           protected_stride=distillation.DISTILLED_PROTECTED_STRIDE, gflops_fraction=1 / args.speed_up)
    start = time.perf_counter()
    analysis = analyse(source, "damage")
    library_choice = search_plan(analysis, options).widths
    student = copy.deepcopy(source)
    free, gates, handles = gate_free_groups(analysis, student)
    keep = sum(g.cost * library_choice[g.slot] for g in free) / sum(g.cost * g.size for g in free)
    if args.penalty:
        images = distillation.distillation_images(args.data, 640)
        train_gates(source, student, free, gates, images, keep, args)
    for handle in handles:
        handle.remove()
    for group, gate in zip(free, gates):
        group.scores = group.scores * gate.detach() ** 2
    plan = search_plan(analysis, options)
    for slot in sorted(plan.widths, key=lambda s: (s.layer, s.kind)):
        if plan.widths[slot] != library_choice.get(slot):
            print(f"  {slot}: library {library_choice.get(slot)}, learned {plan.widths[slot]}")
    _, kept = apply_plan(analysis, plan)
    pruned, _ = fading.distill_while_fading(source, kept, args.data, 640, verbose=False)
    score, gflops = evaluate(pruned, args.model, args.data), ModelStats.of(pruned, 640).gflops
    print(f"{vars(args)}: mAP50-95 {score:.4f}, {gflops:.2f} GFLOPs ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
