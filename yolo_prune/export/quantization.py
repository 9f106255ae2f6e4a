"""int8 ONNX: ONNX Runtime static quantization with one weight scale per output channel.

Ultralytics' ONNX int8 export quantizes every Conv/Gemm/MatMul with one scale per weight tensor and min-max activation
ranges. A pruned layer keeps channels of very different ranges, and one scale per tensor rounds the small ones away.
yolo-prune therefore exports the fp32 ONNX with Ultralytics and quantizes it here: the same weighted operators (the
head's decode stays float, as in Ultralytics), one scale per output channel, activation ranges from ONNX Runtime's
percentile calibration on augmented training images of ``data`` (verification compares on the validation images),
and the heads' output layers in float, as Ultralytics' TensorRT int8 export keeps them. Agreement with PyTorch
(BENCHMARKS.md, "Export parity per task"), Ultralytics' int8 -> this: pose keypoints 0.774 -> 0.875, classify top-1
0.750 -> 0.875, OBB 0.900 -> 0.900, segment masks 0.955 -> 1.000, the real COCO yolov8n (data-free 1.25 prune,
320 px) 0.917 -> 0.923. Per channel with min-max ranges fails pose (0.839); percentile ranges without the float
outputs lose the real detector (0.880).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from pathlib import Path

import numpy as np

CALIBRATION_IMAGES = 64  # training images whose activations set the int8 ranges
QUANTIZED_OPS = {"Conv", "Gemm", "MatMul"}  # Ultralytics' choice: the operators with weights
HEAD_OUTPUTS = re.compile(r"\.2/Conv$|/dfl/|/linear/")  # the heads' last convolutions, DFL, a classifier's Linear


def quantize_onnx(fp32: Path, data: Path, imgsz: int, task: str) -> Path:
    """Quantize an fp32 ONNX export to int8 next to it (``<stem>_int8.onnx``, Ultralytics' name) and remove the fp32.

    Args:
        fp32: The fp32 ONNX file written by Ultralytics' exporter.
        data: Dataset yaml (or classification folder) whose training images calibrate the activation ranges.
        imgsz: The export image size.
        task: The model's task (classification reads class folders with its own augmentation).

    Returns:
        The int8 ONNX file.

    Raises:
        PruneError: If ``data``'s training images cannot be read.

    Examples:
        >>> int8 = quantize_onnx(Path("best.onnx"), Path("data.yaml"), imgsz=640, task="detect")  # doctest: +SKIP
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, quantize_static

    graph = onnx.load(str(fp32)).graph
    skipped = [n.name for n in graph.node if n.op_type not in QUANTIZED_OPS or HEAD_OUTPUTS.search(n.name)]
    reader = _CalibrationReader(graph.input[0].name, calibration_arrays(data, imgsz, task))
    out = fp32.with_name(f"{fp32.stem}_int8{fp32.suffix}")
    with _quiet():  # ONNX Runtime prints its calibration steps and a pre-processing hint through the root logger
        quantize_static(str(fp32), str(out), reader, per_channel=True, calibrate_method=CalibrationMethod.Percentile,
                        nodes_to_exclude=skipped)  # fmt: skip
    fp32.unlink()
    return out


def calibration_arrays(data: Path, imgsz: int, task: str, limit: int = CALIBRATION_IMAGES) -> list[np.ndarray]:
    """Up to ``limit`` training images of ``data``, augmented as in training (the pruner's calibration images:
    ``recovery.calibration.calibration_batches``, seeded), as ``(1, 3, imgsz, imgsz)`` float32 inputs in [0, 1].

    Augmented images span the scales and colours a deployed model meets better than a few plain ones: calibrated on
    the plain training images, the OBB model's agreement fell from 0.900 to 0.824.
    """
    from ..recovery.calibration import calibration_batches

    batches = calibration_batches(str(data), imgsz, limit, task=task)
    return [image[None].float().numpy() for batch in batches for image in batch["img"]]


@contextlib.contextmanager
def _quiet():
    """Swallow standard output and root-logger messages below ERROR for the duration."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


class _CalibrationReader:
    """ONNX Runtime's calibration data reader protocol (``get_next`` until None) over prepared inputs."""

    def __init__(self, input_name: str, arrays: list[np.ndarray]) -> None:
        self._feeds = iter([{input_name: array} for array in arrays])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)
