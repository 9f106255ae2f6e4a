"""Images for verification, and the onnx2tf sample file that TensorFlow-based exports need offline."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import PruneError

MAX_SAMPLES = 16  # images compared per artifact; also the latency sample
# Ultralytics' TensorFlow export (saved_model, pb, edgetpu) first makes sure this onnx2tf sample file is in the working
# directory, downloading it when it is missing, even though onnx2tf reads it only when it has no calibration images
# of its own (Ultralytics always passes them). Offline, that download fails the export.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_SHAPE = (20, 128, 128, 3)


def sample_images(data: Path | None, imgsz: int, folder: Path, limit: int = MAX_SAMPLES) -> tuple[list[Path], str]:
    """Pick the images verification compares on: ``data``'s validation images, else generated shapes.

    Args:
        data: A dataset yaml (or classification folder), or None.
        imgsz: Side of generated images.
        folder: Where generated images go.
        limit: Most images returned.

    Returns:
        The image files and a short description of where they come from.

    Raises:
        PruneError: If ``data`` names no readable validation image.
    """
    if data is not None:
        images = dataset_images(data, limit)
        return images, f"{len(images)} validation images of {data.name}"
    from ..data.synthetic import make_synthetic_dataset

    yaml = make_synthetic_dataset(folder / "samples", n_train=1, n_val=limit, imgsz=imgsz, seed=0)
    images = sorted((yaml.parent / "images" / "val").glob("*.jpg"))[:limit]
    return images, f"{len(images)} generated shapes images (pass data= to verify on your own images)"


def dataset_images(data: Path, limit: int = MAX_SAMPLES) -> list[Path]:
    """Up to ``limit`` images of the validation split of an Ultralytics dataset yaml or classification folder.

    Raises:
        PruneError: If the yaml cannot be read offline or its validation split holds no image.
    """
    from ultralytics.data.utils import IMG_FORMATS, check_det_dataset

    if data.is_dir():  # a classification dataset: <data>/{train,val,test}/<class>/*.jpg
        split = next((data / s for s in ("val", "test", "train") if (data / s).is_dir()), data)
        files = _listed_images(split, IMG_FORMATS)
        if not files:
            raise PruneError(f"The classification dataset '{data}' holds no image in {split}.")
        return files[:limit]
    try:
        info = check_det_dataset(str(data))
    except Exception as e:  # missing files, failed download offline, malformed yaml
        raise PruneError(f"Could not read the dataset '{data}' ({type(e).__name__}: {e}).") from e
    entries = info.get("val") or info.get("test") or info.get("train")
    files: list[Path] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        files += _listed_images(Path(entry), IMG_FORMATS)
    if not files:
        raise PruneError(
            f"The dataset '{data}' lists no validation image; verification and int8 calibration need some."
        )
    return files[:limit]


def _listed_images(entry: Path, formats: set[str]) -> list[Path]:
    """Images named by one split entry: a folder (searched recursively), a ``.txt`` list or an image."""
    if entry.is_dir():
        return sorted(p for p in entry.rglob("*") if p.suffix[1:].lower() in formats)
    if entry.suffix == ".txt" and entry.is_file():
        lines = [line.strip() for line in entry.read_text().splitlines() if line.strip()]
        paths = [Path(line) if os.path.isabs(line) else entry.parent / line for line in lines]
        return [p for p in paths if p.is_file()]
    return [entry] if entry.is_file() else []


def write_onnx2tf_sample(images: list[Path], folder: Path) -> Path:
    """Write onnx2tf's sample-data file, made from ``images``, into ``folder`` (the export's working directory).

    onnx2tf's own file holds 20 RGB images of 128x128 in [0, 1]; this one is the same from the given images (repeated
    when there are fewer). It stands in for the download Ultralytics attempts; with calibration images passed it is
    never read.

    Args:
        images: Calibration or sample images (BGR files).
        folder: Working directory of the export process.

    Returns:
        The written file.
    """
    n, h, w, _ = ONNX2TF_SHAPE
    array = np.zeros(ONNX2TF_SHAPE, np.float32)
    for i in range(n):
        image = cv2.imread(str(images[i % len(images)])) if images else None
        if image is not None:
            array[i] = cv2.resize(image, (w, h))[..., ::-1] / 255.0
    path = folder / ONNX2TF_SAMPLE
    np.save(path, array)
    return path
