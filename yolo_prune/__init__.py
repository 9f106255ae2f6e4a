"""yolo-prune: structured channel pruning for Ultralytics YOLO detectors that keeps checkpoints stock."""

__version__ = "0.1.0"

from .api import prune_yolo  # noqa: E402
from .errors import PruneError  # noqa: E402

__all__ = ["PruneError", "__version__", "prune_yolo"]
