"""Segment, pose, OBB and classify models of every family prune into stock models of their task."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.nn.modules import Segment
from ultralytics.utils.torch_utils import get_flops

from conftest import FAMILIES, TASK_FAMILIES, task_cfg, tiny_task_model
from helpers import assert_stock_rebuild_keeps_every_tensor, with_distinct_batchnorms
from yolo_prune import PruneError, prune_yolo, sensitivity
from yolo_prune.cli import main
from yolo_prune.data.task_labels import extreme_points, outline, rotated_corners
from yolo_prune.pruning.architecture import build_from_yaml, current_widths, pruned_yaml
from yolo_prune.pruning.groups import build_graph
from yolo_prune.recovery.distillation import distillation_loss, raw_outputs
from yolo_prune.recovery.finetune import task_accuracy


def task_outputs(model, imgsz: int = 64) -> list[torch.Tensor]:
    """The task's inference outputs: decoded predictions (+ mask prototypes), or class probabilities."""
    model.eval()
    with torch.no_grad():
        y = model(torch.rand(1, 3, imgsz, imgsz, generator=torch.Generator().manual_seed(0)))
    y = y[0]  # (decoded, raw dict), or (probabilities, logits) for classify
    return list(y) if isinstance(y, tuple) else [y]


@pytest.mark.parametrize("family,task", TASK_FAMILIES)
def test_every_task_prunes_into_a_stock_model_of_its_task(family, task):
    source = tiny_task_model(family, task)
    pruned = prune_yolo(source, ratio=0.3, verbose=False)

    assert pruned.task == task and type(pruned.model) is type(source)
    assert_stock_rebuild_keeps_every_tensor(pruned.model)
    assert sum(p.numel() for p in pruned.model.parameters()) < sum(p.numel() for p in source.parameters())
    ours, theirs = task_outputs(pruned.model), task_outputs(source)
    assert [t.shape[:2] for t in ours] == [t.shape[:2] for t in theirs]  # classes, masks, keypoints, angles kept
    assert all(torch.isfinite(t).all() for t in ours)


@pytest.mark.parametrize("family", FAMILIES)
def test_segmentation_prototype_width_is_pruned_and_written_to_the_yaml(family):
    source = tiny_task_model(family, "segment")
    pruned = prune_yolo(source, ratio=0.5, global_pruning=False, verbose=False).model
    head, row = pruned.model[-1], pruned.yaml["head"][-1]
    assert isinstance(head, Segment) and head.npr < source.model[-1].npr
    assert row[3][2] == head.npr == head.proto.cv1.conv.out_channels == head.proto.upsample.out_channels
    assert head.proto.cv3.conv.out_channels == head.nm  # the mask count is the task's


@pytest.mark.parametrize("family,task", TASK_FAMILIES)
def test_stock_task_models_reach_the_compute_target(family, task):
    """The models as Ultralytics ships them (80 classes, 17 keypoints), at 640 px (224 for classify)."""
    source = YOLO(task_cfg(family, task)).model
    imgsz = 224 if task == "classify" else 640
    pruned = prune_yolo(source, ratio=0.3, verbose=False).model
    share = get_flops(pruned, imgsz) / get_flops(source, imgsz)
    # YOLO26's pose branch is 2 x 85 channels of 3x3 convolutions per level, a width Ultralytics derives from the
    # 17 keypoints that stock `load` does not transplant: 43% of the model's convolution work, which stays.
    assert share <= (0.72 if (family, task) == ("yolo26n.yaml", "pose") else 0.65)


def test_training_only_branches_are_pruned_with_what_they_read():
    """YOLO26's semantic-segmentation and keypoint-sigma branches only run in training; they must stay loadable."""
    for task in ("segment", "pose"):
        pruned = prune_yolo(tiny_task_model("yolo26n.yaml", task), ratio=0.3, verbose=False).model
        pruned.train()
        out = pruned(torch.zeros(2, 3, 64, 64))
        preds = out["one2many"]
        if task == "segment":
            assert preds["proto"][1].shape[1] == 3  # semantic logits, one per class
        else:
            assert preds["kpts_sigma"].shape[1] == 2 * 4


def test_training_only_branches_are_traced():
    model = tiny_task_model("yolo26n.yaml", "segment")
    graph = build_graph(model)
    assert model.model[-1].proto.semseg[0].conv in graph.module2node


@pytest.mark.parametrize("importance", ["auto", "taylor", "fisher"])
def test_classification_prunes_with_data_from_class_folders(importance, task_dataset, tmp_path):
    """Distillation with fading (KL on the class distribution), label gradients and the output Fisher score."""
    source = tiny_task_model("yolov8n.yaml", "classify")
    pruned = prune_yolo(source, ratio=0.3, data=task_dataset("classify"), imgsz=64, importance=importance,
                        distill=importance == "auto", save=tmp_path / "cls.pt", verbose=False)  # fmt: skip
    assert pruned.task == "classify" and pruned.ckpt["yolo_prune"]["distilled"] is (importance == "auto")
    assert_stock_rebuild_keeps_every_tensor(pruned.model)


def test_classification_data_must_be_class_folders(task_dataset):
    with pytest.raises(PruneError, match="not a classification dataset"):
        prune_yolo(tiny_task_model("yolov8n.yaml", "classify"), ratio=0.3, data=task_dataset("detect"), imgsz=64)


def test_classification_calibration_spreads_over_the_classes(task_dataset):
    from yolo_prune.recovery.calibration import calibration_batches

    batches = calibration_batches(task_dataset("classify"), 64, images=8, task="classify")
    classes = torch.cat([b["cls"] for b in batches])
    assert len(classes) == 8 and len(set(classes.tolist())) > 1
    assert all(0 <= b["img"].min() and b["img"].max() <= 1 for b in batches)


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
@pytest.mark.parametrize("importance", ["taylor", "hessian"])
def test_loss_gradients_read_the_task_labels(task, importance, task_dataset):
    """Taylor and Hessian scores backpropagate the task's own loss (masks, keypoints, rotated boxes)."""
    pruned = prune_yolo(tiny_task_model("yolov8n.yaml", task), ratio=0.3, data=task_dataset(task), imgsz=64,
                        importance=importance, distill=False, verbose=False)  # fmt: skip
    assert pruned.task == task


def test_synthetic_task_labels_match_the_drawn_shape():
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 20:50] = 1  # a 30 x 20 rectangle
    points = outline(mask)
    assert np.allclose(points.min(0), [20.5, 10.5]) and np.allclose(points.max(0), [49.5, 29.5])
    top, right, bottom, left = extreme_points(points)
    assert top[1] == points[:, 1].min() and right[0] == points[:, 0].max()
    assert bottom[1] == points[:, 1].max() and left[0] == points[:, 0].min()
    corners = rotated_corners(points)
    assert np.allclose(sorted(set(np.round(corners[:, 0], 3))), [20.5, 49.5])


@pytest.mark.parametrize("task,key", [("segment", "mask_coefficient"), ("segment", "proto"), ("pose", "kpts"),
                                      ("obb", "angle")])  # fmt: skip
def test_distillation_pulls_the_task_outputs_too(task, key):
    model = tiny_task_model("yolov8n.yaml", task)
    with torch.no_grad():
        teacher = raw_outputs(model, torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    student = {k: v.clone().requires_grad_() if torch.is_tensor(v) else v for k, v in teacher.items()}  # trains
    student[key] = student[key] + 0.5 * student[key].std() * torch.randn_like(student[key])
    reg_max = model.model[-1].reg_max
    assert distillation_loss(student, teacher, reg_max) > distillation_loss(teacher, teacher, reg_max) + 1e-3


def test_a_segment_model_is_cut_first_then_distilled_on_its_data(task_dataset):
    from yolo_prune.pruning.core import PruneOptions, prune_with_channel_map
    from yolo_prune.recovery.fading import fades_every_cut

    source = tiny_task_model("yolov8n.yaml", "segment")
    pruned, _ = prune_with_channel_map(source, PruneOptions(0.3, "damage", global_pruning=True, protected_stride=8))
    assert not fades_every_cut(source, pruned)  # the prototypes' upsampler has no BatchNorm to fade by
    model = prune_yolo(source, speed_up=1.5, imgsz=64, data=task_dataset("segment"), verbose=False)
    assert model.ckpt["yolo_prune"]["distilled"] is True
    assert_stock_rebuild_keeps_every_tensor(model.model)


def test_distill_without_data_generates_images_a_pose_model_can_read():
    pose = prune_yolo(tiny_task_model("yolov8n.yaml", "pose"), speed_up=1.25, imgsz=64, distill=True, verbose=False)
    assert pose.ckpt["yolo_prune"]["distilled"] is True  # its generated data.yaml carries the model's kpt_shape


def test_a_classifier_distils_without_data_on_generated_class_folders(tmp_path, monkeypatch):
    import tempfile

    from yolo_prune.data.dead_leaves import write_dead_leaves
    from yolo_prune.recovery.calibration import calibration_batches

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the generated images are written
    images = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.random.fork_rng():  # the same random classifier whatever ran before
        torch.manual_seed(0)
        source = with_distinct_batchnorms(tiny_task_model("yolov8n.yaml", "classify"), images)
    with torch.no_grad():
        source.model[-1].linear.weight.mul_(10)  # confident logits, as after training
    distilled = prune_yolo(source, speed_up=1.5, imgsz=64, distill=True, verbose=False)
    plain = prune_yolo(source, speed_up=1.5, imgsz=64, verbose=False)
    assert distilled.task == "classify" and distilled.ckpt["yolo_prune"]["distilled"] is True
    assert not list(tmp_path.glob("yolo_prune_leaves_*"))  # removed once distilled
    # Other generated images than the ones distilled on (a random classifier's logits on other kinds of images
    # mean little: on the synthetic shapes, seeds 0-5 gave 0.2x to 2.5x the plain prune's distance).
    held_out = calibration_batches(write_dead_leaves(tmp_path / "held_out", 16, 64, seed=7, classify=True), 64,
                                   images=8, task="classify")[0]["img"]

    def distance(model) -> float:
        with torch.no_grad():
            return distillation_loss(raw_outputs(model, held_out), raw_outputs(source, held_out), 16).item()

    assert distance(distilled.model) < 0.8 * distance(plain.model)  # seed 0: 0.66x (seeds 0-3: 0.17x-0.66x)


def test_task_accuracy_reads_each_tasks_metric():
    pair = lambda a, b: SimpleNamespace(map=a, map50=b)  # noqa: E731
    assert task_accuracy(SimpleNamespace(box=pair(0.1, 0.2))) == (0.1, 0.2)  # detect, obb
    assert task_accuracy(SimpleNamespace(box=pair(0.1, 0.2), seg=pair(0.3, 0.4))) == (0.3, 0.4)
    assert task_accuracy(SimpleNamespace(box=pair(0.1, 0.2), pose=pair(0.5, 0.6))) == (0.5, 0.6)
    assert task_accuracy(SimpleNamespace(top1=0.7, top5=0.9)) == (0.7, 0.9)


@pytest.mark.parametrize("task", ["segment", "pose", "obb"])
def test_synthetic_task_sets_load_in_ultralytics(task, task_dataset):
    data = task_dataset(task)
    info = check_det_dataset(str(data))
    cfg = get_cfg(overrides={"task": task, "imgsz": 64})
    labels = build_yolo_dataset(cfg, info["val"], 4, info, mode="val").labels
    assert len(labels) == 8 and all(len(lb["cls"]) >= 1 for lb in labels)
    first = labels[0]
    if task == "pose":
        assert first["keypoints"].shape[1:] == (4, 3)
        assert np.all(first["keypoints"][..., 2] == 2)  # all visible
    else:
        assert len(first["segments"]) == len(first["cls"])  # polygons, or the 4 rotated-box corners
        assert task != "obb" or first["segments"][0].shape == (4, 2)


def test_synthetic_classification_set_is_class_folders(task_dataset):
    root = task_dataset("classify")
    counts = {split: sum(1 for _ in (root / split).rglob("*.jpg")) for split in ("train", "val")}
    assert counts == {"train": 16, "val": 8}
    assert sorted(p.name for p in (root / "train").iterdir()) == ["circle", "square", "triangle"]


def test_dataset_verb_writes_any_task(tmp_path, capsys):
    assert main(["dataset", f"out={tmp_path}", "task=obb", "n_train=2", "n_val=1", "imgsz=64"]) == 0
    lines = (tmp_path / "labels" / "train" / "train_00000.txt").read_text().splitlines()
    assert lines and all(len(line.split()) == 9 for line in lines)  # cls + 4 corners


@pytest.mark.parametrize("task", ["segment", "classify"])
def test_compute_targets_hold_for_task_models(task):
    source = tiny_task_model("yolo11n.yaml", task)
    imgsz = 224 if task == "classify" else 640
    pruned = prune_yolo(source, speed_up=1.5, verbose=False).model
    assert get_flops(source, imgsz) / get_flops(pruned, imgsz) == pytest.approx(1.5, rel=0.03)


def test_sensitivity_measures_the_tasks_metric(task_dataset, tmp_path):
    """Classification: top-1 accuracy, as the stock validator reports it."""
    data, pt = task_dataset("classify"), tmp_path / "cls.pt"
    prune_yolo(tiny_task_model("yolov8n.yaml", "classify"), layer_ratios={0: 0.0}, save=pt, verbose=False)
    result = sensitivity(pt, data, ratios=(0.3,), layers=[[0, 1]], imgsz=64, project=tmp_path, batch=8, workers=0)
    top1 = YOLO(pt).val(data=str(data), imgsz=64, batch=8, workers=0, plots=False, project=tmp_path).top1
    assert result.base_map50_95 == pytest.approx(top1)


def test_derived_task_branch_follows_the_pruned_p3_width():
    """Pose's keypoint branch is max(P3 / 4, keypoint values) wide: a narrower P3 narrows it, and it still loads."""
    source = tiny_task_model("yolov8n.yaml", "pose")  # 4 keypoints x 3: the branch is max(64 // 4, 12) = 16 wide
    pruned = prune_yolo(source, ratio=0.5, global_pruning=False, verbose=False).model
    head = pruned.model[-1]
    p3 = head.cv2[0][0].conv.in_channels
    assert p3 < 64 and head.cv4[0][0].conv.out_channels == max(p3 // 4, 12) < 16
    assert_stock_rebuild_keeps_every_tensor(pruned)


@pytest.mark.parametrize("family", FAMILIES)
def test_yaml_of_unchanged_widths_rebuilds_the_same_segmentation_model(family):
    """The written yaml holds the actual prototype width (the stock row's 256 is scaled by a width multiple)."""
    source = tiny_task_model(family, "segment")
    rebuilt = build_from_yaml(pruned_yaml(source, current_widths(source)), source)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in source.state_dict().items()}
