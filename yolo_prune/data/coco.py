"""COCO-format detection data in: convert ``annotations/instances_*.json`` + images to Ultralytics labels and a yaml.

Labels are written by Ultralytics' own ``ultralytics.data.converter.convert_coco`` (``cls91to80=False``). That
converter takes class index = ``category_id - 1``, which is only right for contiguous ids starting at 1, so the
JSON is first rewritten with categories renumbered 1..K in id order; class ``i`` of the data yaml is the ``i``-th
category by id and keeps its name. Images are hard-linked (copied across file systems) next to the labels, in the
``images/<split>`` / ``labels/<split>`` layout Ultralytics pairs by path.

The CLI helpers here also expose the offline synthetic generator (``yolo_prune.data.synthetic.make_synthetic_dataset``),
which writes both formats, so the COCO path can be exercised end to end without downloads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from ultralytics.data.converter import convert_coco
from ultralytics.utils import LOGGER, colorstr

from ..errors import PruneError
from .synthetic import make_synthetic_dataset

PREFIX = colorstr("yolo-prune dataset: ")
MARKER = "coco_to_yolo.json"  # written last into a converted folder; lets a rerun with overwrite=True replace it
YAML_KEYS = ("train", "val", "test")
FORMATS = ("yolo", "coco")


def coco_to_yolo(
    coco_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    images_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a COCO-format detection dataset into an Ultralytics dataset; return its ``data.yaml``.

    Expected input: ``coco_dir/annotations/instances_<split>.json`` (one per split, e.g. ``train``, ``val``,
    ``train2017``) and each split's images in the first folder that exists among ``images_dir/<split>``,
    ``coco_dir/images/<split>`` and ``coco_dir/<split>``; ``file_name`` is relative to that folder. The split
    whose name starts with ``train`` / ``val`` / ``test`` becomes that key of the yaml. Crowd annotations and
    empty boxes are dropped (as Ultralytics does); images without annotations are kept as background images.

    Written layout::

        out_dir/images/<split>/...   # hard links (or copies) of the images
        out_dir/labels/<split>/...   # YOLO labels "cls cx cy w h" (normalized), by convert_coco
        out_dir/data.yaml            # path (absolute), train/val[/test], names from the COCO categories

    Args:
        coco_dir: Folder holding ``annotations/`` (and usually the images).
        out_dir: Folder to write; must be new or empty, or an earlier output of this function with ``overwrite``.
        images_dir: Folder holding one image folder per split, if not under ``coco_dir``.
        overwrite: Replace an earlier conversion in ``out_dir``.

    Returns:
        Path of the written ``data.yaml``, ready for ``YOLO(...).train(data=...)``.

    Raises:
        PruneError: For missing or inconsistent annotations, missing images, or an unusable ``out_dir``.

    Examples:
        >>> from yolo_prune.data.coco import coco_to_yolo
        >>> data = coco_to_yolo("datasets/my_coco", "datasets/my_coco_yolo")  # doctest: +SKIP
        >>> from ultralytics import YOLO  # doctest: +SKIP
        >>> YOLO("yolov8n.yaml").train(data=data, epochs=10)  # doctest: +SKIP
    """
    coco_dir, out_dir = Path(coco_dir).resolve(), Path(out_dir).resolve()
    files = _annotation_files(coco_dir)
    _prepare_out_dir(out_dir, coco_dir, overwrite)
    splits = {_split_name(f): json.loads(f.read_text()) for f in files}
    names = _class_names(splits)
    with tempfile.TemporaryDirectory(prefix="yolo_prune_coco_") as tmp:
        tmp = Path(tmp)
        for split, coco in splits.items():
            (tmp / "annotations").mkdir(exist_ok=True)
            (tmp / "annotations" / f"instances_{split}.json").write_text(json.dumps(_renumbered(coco)))
        convert_coco(str(tmp / "annotations"), str(tmp / "converted"), cls91to80=False)
        for split in splits:
            _move_labels(tmp / "converted" / "labels" / split, out_dir / "labels" / split)
    for split, coco in splits.items():
        _link_images(coco, _image_folder(coco_dir, images_dir, split), out_dir / "images" / split)
    data_yaml = _write_yaml(out_dir, list(splits), names)
    (out_dir / MARKER).write_text(json.dumps({"source": str(coco_dir), "splits": list(splits)}) + "\n")
    LOGGER.info(f"{PREFIX}converted {coco_dir} ({', '.join(splits)}; {len(names)} classes) -> {data_yaml}")
    return data_yaml


def dataset_cli(args: dict[str, Any]) -> Path:
    """``yolo-prune dataset``: draw the offline synthetic shapes dataset in YOLO or COCO layout.

    ``format=yolo`` (default) writes the full dataset of ``make_synthetic_dataset`` (YOLO labels, COCO JSON and
    ``data.yaml``) and returns the yaml. ``format=coco`` writes only ``images/`` and ``annotations/`` (what a
    COCO-format dataset looks like) and returns the annotations folder, ready for ``yolo-prune convert``.

    Args:
        args: ``out`` (required), ``n_train``, ``n_val``, ``imgsz``, ``seed``, ``max_objects``, ``format``, ``task``
            (``detect``, ``segment``, ``pose``, ``obb``, ``classify``: see ``make_synthetic_dataset``).

    Returns:
        The written ``data.yaml`` (yolo) or ``annotations`` folder (coco).

    Examples:
        >>> dataset_cli({"out": "datasets/shapes", "n_train": 64, "n_val": 16})  # doctest: +SKIP
        PosixPath('.../datasets/shapes/data.yaml')
    """
    args = {key: value for key, value in args.items() if value is not None}
    if "out" not in args:
        raise PruneError("dataset needs out=<folder>, e.g. 'yolo-prune dataset out=datasets/shapes n_train=64'.")
    out, fmt = Path(args.pop("out")), args.pop("format", "yolo")
    if fmt not in FORMATS:
        raise PruneError(f"format='{fmt}' must be one of {', '.join(FORMATS)}.")
    if fmt == "coco" and args.get("task", "detect") != "detect":
        raise PruneError(f"format=coco writes detection annotations only; use format=yolo for task={args['task']}.")
    if fmt == "yolo":
        path = make_synthetic_dataset(out, **args)
    else:
        path = _synthetic_coco(out, args)
    LOGGER.info(f"{PREFIX}wrote {path}")
    print(path)
    return path


def convert_cli(args: dict[str, Any]) -> Path:
    """``yolo-prune convert data=<coco dir> out=<dir> [images=<dir>] [overwrite=False]``: run ``coco_to_yolo``.

    Examples:
        >>> convert_cli({"data": "datasets/my_coco", "out": "datasets/my_coco_yolo"})  # doctest: +SKIP
    """
    missing = [key for key in ("data", "out") if args.get(key) is None]
    if missing:
        needed = " and ".join(f"{k}=..." for k in missing)
        raise PruneError(f"convert needs {needed} (a COCO folder and an output folder).")
    path = coco_to_yolo(args["data"], args["out"], images_dir=args.get("images"), overwrite=bool(args.get("overwrite")))
    print(path)
    return path


# --- input -----------------------------------------------------------------------------------------------------


def _annotation_files(coco_dir: Path) -> list[Path]:
    folder = coco_dir / "annotations"
    files = sorted(folder.glob("instances_*.json")) if folder.is_dir() else []
    if not files:
        raise PruneError(
            f"{folder} holds no instances_<split>.json; a COCO dataset needs annotations/instances_train.json etc."
        )
    keys = [_yaml_key(_split_name(f)) for f in files]
    if "train" not in keys or "val" not in keys:
        raise PruneError(f"{folder} needs a train and a val split (instances_train*.json and instances_val*.json).")
    return files


def _split_name(path: Path) -> str:
    return path.stem.removeprefix("instances_")


def _yaml_key(split: str) -> str | None:
    return next((key for key in YAML_KEYS if split.startswith(key)), None)


def _class_names(splits: dict[str, dict]) -> dict[int, str]:
    """Class index -> name, categories sorted by id; every split must list the same categories."""
    catalogues = {split: sorted((c["id"], c["name"]) for c in coco.get("categories", [])) for split, coco in
                  splits.items()}  # fmt: skip
    first = next(iter(catalogues.values()))
    if not first:
        raise PruneError("the COCO JSON has no categories; each needs an 'id' and a 'name'.")
    for split, catalogue in catalogues.items():
        if catalogue != first:
            raise PruneError(f"split '{split}' lists other categories than the first split; all must share one list.")
    return {i: name for i, (_, name) in enumerate(first)}


def _renumbered(coco: dict) -> dict:
    """A copy whose category ids are 1..K in id order, as ``convert_coco(cls91to80=False)`` expects."""
    new_id = {c["id"]: i + 1 for i, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    unknown = {a["category_id"] for a in coco.get("annotations", [])} - set(new_id)
    if unknown:
        raise PruneError(f"annotations use category ids {sorted(unknown)} that are not in 'categories'.")
    annotations = [{**a, "category_id": new_id[a["category_id"]]} for a in coco.get("annotations", [])]
    categories = [{**c, "id": new_id[c["id"]]} for c in coco["categories"]]
    return {**coco, "annotations": annotations, "categories": categories}


def _image_folder(coco_dir: Path, images_dir: str | os.PathLike | None, split: str) -> Path:
    candidates = ([Path(images_dir) / split] if images_dir else []) + [coco_dir / "images" / split, coco_dir / split]
    for folder in candidates:
        if folder.is_dir():
            return folder
    looked = ", ".join(map(str, candidates))
    raise PruneError(f"no image folder for split '{split}'; looked in {looked} (pass images_dir=).")


# --- output ----------------------------------------------------------------------------------------------------


def _prepare_out_dir(out_dir: Path, coco_dir: Path, overwrite: bool) -> None:
    """Make ``out_dir`` ready: new or empty, or an earlier conversion that ``overwrite`` allows replacing."""
    if out_dir == coco_dir or coco_dir in out_dir.parents or out_dir in coco_dir.parents:
        raise PruneError(f"out_dir {out_dir} must lie outside the COCO folder {coco_dir} (and not contain it).")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise PruneError(f"{out_dir} is not empty and was not written by coco_to_yolo; choose a new folder.")
        if not overwrite:
            raise PruneError(f"{out_dir} already holds a converted dataset; pass overwrite=True to replace it.")
        (out_dir / MARKER).unlink()
        for name in ("images", "labels"):
            shutil.rmtree(out_dir / name, ignore_errors=True)
        (out_dir / "data.yaml").unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def _move_labels(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    if src.is_dir():  # absent when a split has no annotations at all
        for label in src.rglob("*.txt"):
            target = dst / label.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(label), target)


def _link_images(coco: dict, src: Path, dst: Path) -> None:
    """Hard-link (or copy) every image of the split from ``src`` into ``dst``, keeping ``file_name`` subfolders."""
    for image in coco.get("images", []):
        source = src / image["file_name"]
        if not source.is_file():
            raise PruneError(f"image {source} (file_name of image id {image.get('id')}) does not exist.")
        target = dst / image["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


def _write_yaml(out_dir: Path, splits: list[str], names: dict[int, str]) -> Path:
    data: dict[str, Any] = {"path": str(out_dir)}
    for split in splits:
        key = _yaml_key(split)
        if key and key not in data:
            data[key] = f"images/{split}"
    data["names"] = names
    path = out_dir / "data.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _synthetic_coco(out: Path, args: dict[str, Any]) -> Path:
    """Draw the synthetic set in a scratch folder and keep only its COCO part (images + annotations) in ``out``."""
    out = out.resolve()
    taken = [out / name for name in ("images", "annotations") if (out / name).exists()]
    if taken:
        raise PruneError(f"{taken[0]} already exists; choose a new out folder for format=coco.")
    with tempfile.TemporaryDirectory(prefix="yolo_prune_synth_") as tmp:
        root = make_synthetic_dataset(Path(tmp) / "shapes", **args).parent
        out.mkdir(parents=True, exist_ok=True)
        for name in ("images", "annotations"):
            shutil.move(str(root / name), out / name)
    return out / "annotations"
