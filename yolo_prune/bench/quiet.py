"""Keep exporters' chatter out of the benchmark's output: converters' native prints (``captured_native_output``);
Ultralytics' INFO logging is ``yolo_prune.logs.quiet``."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ultralytics.utils import LOGGER

TAIL_LINES = 20  # lines of captured output shown when the block fails


@contextmanager
def captured_native_output() -> Iterator[None]:
    """Send everything written to file descriptors 1 and 2 (PNNX, LiteRT converter...) to a temporary file.

    If the block raises, the last lines of what was captured are logged before the exception propagates, so a failed
    export still shows its converter's own diagnosis.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        with tempfile.TemporaryFile(mode="w+") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            except BaseException:
                _restore(saved)
                sink.seek(0)
                tail = "".join(sink.readlines()[-TAIL_LINES:])
                if tail.strip():
                    LOGGER.warning(f"last output of the failed step:\n{tail}")
                raise
            finally:
                _restore(saved)
    finally:
        os.close(saved[0])
        os.close(saved[1])


def _restore(saved: tuple[int, int]) -> None:
    """Point descriptors 1 and 2 back at what they were (idempotent)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
