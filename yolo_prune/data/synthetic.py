"""Draw a small, deterministic shapes dataset offline, for any Ultralytics task, with an Ultralytics data.yaml.

The dataset exists so that pruning, fine-tuning and validation can be exercised end to end without downloads:
every class is one filled shape (circle, axis-aligned rectangle, triangle) on a noisy, textured background.
Boxes, outlines, keypoints and rotated boxes are exact because they are measured from the pixels each shape covers
(label formats: ``task_labels``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from ..errors import PruneError
from .task_labels import TASKS, label_line, yaml_extras

SHAPES = ("circle", "square", "triangle")  # drawable shapes; each class is drawn as exactly one of them
SPLITS = ("train", "val")
FORMAT_VERSION = 1  # bump when the drawing changes, so cached datasets are regenerated
MIN_IMGSZ = 32
MIN_SIZE, MAX_SIZE = 0.10, 0.50  # object size as a share of the image side
MIN_CONTRAST = 80.0  # least Euclidean RGB distance between an object's colour and the background under it
PLACEMENT_TRIES = 50  # random placements tried per object before giving up on it (the first object always lands)
JPEG_QUALITY = 95
PARAMS_FILE = "synthetic.json"
YAML_FILE = "data.yaml"


@dataclass(frozen=True)
class SyntheticParams:
    """Everything that decides a synthetic dataset's content; stored in ``synthetic.json`` as the cache key."""

    root: str
    n_train: int
    n_val: int
    imgsz: int
    classes: tuple[str, ...]
    seed: int
    max_objects: int
    task: str = "detect"
    version: int = FORMAT_VERSION

    def to_json(self) -> dict:
        """Plain-JSON form (the class tuple becomes a list)."""
        return {**asdict(self), "classes": list(self.classes)}


@dataclass(frozen=True)
class DrawnObject:
    """One drawn shape: its class index, tight pixel box ``(x0, y0, x1, y1)`` (exclusive ends), area and mask."""

    cls: int
    box: tuple[int, int, int, int]
    area: int
    mask: np.ndarray = field(repr=False, compare=False)


def make_synthetic_dataset(
    root: str | os.PathLike,
    *,
    n_train: int = 64,
    n_val: int = 16,
    imgsz: int = 128,
    classes: tuple[str, ...] = ("circle", "square", "triangle"),
    seed: int = 0,
    max_objects: int = 4,
    task: str = "detect",
) -> Path:
    """Draw a shapes dataset for ``task`` under ``root`` and return what ``yolo train data=`` takes.

    Each image has a textured, noisy background and 1 to ``max_objects`` non-overlapping filled shapes of random
    colour and size (10-50% of the image side), kept inside the image. A class named after a shape (``circle``,
    ``square``, ``triangle``) is drawn as that shape; other names take the remaining shapes in order. Drawing is
    fully deterministic in ``seed`` (each image has its own random stream, so changing ``n_train`` keeps the
    validation images). Written layout::

        root/images/{train,val}/*.jpg
        root/labels/{train,val}/*.txt                 # YOLO labels of the task (see task_labels)
        root/annotations/instances_{train,val}.json   # COCO: bbox [x, y, w, h] in pixels, 1-based category ids
        root/data.yaml                                # path (absolute), train, val, names (+ kpt_shape, flip_idx)
        root/synthetic.json                           # the parameters, used as a cache key

    ``task="segment"`` labels each shape's outline polygon, ``"pose"`` its 4 extreme points (top, right, bottom,
    left) as keypoints, ``"obb"`` its minimum-area rotated rectangle (rectangles are drawn rotated).
    ``task="classify"`` draws one shape per image into ``root/{train,val}/<class>/*.jpg`` and returns ``root``.

    If ``root`` already holds a dataset drawn with the same parameters it is returned untouched; a synthetic
    dataset drawn with other parameters is replaced.

    Args:
        root: Folder to write into (created if missing).
        n_train: Number of training images.
        n_val: Number of validation images.
        imgsz: Side of the square images in pixels, at least 32.
        classes: Class names, one to three, distinct; their order gives the class indices.
        seed: Random seed.
        max_objects: Most objects per image (at least one is always drawn; always one for ``classify``).
        task: ``detect``, ``segment``, ``pose``, ``obb`` or ``classify``.

    Returns:
        Path of the written (or cached) ``data.yaml``, or of ``root`` for ``classify``.

    Raises:
        PruneError: If an argument is invalid, or ``root`` already holds images or labels that this function
            did not write.

    Examples:
        >>> from yolo_prune.data.synthetic import make_synthetic_dataset
        >>> data = make_synthetic_dataset("datasets/shapes", n_train=32, n_val=8)  # doctest: +SKIP
        >>> from ultralytics import YOLO  # doctest: +SKIP
        >>> YOLO("yolov8n.yaml").train(data=data, imgsz=128, epochs=1)  # doctest: +SKIP
    """
    root = Path(root).resolve()
    max_objects = 1 if task == "classify" else max_objects
    params = SyntheticParams(str(root), n_train, n_val, imgsz, tuple(classes), seed, max_objects, task)
    _validate(params)
    result = root if task == "classify" else root / YAML_FILE
    if result.exists() and _stored_params(root) == params.to_json():
        return result

    _prepare_root(root)
    shapes = _assign_shapes(params.classes)
    for split_index, split in enumerate(SPLITS):
        count = n_train if split == "train" else n_val
        _write_split(root, split, split_index, count, params, shapes)
    if task != "classify":
        _write_yaml(result, root, params.classes, task)
    (root / PARAMS_FILE).write_text(json.dumps(params.to_json(), indent=2) + "\n")  # last: marks completion
    return result


# --- arguments and cache ---------------------------------------------------------------------------------------


def _validate(params: SyntheticParams) -> None:
    """Raise PruneError for an argument that cannot make a dataset."""
    if params.task not in TASKS:
        raise PruneError(f"make_synthetic_dataset: task='{params.task}' must be one of {', '.join(TASKS)}.")
    for name in ("n_train", "n_val", "max_objects"):
        value = getattr(params, name)
        if not _is_int(value) or value < 1:
            raise PruneError(f"make_synthetic_dataset: {name} must be a positive integer, got {value!r}.")
    if not _is_int(params.imgsz) or params.imgsz < MIN_IMGSZ:
        raise PruneError(f"make_synthetic_dataset: imgsz must be an integer >= {MIN_IMGSZ}, got {params.imgsz!r}.")
    if not _is_int(params.seed):
        raise PruneError(f"make_synthetic_dataset: seed must be an integer, got {params.seed!r}.")
    classes = params.classes
    if not 1 <= len(classes) <= len(SHAPES):
        raise PruneError(
            f"make_synthetic_dataset: classes must name 1 to {len(SHAPES)} classes (one per shape "
            f"{', '.join(SHAPES)}), got {len(classes)}."
        )
    if not all(isinstance(name, str) and name.strip() for name in classes):
        raise PruneError(f"make_synthetic_dataset: class names must be non-empty strings, got {classes!r}.")
    if len(set(classes)) != len(classes):
        raise PruneError(f"make_synthetic_dataset: class names must be distinct, got {classes!r}.")


def _is_int(value: object) -> bool:
    """True for an integer that is not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _stored_params(root: Path) -> dict | None:
    """The parameters stored by an earlier run under ``root``, or None if there are none (or they are unreadable)."""
    try:
        return json.loads((root / PARAMS_FILE).read_text())
    except (OSError, ValueError):
        return None


def _prepare_root(root: Path) -> None:
    """Clear an earlier synthetic dataset under ``root``; refuse to mix into images or labels of another origin."""
    ours = (root / PARAMS_FILE).exists()
    targets = [root / kind / split for kind in ("images", "labels") for split in SPLITS]
    targets += [root / split for split in SPLITS]  # classification layout
    if not ours:
        foreign = [path for path in targets if path.is_dir() and any(path.iterdir())]
        if foreign:
            raise PruneError(
                f"make_synthetic_dataset: {foreign[0]} already holds files that this function did not write; "
                "choose an empty or new root folder."
            )
    (root / PARAMS_FILE).unlink(missing_ok=True)  # an interrupted run must not look cached
    for path in targets:
        shutil.rmtree(path, ignore_errors=True)
    for split in SPLITS:
        (root / "labels" / f"{split}.cache").unlink(missing_ok=True)  # Ultralytics' label cache
        (root / "annotations" / f"instances_{split}.json").unlink(missing_ok=True)


def _assign_shapes(classes: tuple[str, ...]) -> list[str]:
    """The shape each class is drawn as: its own name if that is a shape, else the next shape still free."""
    free = [shape for shape in SHAPES if shape not in classes]
    return [name if name in SHAPES else free.pop(0) for name in classes]


# --- drawing ---------------------------------------------------------------------------------------------------


def _background(rng: np.random.Generator, imgsz: int) -> np.ndarray:
    """A smooth random colour field plus pixel noise, as a ``(imgsz, imgsz, 3)`` uint8 BGR image."""
    base = rng.uniform(40, 215, size=3)
    coarse = rng.normal(0.0, 30.0, size=(6, 6, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (imgsz, imgsz), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0.0, 8.0, size=(imgsz, imgsz, 3))
    return np.clip(base + texture + noise, 0, 255).astype(np.uint8)


def _shape_mask(rng: np.random.Generator, shape: str, imgsz: int, rotated: bool = False) -> np.ndarray:
    """A filled ``shape`` of random size and position that lies wholly inside an ``imgsz`` image, as a 0/1 mask.

    With ``rotated``, rectangles get a random orientation (for rotated-box labels).
    """
    size = rng.uniform(MIN_SIZE, MAX_SIZE) * imgsz
    half = size / 2
    cx, cy = rng.uniform(half + 1, imgsz - 2 - half, size=2)  # 1 px slack for rounding
    mask = np.zeros((imgsz, imgsz), np.uint8)
    if shape == "circle":
        cv2.circle(mask, (round(cx), round(cy)), max(1, round(half)), 1, thickness=cv2.FILLED)
    elif shape == "square" and rotated:
        w, h = size * rng.uniform(0.35, 0.7, size=2)  # the rotated rectangle's diagonal stays within `size`
        corners = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 180)))
        cv2.fillPoly(mask, [np.round(corners).astype(np.int32)], 1)
    elif shape == "square":
        w, h = size * rng.uniform(0.6, 1.0, size=2)  # axis-aligned, roughly square
        x0, y0 = round(cx - w / 2), round(cy - h / 2)
        cv2.rectangle(mask, (x0, y0), (round(cx + w / 2), round(cy + h / 2)), 1, thickness=cv2.FILLED)
    else:  # triangle: vertices on the circle of radius `half`, randomly rotated and jittered
        angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
        angles += rng.uniform(-0.3, 0.3, size=3)
        points = np.stack([cx + half * np.cos(angles), cy + half * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The tight pixel box ``(x0, y0, x1, y1)`` (exclusive ends) of the mask's set pixels."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def _overlaps(box: tuple[int, int, int, int], others: list[DrawnObject], margin: int = 2) -> bool:
    """True if ``box``, grown by ``margin`` pixels, touches any of the other objects' boxes."""
    x0, y0, x1, y1 = box
    return any(
        x0 - margin < ox1 and ox0 < x1 + margin and y0 - margin < oy1 and oy0 < y1 + margin
        for ox0, oy0, ox1, oy1 in (other.box for other in others)
    )


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A random BGR colour far from ``under`` (the mean background colour below the object)."""
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if np.linalg.norm(colour - under) >= MIN_CONTRAST:
            return colour.astype(np.uint8)
    return np.where(under < 128, 255, 0).astype(np.uint8)  # the far corner of the RGB cube, >= 128 per channel


def _draw_image(
    rng: np.random.Generator, imgsz: int, shapes: list[str], max_objects: int, rotated: bool = False
) -> tuple[np.ndarray, list[DrawnObject]]:
    """One image and its objects: a background, then up to ``max_objects`` non-overlapping shapes."""
    image = _background(rng, imgsz)
    objects: list[DrawnObject] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = int(rng.integers(len(shapes)))
        for _ in range(PLACEMENT_TRIES):
            mask = _shape_mask(rng, shapes[cls], imgsz, rotated)
            box = _tight_box(mask)
            if not _overlaps(box, objects):
                break
        else:
            continue  # no room left for this object
        filled = mask.astype(bool)
        image[filled] = _contrasting_colour(rng, image[filled].mean(axis=0))
        objects.append(DrawnObject(cls, box, int(filled.sum()), mask))
    return image, objects


# --- writing ---------------------------------------------------------------------------------------------------


def _coco_annotation(obj: DrawnObject, ann_id: int, image_id: int) -> dict:
    """The COCO annotation of one object (bbox ``[x, y, w, h]`` in pixels, 1-based category id)."""
    x0, y0, x1, y1 = obj.box
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": obj.cls + 1,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": obj.area,
        "iscrowd": 0,
    }


def _write_split(
    root: Path, split: str, split_index: int, count: int, params: SyntheticParams, shapes: list[str]
) -> None:
    """Draw ``count`` images of one split; write the images, the task's labels and the split's COCO JSON."""
    if params.task == "classify":
        return _write_class_folders(root / split, split_index, count, params, shapes)
    image_dir, label_dir, ann_dir = root / "images" / split, root / "labels" / split, root / "annotations"
    for folder in (image_dir, label_dir, ann_dir):
        folder.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        rng = np.random.default_rng([params.seed, split_index, i])  # one stream per image
        image, objects = _draw_image(rng, params.imgsz, shapes, params.max_objects, rotated=params.task == "obb")
        name = f"{split}_{i:05d}"
        _write_image(image_dir / f"{name}.jpg", image)
        lines = (label_line(params.task, obj.cls, obj.box, obj.mask, params.imgsz) + "\n" for obj in objects)
        (label_dir / f"{name}.txt").write_text("".join(lines))
        image_id = i + 1
        images.append({"id": image_id, "file_name": f"{name}.jpg", "width": params.imgsz, "height": params.imgsz})
        annotations += [_coco_annotation(obj, len(annotations) + 1 + k, image_id) for k, obj in enumerate(objects)]
    coco = {"images": images, "annotations": annotations, "categories": _coco_categories(params.classes)}
    (ann_dir / f"instances_{split}.json").write_text(json.dumps(coco))


def _write_class_folders(
    split_dir: Path, split_index: int, count: int, params: SyntheticParams, shapes: list[str]
) -> None:
    """Draw ``count`` one-shape images into ``split_dir/<class name>/`` (Ultralytics' classification layout)."""
    for name in params.classes:
        (split_dir / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng([params.seed, split_index, i])
        image, objects = _draw_image(rng, params.imgsz, shapes, params.max_objects)  # 1 for classify
        _write_image(split_dir / params.classes[objects[0].cls] / f"{split_dir.name}_{i:05d}.jpg", image)


def _write_image(path: Path, image: np.ndarray) -> None:
    """Write a JPEG, or raise a PruneError naming the file."""
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise PruneError(f"make_synthetic_dataset: could not write {path}.")


def _coco_categories(classes: tuple[str, ...]) -> list[dict]:
    """COCO categories with 1-based ids in class order."""
    return [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(classes)]


def _write_yaml(yaml_path: Path, root: Path, classes: tuple[str, ...], task: str = "detect") -> None:
    """Write the Ultralytics data YAML."""
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(classes))}
    data.update(yaml_extras(task))
    yaml_path.write_text(yaml.safe_dump(data, sort_keys=False))
