"""Shared fixtures: offline Ultralytics, tiny yaml-built models of every task and generated datasets."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before Ultralytics is imported anywhere

import pytest
from ultralytics.nn.tasks import ClassificationModel, DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.nn.tasks import yaml_model_load

FAMILIES = ("yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml")
NAMES = {0: "circle", 1: "square", 2: "triangle"}
TASK_MODELS = {  # task: (model class, yaml suffix)
    "segment": (SegmentationModel, "-seg"),
    "pose": (PoseModel, "-pose"),
    "obb": (OBBModel, "-obb"),
    "classify": (ClassificationModel, "-cls"),
}
TASKS = tuple(TASK_MODELS)
TASK_FAMILIES = [(family, task) for task in TASKS for family in FAMILIES]


def tiny_detector(cfg: str = "yolov8n.yaml") -> DetectionModel:
    """A randomly initialised 3-class detector built from a stock yaml, as a user's trained model would be."""
    model = DetectionModel(cfg, nc=len(NAMES), verbose=False)
    model.names = dict(NAMES)
    return model.eval()


def task_cfg(family: str, task: str) -> str:
    """The stock yaml name of ``family`` (``yolov8n.yaml``) for ``task`` (``yolov8n-seg.yaml``)."""
    return family.replace(".yaml", f"{TASK_MODELS[task][1]}.yaml")


def tiny_task_model(family: str, task: str):
    """A randomly initialised 3-class model of ``task`` from a stock yaml; pose models have the shapes' 4 keypoints."""
    model_class = TASK_MODELS[task][0]
    cfg = yaml_model_load(task_cfg(family, task))
    if task == "pose":
        cfg["kpt_shape"] = [4, 3]  # the synthetic pose set's keypoints (data.yaml kpt_shape)
    model = model_class(cfg, nc=len(NAMES), verbose=False)
    model.names = dict(NAMES)
    return model.eval()


@pytest.fixture(scope="session")
def task_dataset(tmp_path_factory):
    """A function returning a small generated dataset of a task (data.yaml, or the folder for classify), cached."""
    from yolo_prune.data.synthetic import make_synthetic_dataset

    made = {}

    def make(task: str):
        if task not in made:
            root = tmp_path_factory.mktemp(f"synthetic-{task}")
            made[task] = make_synthetic_dataset(root, n_train=16, n_val=8, imgsz=64, seed=0, task=task)
        return made[task]

    return make


@pytest.fixture(scope="session")
def dataset_yaml(tmp_path_factory):
    """A small generated 3-class dataset (YOLO labels + COCO JSON) in 64 px images."""
    from yolo_prune.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), n_train=16, n_val=8, imgsz=64, seed=0)
