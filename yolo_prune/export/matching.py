"""Agreement between two models' outputs: matched detections, or raw prediction tensors when there are none.

A detection agrees with one of the other model's when both have the same class and they overlap: boxes by IoU, and
per task also what the task predicts: rotated boxes by their probabilistic IoU (``obb``), masks by mask IoU
(``segment``), keypoints by their distance relative to the box (``pose``). A classification is one "detection" per
image (its top-1 class), so the agreement is the share of images with the same top-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_MATCH = 0.7  # a detection agrees with one of the same class that it overlaps by more than this
KEYPOINT_TOL = 0.05  # largest mean keypoint distance, as a share of the box diagonal, that still agrees


@dataclass(frozen=True)
class Detections:
    """Detections on one image: ``boxes`` (n, 4) xyxy pixels, ``classes`` (n,) ints, ``scores`` (n,).

    Per task, optionally: ``rotated`` (n, 5) xywhr boxes, ``masks`` (n, h, w) booleans, ``keypoints`` (n, k, 2) pixels.
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    rotated: np.ndarray | None = None
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.classes)

    @classmethod
    def of(cls, boxes, classes, scores, rotated=None, masks=None, keypoints=None) -> Detections:
        """Build from array-likes (tensors included), with float boxes/scores and int classes."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        classes, scores = np.asarray(classes).astype(np.int64).reshape(-1), np.asarray(scores, np.float64).reshape(-1)
        optional = {
            "rotated": None if rotated is None else np.asarray(rotated, np.float64).reshape(-1, 5),
            "masks": None if masks is None else np.asarray(masks, bool).reshape(len(classes), *np.shape(masks)[-2:]),
            "keypoints": None if keypoints is None or not len(classes) else np.asarray(keypoints, np.float64)[
                ..., :2].reshape(len(classes), -1, 2),
        }
        return cls(boxes, classes, scores, **optional)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box in ``a`` (n, 4) with every one in ``b`` (m, 4), as an (n, m) array."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every boolean mask in ``a`` (n, h, w) with every one in ``b`` (m, h, w), as an (n, m) array."""
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    inter = a @ b.T
    return inter / np.maximum(a.sum(1)[:, None] + b.sum(1)[None, :] - inter, 1e-12)


def rotated_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Probabilistic IoU (Ultralytics' ``batch_probiou``) of xywhr boxes ``a`` (n, 5) and ``b`` (m, 5)."""
    import torch
    from ultralytics.utils.metrics import batch_probiou

    return batch_probiou(torch.from_numpy(a), torch.from_numpy(b)).numpy()


def keypoint_closeness(reference: Detections, other: Detections) -> np.ndarray:
    """(n, m) booleans: mean keypoint distance within ``KEYPOINT_TOL`` of the reference box diagonal."""
    distance = np.linalg.norm(reference.keypoints[:, None] - other.keypoints[None], axis=-1).mean(-1)
    diagonal = np.linalg.norm(reference.boxes[:, 2:] - reference.boxes[:, :2], axis=-1)
    return distance <= KEYPOINT_TOL * np.maximum(diagonal, 1e-12)[:, None]


def overlaps(reference: Detections, other: Detections) -> np.ndarray:
    """(n, m) overlap of two images' detections: box (or rotated-box) IoU, capped by mask IoU, zero where the
    keypoints disagree (see the module docstring)."""
    if reference.rotated is not None and other.rotated is not None:
        result = rotated_iou(reference.rotated, other.rotated)
    else:
        result = box_iou(reference.boxes, other.boxes)
    if reference.masks is not None and other.masks is not None and reference.masks.shape[1:] == other.masks.shape[1:]:
        result = np.minimum(result, mask_iou(reference.masks, other.masks))
    if reference.keypoints is not None and other.keypoints is not None:
        result = np.where(keypoint_closeness(reference, other), result, 0.0)
    return result


def count_matches(reference: Detections, other: Detections, iou: float = IOU_MATCH) -> int:
    """Pairs of agreeing detections: same class, overlap (``overlaps``) > ``iou``, each detection used once.

    Reference detections take their best unused partner in descending score order (greedy, as in mAP matching).
    """
    if not len(reference) or not len(other):
        return 0
    overlaps_ = overlaps(reference, other)
    overlaps_[reference.classes[:, None] != other.classes[None, :]] = 0.0
    used = np.zeros(len(other), bool)
    matches = 0
    for i in np.argsort(-reference.scores, kind="stable"):
        candidates = np.where(used, 0.0, overlaps_[i])
        j = int(candidates.argmax())
        if candidates[j] > iou:
            used[j] = True
            matches += 1
    return matches


def detection_agreement(references: list[Detections], others: list[Detections]) -> float | None:
    """F1 of matched detections over all images: ``2 * matches / (reference count + other count)``.

    Missing and extra detections both lower it. None when the reference has no detection at all (the metric says
    nothing then: compare raw outputs instead).

    Examples:
        >>> from yolo_prune.export.matching import Detections, detection_agreement
        >>> a = Detections.of([[0, 0, 10, 10]], [1], [0.9])
        >>> detection_agreement([a], [a])
        1.0
        >>> detection_agreement([a], [Detections.of([[0, 0, 10, 10]], [2], [0.9])])  # other class
        0.0
    """
    total = sum(len(r) for r in references)
    if total == 0:
        return None
    matches = sum(count_matches(r, o) for r, o in zip(references, others))
    return 2 * matches / (total + sum(len(o) for o in others))


def raw_agreement(
    reference: np.ndarray, other: np.ndarray, score_tol: float, end2end: bool = False, nc: int | None = None
) -> tuple[int, int] | None:
    """Count agreeing predictions of one image's raw outputs; None when the two cannot be compared.

    Args:
        reference: The reference output of one image: ``(4 + nc, anchors)`` (xywh pixels, class scores) or, for
            NMS-free (end-to-end) heads, ``(max_det, 6)`` rows of ``x1, y1, x2, y2, score, class``.
        other: The same from the artifact.
        score_tol: Largest class-score difference that still agrees.
        end2end: The outputs are NMS-free ``(max_det, 6)`` rows.
        nc: Class count: rows past ``4 + nc`` (mask coefficients, keypoints, angles) are not scores and are skipped.

    Returns:
        ``(agreeing, total)``. Per anchor, agreeing means box IoU > 0.7 and every class score within ``score_tol``.
        End-to-end rows are matched as detections (score > 0): agreeing counts twice the matches and total the rows.
    """
    if reference.shape != other.shape or reference.ndim != 2:
        return None
    if end2end:
        ref, out = (_rows_as_detections(x) for x in (reference, other))
        return 2 * count_matches(ref, out), len(ref) + len(out)
    boxes_ref, boxes_out = _xywh_to_xyxy(reference[:4].T), _xywh_to_xyxy(other[:4].T)
    lt = np.maximum(boxes_ref[:, :2], boxes_out[:, :2])
    rb = np.minimum(boxes_ref[:, 2:], boxes_out[:, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    union = (boxes_ref[:, 2:] - boxes_ref[:, :2]).prod(-1) + (boxes_out[:, 2:] - boxes_out[:, :2]).prod(-1) - inter
    same_box = inter / np.maximum(union, 1e-12) > IOU_MATCH
    scores = slice(4, None if nc is None else 4 + nc)
    same_scores = np.abs(reference[scores] - other[scores]).max(0) <= score_tol
    return int((same_box & same_scores).sum()), reference.shape[1]


def _xywh_to_xyxy(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[:, :2] - x[:, 2:] / 2, x[:, :2] + x[:, 2:] / 2], 1)


def _rows_as_detections(rows: np.ndarray) -> Detections:
    keep = rows[:, 4] > 0
    return Detections.of(rows[keep, :4], rows[keep, 5], rows[keep, 4])
