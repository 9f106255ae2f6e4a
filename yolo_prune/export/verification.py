"""Run an exported artifact through Ultralytics and compare it with the PyTorch checkpoint it came from.

Every task is compared on what it predicts (``matching``): boxes, rotated boxes, masks, keypoints, or top-1 classes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from .build import Artifact
from .matching import Detections, detection_agreement, raw_agreement
from .results import ExportResult, disk_size_mb
from ..loading import restricted_yolo

THRESHOLDS = {"fp32": 0.95, "fp16": 0.95, "int8": 0.85}  # least agreement that passes
RAW_SCORE_TOL = {"fp32": 0.02, "fp16": 0.02, "int8": 0.05}  # class-score tolerance of the raw-output comparison
IOU_NMS = 0.7  # Ultralytics' predict default
METRIC = {"detect": "detections", "segment": "masks", "pose": "keypoints", "obb": "rotated boxes", "classify": "top-1"}


@dataclass(frozen=True)
class ModelRun:
    """One model's outputs on the sample images.

    Attributes:
        detections: Per image, after Ultralytics' own pre- and post-processing.
        raw: Per image, the raw prediction tensor on the same letterboxed input (batch dimension dropped).
        latency_ms: Median inference time per image.
        end2end: Whether the outputs come from an NMS-free head.
    """

    detections: list[Detections]
    raw: list[np.ndarray]
    latency_ms: float
    end2end: bool


@dataclass
class Verifier:
    """Compares artifacts with the PyTorch checkpoint on fixed sample images.

    Attributes:
        pt: The checkpoint (the reference).
        images: Sample image files.
        imgsz: Inference size (the export size).
        conf: Confidence threshold for detections.
    """

    pt: Path
    images: list[Path]
    imgsz: int
    conf: float = 0.25
    _references: dict[bool, ModelRun] = field(default_factory=dict, repr=False)
    _head: tuple[str, int] | None = field(default=None, repr=False)

    @property
    def task(self) -> str:
        """The checkpoint's task (``detect``, ``segment``, ``pose``, ``obb``, ``classify``)."""
        return self._checkpoint_head()[0]

    @property
    def class_count(self) -> int:
        """The checkpoint's number of classes (the score rows of its raw outputs)."""
        return self._checkpoint_head()[1]

    def _checkpoint_head(self) -> tuple[str, int]:
        """Task and class count of the checkpoint, read from the file once."""
        if self._head is None:
            yolo = restricted_yolo(self.pt)
            self._head = yolo.task, len(yolo.names)
        return self._head

    def reference(self, end2end: bool = False) -> ModelRun:
        """The checkpoint's run, with the head an artifact uses (NMS-free or NMS), computed once per head."""
        if end2end not in self._references:
            self._references[end2end] = self.run(self.pt, nms=not end2end)
        return self._references[end2end]

    def run(self, weights: Path, nms: bool | None = None) -> ModelRun:
        """Predict on the samples with Ultralytics (``YOLO(file)``), then take raw outputs from the same backend.

        Args:
            weights: A ``.pt`` checkpoint or an exported artifact.
            nms: For a ``.pt``: False selects the NMS-free head, True the NMS one (an artifact has its head baked in).
        """
        yolo = restricted_yolo(weights, task=self.task)
        extra = {} if nms is None or self.task == "classify" else {"nms": nms}
        results = yolo.predict(
            [str(p) for p in self.images], imgsz=self.imgsz, conf=self.conf, iou=IOU_NMS, device="cpu", rect=False,
            batch=1, verbose=False, save=False, **extra,
        )  # fmt: skip
        detections = [task_detections(r, self.task) for r in results]
        latency = statistics.median(r.speed["inference"] for r in results)
        backend = yolo.predictor.model
        with torch.inference_mode():
            raw = [_first_output(backend(self._tensor(p, backend.fp16))) for p in self.images]
        return ModelRun(detections, raw, latency, bool(getattr(backend, "end2end", False)))

    def check(self, artifact: Artifact, target: str) -> ExportResult:
        """Verify one artifact (when it runs here) and describe it as a table row."""
        common = {"target": target, "format": artifact.format, "precision": artifact.precision, "path": artifact.path}
        if artifact.error:
            return ExportResult(**common, status="fail", note=f"export failed: {artifact.error}")
        size = disk_size_mb(artifact.path)
        if not artifact.runs_here:
            return ExportResult(**common, status="unverified", size_mb=size, note=artifact.note)
        try:
            run = self.run(artifact.path)
            agreement, metric, why = self.compare(self.reference(run.end2end), run, artifact.precision)
        except Exception as e:  # the artifact does not load or run: that is what verification is for
            return ExportResult(
                **common, status="fail", size_mb=size, note=f"could not run it: {type(e).__name__}: {e}"
            )
        threshold = THRESHOLDS[artifact.precision]
        status = "unverified" if agreement is None else "pass" if agreement >= threshold else "fail"
        note = "; ".join(x for x in (artifact.note, why) if x)
        return ExportResult(**common, status=status, size_mb=size, agreement=agreement, threshold=threshold,
                            metric=metric, latency_ms=run.latency_ms, note=note)  # fmt: skip

    def compare(self, reference: ModelRun, run: ModelRun, precision: str) -> tuple[float | None, str, str]:
        """Agreement of ``run`` with ``reference``, what it measured, and a remark when it fell back to raw outputs."""
        agreement = detection_agreement(reference.detections, run.detections)
        if agreement is not None:
            return agreement, METRIC[self.task], ""
        tol = RAW_SCORE_TOL[precision]
        counts = [raw_agreement(r, o, tol, run.end2end, self.class_count) for r, o in zip(reference.raw, run.raw)]
        found = sum(len(d) for d in run.detections)
        why = f"the PyTorch model detects nothing at conf={self.conf} on these images (the artifact: {found}), "
        if any(c is None for c in counts):
            return None, "", why + "and the raw outputs have different shapes, so nothing was compared"
        agreeing, total = (sum(c[i] for c in counts) for i in (0, 1))
        return agreeing / max(total, 1), "raw outputs", why + "so raw outputs were compared"

    def _tensor(self, image: Path, half: bool) -> torch.Tensor:
        """The image letterboxed to ``imgsz`` square, RGB, CHW, in [0, 1], as every backend expects."""
        from ultralytics.data.augment import LetterBox

        array = LetterBox((self.imgsz, self.imgsz), auto=False)(image=cv2.imread(str(image)))
        tensor = torch.from_numpy(np.ascontiguousarray(array[..., ::-1].transpose(2, 0, 1)))[None].float() / 255
        return tensor.half() if half else tensor


def task_detections(result, task: str) -> Detections:
    """What one Ultralytics ``Results`` predicts for ``task``, as ``Detections`` (top-1 class for classify)."""
    if task == "classify":
        h, w = result.orig_shape
        return Detections.of([[0, 0, w, h]], [result.probs.top1], [float(result.probs.top1conf)])
    if task == "obb":
        obb = result.obb
        return Detections.of(obb.xyxy, obb.cls, obb.conf, rotated=obb.xywhr)
    boxes = result.boxes
    masks = result.masks.data > 0.5 if task == "segment" and result.masks is not None else None
    keypoints = result.keypoints.xy if task == "pose" and result.keypoints is not None else None
    return Detections.of(boxes.xyxy, boxes.cls, boxes.conf, masks=masks, keypoints=keypoints)


def _first_output(output) -> np.ndarray:
    """The prediction tensor of a backend's output (the first one for multi-output models), batch removed."""
    while isinstance(output, (list, tuple)):
        output = output[0]
    return output.float().cpu().numpy()[0] if isinstance(output, torch.Tensor) else np.asarray(output, np.float32)[0]
