"""Property tests (hypothesis): whatever the family, ratio, round_to, criterion, mode and image size, pruning yields a
stock-loadable model with finite outputs of unchanged shape, widths that follow the documented rounding, no emptied
group, and a clear PruneError for every option the yaml cannot express.

Documented width rule (``yolo_prune.pruning.widths.round_width``), checked here on every width pruning decides:
    kept = min(original, max(round_to, round_half_up(original * (1 - ratio) / round_to) * round_to))
so a width is a multiple of ``round_to`` unless it keeps its original width (a layer narrower than ``round_to``),
never grows and never drops below ``min(round_to, original)``. Global pruning ranks channels instead of applying the
ratio per slot, but obeys the same bounds. Re-pruning applies the second ratio to the already pruned widths:
    width_after_two = rule(rule(original, r1), r2)  ~  original * (1 - r1) * (1 - r2)   (within one round_to).
"""

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ultralytics.nn.modules import C2f, Conv
from ultralytics.utils.torch_utils import get_num_params

from conftest import FAMILIES, tiny_detector
from helpers import assert_stock_rebuild_keeps_every_tensor, slot_widths
from yolo_prune import PruneError, prune_yolo
from yolo_prune.pruning.core import PruneOptions, prune_detection_model

CRITERIA = ("l1", "l2", "bn", "lamp", "random")  # the data-free criteria (taylor/hessian need a dataset)
ROUND_TO = (8, 16, 24, 32, 64)  # every positive multiple of 8 is valid; 24 is not a power of two on purpose
IMGSZ = (32, 64, 96, 128)

_BASES: dict[str, tuple] = {}  # family -> (model, state_dict snapshot); built once, never mutated by pruning
_BASE_SHAPES: dict[tuple[str, int], list[tuple]] = {}


def base(cfg: str):
    """The family's random-init detector, seeded so that a falsifying example reproduces in any process."""
    if cfg not in _BASES:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = tiny_detector(cfg)
        _BASES[cfg] = model, {k: v.clone() for k, v in model.state_dict().items()}
    return _BASES[cfg][0]


def assert_base_untouched(cfg: str) -> None:
    model, snapshot = _BASES[cfg]
    now = model.state_dict()
    assert now.keys() == snapshot.keys() and all(torch.equal(now[k], snapshot[k]) for k in snapshot)


def forward(model, imgsz: int) -> list[torch.Tensor]:
    """Eval-mode predictions on a fixed random image: decoded output plus each head's raw boxes and scores.

    The raw ``feats`` (Detect's input feature maps) are left out: their channel counts are what pruning changes.
    """
    x = torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(imgsz))
    model.eval()
    with torch.no_grad():
        y, preds = model(x)
    heads = [preds[k] for k in ("one2many", "one2one") if k in preds] or [preds]
    return [y, *(head[k] for head in heads for k in ("boxes", "scores"))]


def base_shapes(cfg: str, imgsz: int) -> list[tuple]:
    if (cfg, imgsz) not in _BASE_SHAPES:
        _BASE_SHAPES[cfg, imgsz] = [tuple(t.shape) for t in forward(base(cfg), imgsz)]
    return _BASE_SHAPES[cfg, imgsz]


def rule(original: int, ratio: float, round_to: int) -> int:
    """The documented per-slot width rule (independent restatement of ``round_width``)."""
    return min(original, max(round_to, math.floor(original * (1 - ratio) / round_to + 0.5) * round_to))


def decided_widths(model) -> tuple[list[int], list[bool], int]:
    """``helpers.slot_widths`` plus, per entry, whether the width is fixed by design (the hidden width of a C3k2
    with attention blocks), and how many trailing entries are Detect cls-branch widths."""
    fixed = []
    for layer in model.model:
        if isinstance(layer, Conv):
            fixed.append(False)
        elif isinstance(layer, C2f):
            fixed += [False, isinstance(layer.m[0], torch.nn.Sequential)]
    head = len(model.model[-1].cv3)
    return slot_widths(model), fixed + [False] * head, head


def assert_uniform_rule(before: list[int], after: list[int], fixed: list[bool], n_head: int, ratio, round_to) -> None:
    """Body widths follow ``rule`` exactly (fixed ones stay); cls-branch widths may be nudged by one round_to."""
    n_body = len(before) - n_head
    expected = [b if f else rule(b, ratio, round_to) for b, f in zip(before, fixed)]
    assert after[:n_body] == expected[:n_body]
    for e, w in zip(expected[n_body:], after[n_body:]):  # kept transplantable by stock DetectionModel.load
        assert abs(w - e) in (0, round_to), (e, w)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~1.5 s an example
@given(
    cfg=st.sampled_from(FAMILIES),
    ratio=st.floats(0.05, 0.9),
    round_to=st.sampled_from(ROUND_TO),
    importance=st.sampled_from(CRITERIA),
    global_pruning=st.booleans(),
    imgsz=st.sampled_from(IMGSZ),
)
def test_any_options_give_a_stock_finite_model(cfg, ratio, round_to, importance, global_pruning, imgsz):
    source = base(cfg)
    pruned = prune_detection_model(source, PruneOptions(ratio, importance, global_pruning, round_to))

    assert type(pruned).__name__ == "DetectionModel"
    assert_stock_rebuild_keeps_every_tensor(pruned)  # yaml rebuild + load keeps every tensor
    assert "scales" not in pruned.yaml

    outputs = forward(pruned, imgsz)
    assert [tuple(t.shape) for t in outputs] == base_shapes(cfg, imgsz)
    assert all(torch.isfinite(t).all() for t in outputs)

    (before, fixed, n_head), after = decided_widths(source), slot_widths(pruned)
    assert len(before) == len(after)
    if not global_pruning:
        assert_uniform_rule(before, after, fixed, n_head, ratio, round_to)
    for b, w in zip(before, after):
        assert min(round_to, b) <= w <= b, (b, w)  # never emptied below the clamp, never grown
        assert w % round_to == 0 or w == b, (b, w)  # honours round_to unless it kept its original width
    for module in pruned.modules():  # no group emptied anywhere, derived widths included
        if isinstance(module, torch.nn.Conv2d):
            assert module.in_channels > 0 and module.out_channels > 0
    assert get_num_params(pruned) <= get_num_params(source)
    assert_base_untouched(cfg)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~2.4 s an example
@given(
    cfg=st.sampled_from(FAMILIES),
    r1=st.floats(0.05, 0.9),
    r2=st.floats(0.05, 0.9),
    round_to=st.sampled_from((8, 16, 32)),
    global_pruning=st.booleans(),
)
def test_repruning_compounds(cfg, r1, r2, round_to, global_pruning):
    source = base(cfg)
    once = prune_detection_model(source, PruneOptions(r1, "l2", global_pruning, round_to))
    twice = prune_detection_model(once, PruneOptions(r2, "l2", global_pruning, round_to))

    assert_stock_rebuild_keeps_every_tensor(twice)
    assert get_num_params(twice) <= get_num_params(once)
    (before, fixed, n_head), mid, after = decided_widths(source), slot_widths(once), slot_widths(twice)
    assert all(w2 <= w1 for w1, w2 in zip(mid, after))
    if global_pruning:
        return
    assert_uniform_rule(mid, after, fixed, n_head, r2, round_to)  # r2 applies to the already pruned widths
    for b, w, f in zip(before[:-n_head], after[:-n_head], fixed):
        ideal = b if f else b * (1 - r1) * (1 - r2)
        assert min(round_to, b) <= w and (w <= round_to or abs(w - ideal) <= round_to), (b, w, ideal)


@settings(max_examples=25, deadline=None)
@given(round_to=st.one_of(st.integers(-64, 256).filter(lambda r: r <= 0 or r % 8), st.sampled_from([8.0, True])))
def test_round_to_the_yaml_cannot_hold_is_refused(round_to):
    with pytest.raises(PruneError, match="round_to=.* must be a positive multiple of 8"):
        prune_yolo(base("yolov8n.yaml"), ratio=0.3, round_to=round_to, verbose=False)


@settings(max_examples=25, deadline=None)
@given(
    ratio=st.one_of(
        st.floats(max_value=0.0),
        st.floats(min_value=1.0),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), True, False, "0.3"]),
    )
)
def test_ratio_outside_0_1_is_refused(ratio):
    with pytest.raises(PruneError, match="strictly between 0 and 1"):
        prune_yolo(base("yolov8n.yaml"), ratio=ratio, verbose=False)


@settings(max_examples=25, deadline=None)
@given(imgsz=st.one_of(st.integers(-128, 2048).filter(lambda s: s < 32 or s % 32), st.sampled_from([64.0, True])))
def test_imgsz_off_the_stride_is_refused(imgsz):
    with pytest.raises(PruneError, match="multiple of 32"):
        prune_yolo(base("yolov8n.yaml"), ratio=0.3, imgsz=imgsz, verbose=False)


@pytest.mark.parametrize("global_second", [True, False])
def test_repruning_a_globally_pruned_model(global_second):
    """Falsifying example found by test_repruning_compounds, pinned: re-pruning a globally pruned yolo11n whose
    level-0 cls-branch width is already round_to (16) while its P3 width falls to 16 must not fail."""
    with torch.random.fork_rng():
        torch.manual_seed(11)
        source = tiny_detector("yolo11n.yaml")
    once = prune_detection_model(source, PruneOptions(0.7, "l2", True, 16))  # 0.4179 before per-GFLOP ranking
    assert once.model[-1].cv3[0][-1].in_channels == 16  # the precondition of this example
    twice = prune_detection_model(once, PruneOptions(0.3 if global_second else 0.5, "l2", global_second, 16))
    assert_stock_rebuild_keeps_every_tensor(twice)
    assert all(w2 <= w1 for w1, w2 in zip(slot_widths(once), slot_widths(twice)))
