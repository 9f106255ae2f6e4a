"""Agreement between two models' outputs: matched detections, or raw prediction tensors when there are none."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IOU_MATCH = 0.7  # a detection agrees with one of the same class that it overlaps by more than this


@dataclass(frozen=True)
class Detections:
    """Detections on one image: ``boxes`` (n, 4) xyxy pixels, ``classes`` (n,) ints, ``scores`` (n,)."""

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.classes)

    @classmethod
    def of(cls, boxes, classes, scores) -> Detections:
        """Build from array-likes (tensors included), with float boxes/scores and int classes."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return cls(boxes, np.asarray(classes).astype(np.int64).reshape(-1), np.asarray(scores, np.float64).reshape(-1))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every xyxy box in ``a`` (n, 4) with every one in ``b`` (m, 4), as an (n, m) array."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def count_matches(reference: Detections, other: Detections, iou: float = IOU_MATCH) -> int:
    """Pairs of agreeing detections: same class, IoU > ``iou``, each detection used once.

    Reference detections take their best unused partner in descending score order (greedy, as in mAP matching).
    """
    if not len(reference) or not len(other):
        return 0
    overlaps = box_iou(reference.boxes, other.boxes)
    overlaps[reference.classes[:, None] != other.classes[None, :]] = 0.0
    used = np.zeros(len(other), bool)
    matches = 0
    for i in np.argsort(-reference.scores, kind="stable"):
        candidates = np.where(used, 0.0, overlaps[i])
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
    reference: np.ndarray, other: np.ndarray, score_tol: float, end2end: bool = False
) -> tuple[int, int] | None:
    """Count agreeing predictions of one image's raw outputs; None when the two cannot be compared.

    Args:
        reference: The reference output of one image: ``(4 + nc, anchors)`` (xywh pixels, class scores) or, for
            NMS-free (end-to-end) heads, ``(max_det, 6)`` rows of ``x1, y1, x2, y2, score, class``.
        other: The same from the artifact.
        score_tol: Largest class-score difference that still agrees.
        end2end: The outputs are NMS-free ``(max_det, 6)`` rows.

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
    same_scores = np.abs(reference[4:] - other[4:]).max(0) <= score_tol
    return int((same_box & same_scores).sum()), reference.shape[1]


def _xywh_to_xyxy(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[:, :2] - x[:, 2:] / 2, x[:, :2] + x[:, 2:] / 2], 1)


def _rows_as_detections(rows: np.ndarray) -> Detections:
    keep = rows[:, 4] > 0
    return Detections.of(rows[keep, :4], rows[keep, 5], rows[keep, 4])
