"""Gradual channel removal: doomed channels fade into their expectation while distilling, then go exactly."""

import copy

import torch
from torch import nn

from conftest import tiny_detector
from test_compensation import calibrated
from yolo_prune.pruning.compensation import batchnorm_blocks, block_moments, compensate_removed_channels
from yolo_prune.pruning.core import PruneOptions, prune_keeping, prune_with_channel_map
from yolo_prune.recovery.fading import ChannelFade, cut_moments, fade_schedule

IMAGES = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))


def pruned_source():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        source = calibrated("yolov8n.yaml", IMAGES)
    _, kept = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True))
    return source, kept


def block_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    names = {m: n for n, m in model.named_modules()}
    outputs, handles = {}, []
    for block in batchnorm_blocks(model):
        hook = lambda m, a, out, name=names[block]: outputs.__setitem__(name, out)  # noqa: E731
        handles.append(block.register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return outputs


def test_fade_blends_only_the_doomed_channels_towards_their_expectation():
    source, kept = pruned_source()
    model = copy.deepcopy(source).eval()
    plain = block_outputs(model, IMAGES[:1])
    with ChannelFade(model, kept) as fade:
        assert block_outputs(model, IMAGES[:1]).keys() == plain.keys()
        assert all(torch.equal(v, plain[k]) for k, v in block_outputs(model, IMAGES[:1]).items())  # progress 0
        fade.progress = 1.0
        faded = block_outputs(model, IMAGES[:1])
    changed = 0
    for name, out in faded.items():
        channels = kept[f"{name}.bn"]
        doomed = torch.ones(out.shape[1], dtype=torch.bool)
        doomed[channels] = False
        if doomed.any():
            changed += 1
            expected = block_moments(model.get_submodule(name))[0][doomed].float()
            assert torch.allclose(out[0, doomed], expected[:, None, None].expand_as(out[0, doomed]), atol=1e-5)
    assert changed > 5
    assert not any(m._forward_hooks for m in model.modules())  # the hooks are gone


def test_prune_keeping_removes_exactly_the_given_channels_from_a_changed_model():
    source, kept = pruned_source()
    first, _ = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True))
    changed = copy.deepcopy(source)
    with torch.no_grad():
        for p in changed.parameters():
            p.mul_(torch.rand_like(p) + 0.5)  # a fresh ranking of these weights would choose other channels
    pruned, again = prune_keeping(changed, kept)
    assert again.keys() == kept.keys() and all(torch.equal(again[k], kept[k]) for k in kept)
    assert pruned.yaml == first.yaml


def test_a_fully_faded_model_prunes_without_changing_its_function_inside_the_image():
    source, kept = pruned_source()
    model = copy.deepcopy(source).eval()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(3))  # large enough for an interior
    with ChannelFade(model, kept) as fade, torch.no_grad():
        fade.progress = 1.0
        faded = model(x)[0]
    pruned, kept = prune_keeping(model, kept)
    compensate_removed_channels(pruned, model, kept, variance=False)
    with torch.no_grad():
        out = pruned(x)[0]
    plain, _ = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True))
    with torch.no_grad():
        uncompensated = plain(x)[0]
    assert (out - faded).abs().mean() < 0.3 * (uncompensated - faded).abs().mean()  # zero padding: borders differ


def test_fade_epochs_end_where_the_fade_does():
    from yolo_prune.recovery.fading import fade_epochs

    for epochs, share in ((30, 0.3), (45, 0.3), (10, 0.25), (1, 0.3)):
        n, steps = fade_epochs(epochs, share), epochs * 8
        assert fade_schedule(n * 8 - 1, steps, share) == 1.0  # complete by the end of the last fading epoch
        assert n == epochs or fade_schedule((n - 1) * 8 - 1, steps, share) < 1.0  # and not an epoch sooner


def test_fade_schedule_rises_linearly_then_holds():
    assert fade_schedule(0, 100, 0.5) == 0.02
    assert fade_schedule(49, 100, 0.5) == 1.0 and fade_schedule(99, 100, 0.5) == 1.0
    assert fade_schedule(0, 1, 0.5) == 1.0


def test_a_schedule_advanced_to_a_step_continues_the_whole_runs_rates_and_momenta():
    from yolo_prune.recovery.distillation import _one_cycle

    def rates(start: int, steps: int) -> list[tuple[float, float]]:
        optimizer = torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=1e-3)
        schedule = _one_cycle(optimizer, 40, start=start)
        seen = []
        for _ in range(steps):
            seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["betas"][0]))
            optimizer.step()
            schedule.step()
        return seen

    whole = rates(0, 40)
    assert len(set(whole)) > 30  # the rate and Adam's momentum both move over the run
    assert rates(12, 28) == whole[12:]


def test_a_distillation_split_over_two_calls_continues_the_fade(dataset_yaml):
    from yolo_prune.recovery.calibration import calibration_batches
    from yolo_prune.recovery.distillation import distill

    source, kept = pruned_source()
    student = copy.deepcopy(source)
    batches = lambda epoch: calibration_batches(str(dataset_yaml), 64, images=16, seed=epoch)  # noqa: E731
    moments = {}
    with ChannelFade(student, kept, share=0.75) as fade:  # 2 epochs x 2 batches: the fade ends on the third step
        distill(student, source, batches, 1, kept=kept, verbose=False, fade=fade, total_epochs=2, moments=moments)
        assert abs(fade.progress - 2 / 3) < 1e-9  # two of the whole run's three fading steps, not of this call's
        assert {int(state["step"]) for state in moments.values()} == {2}
        distill(student, source, batches, 1, kept=kept, verbose=False, fade=fade, first_epoch=1, total_epochs=2,
                moments=moments)
        assert fade.progress == 1.0  # the second call continues the run, past the fade's end
    assert {int(state["step"]) for state in moments.values()} == {4}  # and Adam's state with it
    assert moments.keys() == {n for n, p in student.named_parameters() if "dfl" not in n}


def test_adams_moments_are_cut_as_the_weights_are():
    source, kept = pruned_source()
    weights = dict(source.named_parameters())
    moments = {n: {"step": torch.tensor(3.0), "exp_avg": 2 * p.detach(), "exp_avg_sq": p.detach() ** 2}
               for n, p in weights.items()}
    cut = cut_moments(source, kept, moments)
    pruned, _ = prune_keeping(source, kept)
    narrowed = 0
    for name, p in pruned.named_parameters():
        assert torch.equal(cut[name]["exp_avg"], 2 * p.detach())
        assert torch.equal(cut[name]["exp_avg_sq"], p.detach() ** 2)
        assert cut[name]["step"] == 3
        narrowed += p.shape != weights[name].shape
    assert narrowed > 10


def test_segmentation_fades_and_prunes_into_a_stock_model_with_its_upsampler_pruned(task_dataset):
    from conftest import tiny_task_model
    from helpers import assert_stock_rebuild_keeps_every_tensor
    from yolo_prune.pruning.heads import task_of
    from yolo_prune.recovery.fading import distill_while_fading

    source = tiny_task_model("yolov8n.yaml", "segment")
    _, kept = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True))
    pruned, again = distill_while_fading(source, kept, str(task_dataset("segment")), 64, False, "segment", epochs=2)
    assert task_of(pruned) == "segment" and all(torch.equal(again[k], kept[k]) for k in kept)
    proto = pruned.model[-1].proto
    assert proto.upsample.out_channels == proto.cv1.conv.out_channels < source.model[-1].proto.cv1.conv.out_channels
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_matching_batchnorm_statistics_keeps_the_function_and_stores_the_images_moments():
    from yolo_prune.recovery.calibration import match_batchnorm_statistics
    from yolo_prune.recovery.distillation import raw_outputs

    source, _ = pruned_source()
    model = copy.deepcopy(source).eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for norm in norms:
            norm.running_var.mul_(torch.rand_like(norm.running_var) + 0.5)  # statistics that no longer match
        before = model(IMAGES)[0]
    match_batchnorm_statistics(model, [{"img": IMAGES}])
    with torch.no_grad():
        after = model(IMAGES)[0]
        frozen = raw_outputs(model, IMAGES)  # training-mode head, stored statistics
        model.train()
        for norm in norms:
            norm.momentum = 0.0  # normalise with the batch's statistics, keep the stored ones
        batch = model(IMAGES)
    model.eval()
    assert torch.allclose(after, before, rtol=1e-4, atol=1e-4 * before.abs().max().item())
    for key in ("boxes", "scores"):  # training mode now computes what eval mode computes on these images
        assert torch.allclose(batch[key], frozen[key], atol=1e-3 * frozen[key].abs().max().item())


def test_only_models_whose_every_cut_layer_has_batchnorm_fade():
    from conftest import tiny_task_model
    from yolo_prune.recovery.fading import fades_every_cut

    for task, fades in (("pose", True), ("segment", False)):  # segmentation: the prototypes' upsampler
        source = tiny_task_model("yolov8n.yaml", task)
        pruned, _ = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True))
        assert fades_every_cut(source, pruned) is fades
    assert fades_every_cut(tiny_detector(), tiny_detector())
