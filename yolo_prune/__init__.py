"""yolo-prune: structured channel pruning for Ultralytics YOLO models of every task that keeps checkpoints stock."""

__version__ = "0.1.0"

from .api import prune_yolo  # noqa: E402
from .bench import BenchResult, benchmark  # noqa: E402
from .data.coco import coco_to_yolo  # noqa: E402
from .data.synthetic import make_synthetic_dataset  # noqa: E402
from .errors import PruneError  # noqa: E402
from .export import ExportResult, export  # noqa: E402
from .recovery.iterative import IterativeResult, iterative_prune  # noqa: E402
from .recovery.sensitivity import SensitivityResult, sensitivity, suggest_layer_ratios  # noqa: E402

__all__ = [
    "BenchResult",
    "ExportResult",
    "IterativeResult",
    "PruneError",
    "SensitivityResult",
    "__version__",
    "benchmark",
    "coco_to_yolo",
    "export",
    "iterative_prune",
    "make_synthetic_dataset",
    "prune_yolo",
    "sensitivity",
    "suggest_layer_ratios",
]
