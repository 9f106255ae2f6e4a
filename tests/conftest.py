"""Shared fixtures: offline Ultralytics, tiny yaml-built detectors and a generated dataset."""

import os

os.environ["YOLO_OFFLINE"] = "1"  # before Ultralytics is imported anywhere

import pytest
from ultralytics.nn.tasks import DetectionModel

FAMILIES = ("yolov8n.yaml", "yolo11n.yaml", "yolo26n.yaml")
NAMES = {0: "circle", 1: "square", 2: "triangle"}


def tiny_detector(cfg: str = "yolov8n.yaml") -> DetectionModel:
    """A randomly initialised 3-class detector built from a stock yaml, as a user's trained model would be."""
    model = DetectionModel(cfg, nc=len(NAMES), verbose=False)
    model.names = dict(NAMES)
    return model.eval()


@pytest.fixture(scope="session")
def dataset_yaml(tmp_path_factory):
    """A small generated 3-class dataset (YOLO labels + COCO JSON) in 64 px images."""
    from yolo_prune.data.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), n_train=16, n_val=8, imgsz=64, seed=0)
