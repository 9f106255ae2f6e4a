"""Datasets: the offline synthetic shapes set (``synthetic``) and COCO-JSON to Ultralytics conversion (``coco``)."""

from .coco import coco_to_yolo
from .synthetic import make_synthetic_dataset

__all__ = ["coco_to_yolo", "make_synthetic_dataset"]
