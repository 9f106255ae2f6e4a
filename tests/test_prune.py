"""prune_yolo on every family: shapes, widths, stock rebuild, transferred tensors, determinism, options."""

import copy

import pytest
import torch
from ultralytics import YOLO
from ultralytics.utils.torch_utils import get_flops, get_num_params

from conftest import FAMILIES, tiny_detector
from helpers import assert_stock_rebuild_keeps_every_tensor, output_shapes, pickled_globals, slot_widths
from yolo_prune import prune_yolo
from yolo_prune.pruning.core import PruneOptions, prune_detection_model
from yolo_prune.pruning.summary import equal_cost_imgsz, input_grid


@pytest.fixture(scope="module", params=FAMILIES)
def base_and_pruned(request):
    base = tiny_detector(request.param)
    return base, prune_yolo(base, ratio=0.3, verbose=False).model


def test_returns_yolo_with_stock_detection_model(tmp_path):
    pruned = prune_yolo(tiny_detector(), ratio=0.3, save=tmp_path / "p.pt", verbose=False)
    assert type(pruned) is YOLO
    assert type(pruned.model).__name__ == "DetectionModel"
    assert pruned.ckpt_path == str(tmp_path / "p.pt")
    names = pickled_globals(tmp_path / "p.pt")
    assert "ultralytics.nn.tasks.DetectionModel" in names
    assert all(name.startswith(("ultralytics.", "torch.", "builtins.", "__builtin__.", "collections.")) for name in names), names


def test_output_shapes_unchanged(base_and_pruned):
    base, pruned = base_and_pruned
    assert output_shapes(pruned) == output_shapes(base)


def test_widths_shrink_and_are_multiples_of_round_to(base_and_pruned):
    base, pruned = base_and_pruned
    before, after = slot_widths(base), slot_widths(pruned)
    assert all(w % 8 == 0 for w in after)
    assert all(a <= b for a, b in zip(after, before))
    assert sum(after) < 0.8 * sum(before)


def test_gflops_and_params_fall(base_and_pruned):
    base, pruned = base_and_pruned
    assert get_flops(pruned, 640) <= 0.70 * get_flops(base, 640)
    assert get_num_params(pruned) < 0.85 * get_num_params(base)  # the default ranking spends the cut on GFLOPs


def test_stock_yaml_rebuild_keeps_every_tensor(base_and_pruned):
    assert_stock_rebuild_keeps_every_tensor(base_and_pruned[1])


def test_yaml_holds_no_scaling(base_and_pruned):
    cfg = base_and_pruned[1].yaml
    assert "scales" not in cfg and cfg["width_multiple"] == 1.0 and cfg["depth_multiple"] == 1.0


def test_yolov8n_reaches_core_targets():
    base = tiny_detector("yolov8n.yaml")
    pruned = prune_detection_model(base, PruneOptions(ratio=0.3))
    assert get_flops(pruned, 640) <= 0.60 * get_flops(base, 640)
    assert get_num_params(pruned) <= 0.55 * get_num_params(base)


def test_least_important_channels_go_and_kept_filters_transfer():
    base = tiny_detector("yolov8n.yaml")
    first, consumer = base.model[0], base.model[1]
    with torch.no_grad():  # make channels 0..7 of the stem the weakest in their whole group
        first.conv.weight[:8] *= 1e-3
        first.bn.weight[:8] *= 1e-3
        consumer.conv.weight[:, :8] *= 1e-3
    pruned = prune_detection_model(base, PruneOptions(ratio=0.3))
    assert pruned.model[0].conv.out_channels == 8
    assert torch.equal(pruned.model[0].conv.weight, base.model[0].conv.weight[8:])
    assert torch.equal(pruned.model[0].bn.running_var, base.model[0].bn.running_var[8:])
    kept_inputs = base.model[1].conv.weight[:, 8:]
    assert any(torch.equal(pruned.model[1].conv.weight[i], kept_inputs[j]) for i in range(3) for j in range(32))


@pytest.mark.parametrize("cfg", FAMILIES)
def test_no_width_change_keeps_outputs_identical(cfg):
    base = tiny_detector(cfg)
    pruned = prune_detection_model(base, PruneOptions(ratio=0.01))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(base(x)[0], pruned(x)[0], atol=1e-5)


@pytest.mark.parametrize("cfg", FAMILIES)
def test_deterministic(cfg):
    base = tiny_detector(cfg)
    a = prune_detection_model(base, PruneOptions(ratio=0.4)).state_dict()
    b = prune_detection_model(base, PruneOptions(ratio=0.4)).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("importance", ["l1", "l2", "bn", "lamp", "random"])
def test_every_importance_gives_a_stock_model(importance):
    pruned = prune_detection_model(tiny_detector("yolo11n.yaml"), PruneOptions(0.3, importance=importance))
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_random_importance_is_seeded():
    base = tiny_detector()
    a = prune_detection_model(base, PruneOptions(0.3, importance="random")).state_dict()
    b = prune_detection_model(base, PruneOptions(0.3, importance="random")).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("cfg", FAMILIES)
def test_global_pruning_varies_widths_and_stays_stock(cfg):
    base = tiny_detector(cfg)
    uniform = prune_detection_model(base, PruneOptions(0.5))
    ranked = prune_detection_model(base, PruneOptions(0.5, global_pruning=True))
    assert slot_widths(ranked) != slot_widths(uniform)
    assert min(slot_widths(ranked)) >= 8
    assert_stock_rebuild_keeps_every_tensor(ranked)
    assert output_shapes(ranked) == output_shapes(base)


@pytest.mark.parametrize("ratio", [0.01, 0.5, 0.99])
@pytest.mark.parametrize("round_to", [8, 16])
def test_ratio_edges_never_empty_a_layer(ratio, round_to):
    base = tiny_detector("yolo26n.yaml")
    pruned = prune_detection_model(base, PruneOptions(ratio, round_to=round_to))
    widths = slot_widths(pruned)
    assert all(w >= min(round_to, b) for w, b in zip(widths, slot_widths(base)))
    assert all(w % round_to == 0 or w == b for w, b in zip(widths, slot_widths(base)))
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_repruning_compounds():
    once = prune_detection_model(tiny_detector(), PruneOptions(0.3))
    twice = prune_detection_model(once, PruneOptions(0.3))
    assert get_num_params(twice) < get_num_params(once)
    assert_stock_rebuild_keeps_every_tensor(twice)


def test_caller_model_is_not_mutated():
    base = tiny_detector()
    before = copy.deepcopy(base.state_dict())
    prune_yolo(base, ratio=0.5, verbose=False)
    after = base.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("cfg", FAMILIES)
def test_layers_saved_before_ultralytics_8_3_prune(cfg):
    """The released yolov8n.pt and yolo11n.pt were pickled by Ultralytics 8.0-8.2, whose layers have no ``np``
    attribute; pruning them raised AttributeError (C2f/C3k2 stand-ins copied it)."""
    old = tiny_detector(cfg)
    for layer in old.model:
        del layer.np
    pruned = prune_yolo(old, speed_up=1.25, verbose=False)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)
    assert slot_widths(pruned.model) != slot_widths(tiny_detector(cfg))


def test_half_precision_model_is_handled():
    pruned = prune_yolo(tiny_detector().half(), ratio=0.3, verbose=False)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)


def test_summary_logs_widths_and_totals(caplog):
    from ultralytics.utils import LOGGER

    LOGGER.propagate = True
    try:
        with caplog.at_level("INFO", logger=LOGGER.name):
            prune_yolo(tiny_detector(), ratio=0.3)
    finally:
        LOGGER.propagate = False
    text = caplog.text
    assert "widths before" in text and "GFLOPs@640" in text and "params" in text and "size (MB)" in text


def test_deep_data_free_prune_warns_and_a_mild_one_does_not(caplog):
    from ultralytics.utils import LOGGER

    LOGGER.propagate = True
    try:
        with caplog.at_level("INFO", logger=LOGGER.name):
            prune_yolo(tiny_detector(), speed_up=1.1, verbose=True)
            assert "without data" not in caplog.text
            assert "the source model at imgsz=608" in caplog.text  # 640 * sqrt(1 / 1.1) = 610 -> a multiple of 32
            prune_yolo(tiny_detector(), speed_up=2.0, verbose=False)
    finally:
        LOGGER.propagate = False
    assert "without data" in caplog.text and "data=your.yaml" in caplog.text
    assert "the unpruned model at imgsz=448 costs the same GFLOPs" in caplog.text


@pytest.mark.parametrize(("share", "imgsz", "expected"), [(1.0, 640, 640), (0.8, 640, 576), (0.5, 640, 448),
                                                           (0.5, 224, 160), (1e-4, 640, 32)])
def test_equal_cost_imgsz_is_the_nearest_multiple_of_32(share, imgsz, expected):
    assert equal_cost_imgsz(share, imgsz) == expected


def test_equal_cost_imgsz_costs_the_pruned_share_of_gflops():
    base = tiny_detector()
    pruned = prune_yolo(base, speed_up=2.0, verbose=False).model
    share = get_flops(pruned, 640) / get_flops(base, 640)
    size = equal_cost_imgsz(share, 640, input_grid(base))
    assert size == 448 and abs(get_flops(base, size) / get_flops(base, 640) - share) < 0.03


@pytest.mark.parametrize("cfg", FAMILIES)
@pytest.mark.parametrize("speed_up", [1.5, 2.0])
def test_speed_up_target_reached_within_3_percent(cfg, speed_up):
    base = tiny_detector(cfg)
    pruned = prune_yolo(base, speed_up=speed_up, verbose=False).model
    fraction = get_flops(pruned, 640) / get_flops(base, 640)
    assert abs(fraction * speed_up - 1) <= 0.03
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_target_gflops_reached_within_3_percent():
    base = tiny_detector("yolo11n.yaml")
    pruned = prune_yolo(base, target_gflops=4.0, imgsz=640, verbose=False).model
    assert abs(get_flops(pruned, 640) / 4.0 - 1) <= 0.03


def test_global_ranking_cost_exponent_leans_towards_the_costly_slot():
    from torch import nn

    from yolo_prune.pruning.architecture import Slot
    from yolo_prune.pruning.groups import ChannelGroup
    from yolo_prune.pruning.widths import global_widths

    cheap, costly = Slot(1, "c2"), Slot(2, "c2")
    groups = [ChannelGroup(nn.Conv2d(1, 16, 1), [], torch.linspace(1, 2, 16), cheap, cost=1.0),
              ChannelGroup(nn.Conv2d(1, 16, 1), [], torch.linspace(3, 6, 16), costly, cost=4.0)]  # fmt: skip
    original = {cheap: 16, costly: 16}
    by_score = global_widths(original, groups, 0.25, 1, cost_exponent=0.0)
    per_gflop = global_widths(original, groups, 0.25, 1)
    leaning = global_widths(original, groups, 0.25, 1, cost_exponent=2.0)
    assert by_score == {cheap: 8, costly: 16} and leaning == {cheap: 16, costly: 8}
    assert leaning[costly] <= per_gflop[costly] <= by_score[costly] and sum(per_gflop.values()) == 24


def test_layer_adaptive_ranking_ignores_a_group_scale_that_the_absolute_one_follows():
    from torch import nn

    from yolo_prune.pruning.architecture import Slot
    from yolo_prune.pruning.groups import ChannelGroup
    from yolo_prune.pruning.widths import global_widths, layer_adaptive_scores

    quiet, loud = Slot(1, "c2"), Slot(2, "c2")
    shape = torch.linspace(1, 2, 16)  # the same spread of damage, at scales 1 and 100
    groups = [ChannelGroup(nn.Conv2d(1, 16, 1), [], shape, quiet, cost=1.0),
              ChannelGroup(nn.Conv2d(1, 16, 1), [], 100 * shape, loud, cost=1.0)]  # fmt: skip
    original = {quiet: 16, loud: 16}
    assert global_widths(original, groups, 0.25, 1) == {quiet: 8, loud: 16}
    assert global_widths(original, groups, 0.25, 1, layer_adaptive=True) == {quiet: 12, loud: 12}
    shares = layer_adaptive_scores(torch.tensor([4.0, 2.0, 2.0]))
    assert torch.allclose(shares, torch.tensor([1.0, 1 / 3, 0.25]))


@pytest.mark.parametrize("cfg", FAMILIES)
def test_protected_stride_keeps_the_stem_whole_and_still_reaches_the_target(cfg):
    from dataclasses import replace

    from yolo_prune.pruning.architecture import layer_strides
    from yolo_prune.pruning.channel_map import batchnorms
    from yolo_prune.pruning.core import prune_with_channel_map

    source = tiny_detector(cfg)
    strides = layer_strides(source)
    assert [strides[i] for i in range(4)] == [2, 4, 4, 8]  # every family: two stride-2 convs, a block, then P3
    options = PruneOptions(0.3, "damage", global_pruning=True, protected_stride=8, cost_exponent=1.5)
    pruned, kept = prune_with_channel_map(source, replace(options, gflops_fraction=0.5))
    widths = {name: norm.num_features for name, norm in batchnorms(source).items()}
    layer = lambda name: int(name.split(".")[1])  # noqa: E731  ("model.<layer>. ...")
    assert all(len(c) == widths[n] for n, c in kept.items() if strides.get(layer(n), 8) < 8)
    assert any(len(c) < widths[n] for n, c in kept.items() if strides.get(layer(n), 0) >= 8)
    assert get_flops(pruned, 640) / get_flops(source, 640) == pytest.approx(0.5, rel=0.03)
