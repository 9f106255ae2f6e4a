"""Ultralytics label lines of one drawn shape for every task: boxes, polygons, keypoints and rotated boxes.

All coordinates are normalised by the image side, as Ultralytics' YOLO label format expects:

* ``detect``:  ``cls cx cy w h``
* ``segment``: ``cls x1 y1 x2 y2 ...`` (the shape's outline, a polygon)
* ``pose``:    ``cls cx cy w h`` then ``x y v`` per keypoint; the 4 keypoints are the shape's extreme points, top,
  right, bottom and left (``kpt_shape: [4, 3]``; a horizontal flip swaps right and left: ``flip_idx: [0, 3, 2, 1]``)
* ``obb``:     ``cls x1 y1 x2 y2 x3 y3 x4 y4`` (the corners of the shape's minimum-area rotated rectangle)
* ``classify``: no label file; the class is the image's folder.
"""

from __future__ import annotations

import cv2
import numpy as np

TASKS = ("detect", "segment", "pose", "obb", "classify")
KPT_SHAPE = [4, 3]
FLIP_IDX = [0, 3, 2, 1]
VISIBLE = 2  # Ultralytics' visibility flag of a labelled, visible keypoint


def outline(mask: np.ndarray) -> np.ndarray:
    """The outer contour of a 0/1 mask's largest blob, as ``(N, 2)`` pixel points (float, pixel centres)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contour = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    return contour + 0.5


def extreme_points(points: np.ndarray) -> np.ndarray:
    """The top, right, bottom and left points of an outline, as ``(4, 2)``."""
    return np.stack(
        [points[points[:, 1].argmin()], points[points[:, 0].argmax()], points[points[:, 1].argmax()],
         points[points[:, 0].argmin()]]
    )  # fmt: skip


def rotated_corners(points: np.ndarray) -> np.ndarray:
    """The 4 corners of the minimum-area rotated rectangle around an outline, as ``(4, 2)``."""
    return cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32))).astype(np.float64)


def label_line(task: str, cls: int, box: tuple[int, int, int, int], mask: np.ndarray, imgsz: int) -> str:
    """One label line of a drawn shape for ``task`` (see the module docstring for the formats).

    Args:
        task: One of ``detect``, ``segment``, ``pose``, ``obb``.
        cls: Class index.
        box: Tight pixel box ``(x0, y0, x1, y1)``, exclusive ends.
        mask: The shape's 0/1 mask.
        imgsz: Image side in pixels.

    Returns:
        The line, without a newline.
    """
    x0, y0, x1, y1 = box
    xywh = [(x0 + x1) / 2 / imgsz, (y0 + y1) / 2 / imgsz, (x1 - x0) / imgsz, (y1 - y0) / imgsz]
    if task == "detect":
        values = xywh
    elif task == "segment":
        values = _clipped(outline(mask) / imgsz)
    elif task == "pose":
        kpts = _clipped(extreme_points(outline(mask)) / imgsz)
        values = xywh + [v for x, y in zip(kpts[0::2], kpts[1::2]) for v in (x, y, VISIBLE)]
    elif task == "obb":
        values = _clipped(rotated_corners(outline(mask)) / imgsz)
    else:
        raise ValueError(f"no label line for task '{task}'")
    return " ".join([str(cls), *(f"{v:.6f}" if isinstance(v, float) else str(v) for v in values)])


def _clipped(points: np.ndarray) -> list[float]:
    """Normalised points clipped to the image, flattened to ``[x1, y1, x2, y2, ...]``."""
    return [float(v) for v in np.clip(points, 0.0, 1.0).reshape(-1)]


def yaml_extras(task: str) -> dict:
    """The data.yaml keys a task needs besides paths and names (pose: ``kpt_shape`` and ``flip_idx``)."""
    return {"kpt_shape": KPT_SHAPE, "flip_idx": FLIP_IDX} if task == "pose" else {}
