"""Ultralytics' log level inside a block: ``quiet`` keeps routine INFO chatter out of yolo-prune's own output."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ultralytics.utils import LOGGER


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Raise Ultralytics' logger to WARNING inside the block (no-op when ``enabled`` is False).

    Examples:
        >>> with quiet():
        ...     YOLO("yolov8n.pt").val(data="coco8.yaml")  # warnings and errors still show
    """
    level = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)


@contextmanager
def dropped(*fragments: str) -> Iterator[None]:
    """Drop Ultralytics' log records that contain any of ``fragments`` inside the block (the others pass).

    Examples:
        >>> with dropped("No labels found"):
        ...     dataset = YOLODataset(...)  # an unlabeled folder, read for its images only
    """
    drop = logging.Filter()
    drop.filter = lambda record: not any(text in record.getMessage() for text in fragments)
    LOGGER.addFilter(drop)
    try:
        yield
    finally:
        LOGGER.removeFilter(drop)
