"""Silence Ultralytics' INFO logging around exports and validation, so the benchmark's own output stays readable."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from ultralytics.utils import LOGGER


@contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Raise Ultralytics' logger to WARNING inside the block (no-op when ``enabled`` is False)."""
    level = LOGGER.level
    if enabled:
        LOGGER.setLevel(logging.WARNING)
    try:
        yield
    finally:
        LOGGER.setLevel(level)
