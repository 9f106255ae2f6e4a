"""Channel maps and least-squares reconstruction of pruned convolutions (``prune_yolo(reconstruct=True)``)."""

import pytest
import torch
from torch import nn

from conftest import FAMILIES, tiny_detector
from helpers import assert_stock_rebuild_keeps_every_tensor, slot_widths
from yolo_prune import PruneError, prune_yolo
from yolo_prune.cli import main
from yolo_prune.pruning.channel_map import batchnorms
from yolo_prune.pruning.core import PruneOptions, prune_detection_model, prune_with_channel_map
from yolo_prune.recovery.calibration import calibration_batches
from yolo_prune.recovery.reconstruction import reconstruct_convolutions, reconstruction_images


def trained_looking(cfg: str = "yolov8n.yaml"):
    """A tiny detector whose BatchNorms hold distinct, random statistics and affine parameters (as after training)."""
    model = tiny_detector(cfg)
    generator = torch.Generator().manual_seed(0)
    for norm in batchnorms(model).values():
        n = norm.num_features
        norm.weight.data = torch.rand(n, generator=generator) + 0.5
        norm.bias.data = torch.randn(n, generator=generator) * 0.1
        norm.running_mean = torch.randn(n, generator=generator) * 0.1
        norm.running_var = torch.rand(n, generator=generator) + 0.5
    return model


def raw_outputs(model, images: torch.Tensor) -> torch.Tensor:
    """The head's raw box and class tensors (before decoding or top-k), flattened per image."""
    model.eval()
    with torch.no_grad():
        preds = model(images)[1]
    preds = preds.get("one2many", preds)
    return torch.cat([preds["boxes"].flatten(1), preds["scores"].flatten(1)], 1)


@pytest.fixture(scope="module")
def images(dataset_yaml):
    return [b["img"] for b in calibration_batches(str(dataset_yaml), imgsz=64, images=16)]


@pytest.mark.parametrize("cfg", FAMILIES)
def test_channel_map_names_the_source_channel_of_every_kept_channel(cfg):
    source = trained_looking(cfg)
    pruned, kept = prune_with_channel_map(source, PruneOptions(0.3, imgsz=64))
    theirs = batchnorms(source)
    assert kept.keys() == batchnorms(pruned).keys()
    shrunk = 0
    for name, norm in batchnorms(pruned).items():
        indices = kept[name]
        assert len(indices) == norm.num_features and bool((indices.diff() > 0).all()), name
        for attr in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(norm, attr), getattr(theirs[name], attr)[indices]), f"{name}.{attr}"
        shrunk += norm.num_features < theirs[name].num_features
    assert shrunk > 10
    assert_stock_rebuild_keeps_every_tensor(pruned)
    plain = prune_detection_model(source, PruneOptions(0.3, imgsz=64)).state_dict()
    assert all(torch.equal(v, plain[k]) for k, v in pruned.state_dict().items())  # the tags leave no trace


@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo26n.yaml"])  # C2f / Detect and C3k2, C2PSA / Detect26
def test_reconstruction_brings_the_outputs_back_towards_the_source(cfg, images):
    source = trained_looking(cfg)
    pruned, kept = prune_with_channel_map(source, PruneOptions(0.3, imgsz=64))
    target = raw_outputs(source, images[0])
    before = (raw_outputs(pruned, images[0]) - target).norm()
    reconstruct_convolutions(pruned, source, kept, images, verbose=False)
    after = (raw_outputs(pruned, images[0]) - target).norm()
    assert after < 0.5 * before, (float(before), float(after))
    assert_stock_rebuild_keeps_every_tensor(pruned)
    assert slot_widths(pruned) == slot_widths(prune_detection_model(source, PruneOptions(0.3, imgsz=64)))


def test_reconstruction_keeps_an_unpruned_model(images):
    source = trained_looking()
    same, kept = prune_with_channel_map(source, PruneOptions(0.01, imgsz=64))  # rounds to no removal
    reconstruct_convolutions(same, source, kept, images, verbose=False)
    expected = raw_outputs(source, images[0])
    assert torch.allclose(raw_outputs(same, images[0]), expected, atol=1e-3 * expected.abs().max())


def test_reconstruction_leaves_depthwise_and_dfl_convolutions_alone(images):
    source = trained_looking("yolo11n.yaml")  # its Detect cls branch has depthwise convolutions
    pruned, kept = prune_with_channel_map(source, PruneOptions(0.3, imgsz=64))
    frozen = {n: m.weight.clone() for n, m in pruned.named_modules()
              if isinstance(m, nn.Conv2d) and (m.groups > 1 or not m.weight.requires_grad)}  # fmt: skip
    assert any("dfl" in n for n in frozen) and any(pruned.get_submodule(n).groups > 1 for n in frozen)
    reconstruct_convolutions(pruned, source, kept, images, verbose=False)
    assert all(torch.equal(pruned.get_submodule(n).weight, w) for n, w in frozen.items())


def test_prune_yolo_reconstruct_gives_a_stock_checkpoint(dataset_yaml, tmp_path):
    source = trained_looking()
    out = tmp_path / "pruned.pt"
    same = {"ratio": 0.3, "imgsz": 64, "importance": "damage", "distill": False, "verbose": False}
    model = prune_yolo(source, data=dataset_yaml, reconstruct=True, save=out, **same)
    plain = prune_yolo(source, **same).model
    assert slot_widths(model.model) == slot_widths(plain)
    assert not torch.equal(model.model.model[4].cv2.conv.weight, plain.model[4].cv2.conv.weight)
    assert torch.load(out, weights_only=False)["yolo_prune"]["reconstructed"] is True
    assert_stock_rebuild_keeps_every_tensor(model.model)


def test_reconstruct_needs_data():
    with pytest.raises(PruneError, match="reconstruct=True"):
        prune_yolo(tiny_detector(), reconstruct=True, verbose=False)


def test_reconstruction_image_count_keeps_the_pixel_budget():
    assert reconstruction_images(128) == 128
    assert reconstruction_images(256) == 32
    assert reconstruction_images(640) == 16  # never fewer


def test_cli_prune_reconstruct(dataset_yaml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prune_yolo(trained_looking(), ratio=0.01, save=tmp_path / "base.pt", verbose=False)
    code = main(["prune", "model=base.pt", f"data={dataset_yaml}", "reconstruct=True", "imgsz=64", "verbose=False"])
    assert code == 0
    assert torch.load(tmp_path / "base-pruned.pt", weights_only=False)["yolo_prune"]["reconstructed"] is True
