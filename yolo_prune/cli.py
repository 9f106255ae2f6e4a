"""The ``yolo-prune`` command line, in Ultralytics' ``verb key=value`` grammar.

Examples:
    yolo-prune prune model=yolov8n.pt ratio=0.3
    yolo-prune prune model=best.pt ratio=0.5 global_pruning=True save=best-pruned.pt
    yolo-prune help
"""

from __future__ import annotations

import difflib
import os
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics.cfg import smart_value

from . import __version__
from .errors import PruneError

DEBUG_KEY = "debug"


REQUIRED = object()


@dataclass(frozen=True)
class Verb:
    """One CLI verb: ``"module:function"`` it runs with the parsed dict, its keys and defaults, a summary.

    ``keys`` is a dict, or ``"module:NAME"`` of a dict kept beside the function (imported only when needed);
    ``REQUIRED`` marks keys that must be given; ``extra_keys`` names a set of further accepted keys (Ultralytics
    train arguments passed through).
    """

    target: str
    keys: dict[str, Any] | str = field(default_factory=dict)
    summary: str = ""
    required: tuple[str, ...] = ()
    extra_keys: str | None = None

    def key_defaults(self) -> dict[str, Any]:
        """Every key with its default, ``REQUIRED`` for must-give keys."""
        keys = dict(_resolve(self.keys)) if isinstance(self.keys, str) else dict(self.keys)
        return {**{k: REQUIRED for k in self.required}, **{k: v for k, v in keys.items() if k not in self.required}}

    def accepted(self) -> set[str]:
        """Keys this verb accepts, its own and any pass-through ones."""
        return set(self.key_defaults()) | (set(_resolve(self.extra_keys)) if self.extra_keys else set())

    def run(self, args: dict[str, Any]) -> Any:
        """Call the verb's function with the parsed arguments."""
        return _resolve(self.target)(args)


def _resolve(reference: str) -> Any:
    """Import ``"module:attribute"`` (relative to this package) lazily, so ``help`` stays fast."""
    from importlib import import_module

    module, _, attr = reference.partition(":")
    return getattr(import_module(module, __package__), attr)


def prune_cli(args: dict[str, Any]) -> None:
    """``yolo-prune prune``: ``prune_yolo`` with ``save`` defaulting to ``<stem>-pruned.pt`` in the working dir."""
    from .api import prune_yolo

    model = args.pop("model")
    if args.get("save") is None:
        args["save"] = Path.cwd() / f"{Path(str(model)).stem}-pruned.pt"
    prune_yolo(model, **args)


def export_cli(args: dict[str, Any]) -> None:
    """``yolo-prune export``: ``yolo_prune.export`` for a device target; exits non-zero if any check fails."""
    from .export import export

    export(args.pop("model"), args.pop("target"), **args)


def help_cli(args: dict[str, Any]) -> None:
    """``yolo-prune help``."""
    print(usage())


def version_cli(args: dict[str, Any]) -> None:
    """``yolo-prune version``."""
    from importlib.metadata import version

    print(f"yolo-prune {__version__} (ultralytics {version('ultralytics')}, torch-pruning {version('torch-pruning')})")


PRUNE_KEYS = {
    "ratio": None,
    "target_gflops": None,
    "speed_up": None,
    "importance": "auto",
    "global_pruning": None,
    "layer_ratios": None,
    "round_to": 8,
    "imgsz": None,  # 640, or 224 for classification models
    "data": None,
    "compensate": True,
    "distill": None,
    "calibrate_bn": False,
    "reconstruct": False,
    "save": None,
    "overwrite": False,
    "verbose": True,
}
ITERATIVE_KEYS = {
    "steps": 3,
    "ratio": None,
    "speed_up": None,
    "epochs": 10,
    "max_map_drop": 0.02,
    "imgsz": 640,
    "importance": "auto",
    "reconstruct": False,
    "project": "runs/prune",
    "name": "iterative",
    "exist_ok": False,
}
SENSITIVITY_KEYS = {
    "ratios": "0.2,0.4,0.6",
    "layers": None,
    "imgsz": 640,
    "fraction": 1.0,
    "importance": "auto",
    "target_drop": None,
    "leave_tolerant": False,
    "project": "runs/prune",
    "name": "sensitivity",
    "exist_ok": False,
    "batch": None,
    "device": None,
    "workers": None,
    "split": None,
    "half": None,
}
DATASET_KEYS = {
    "n_train": 64, "n_val": 16, "imgsz": 128, "seed": 0, "max_objects": 4, "format": "yolo", "task": "detect"
}  # fmt: skip

VERBS: dict[str, Verb] = {
    "prune": Verb(
        ".cli:prune_cli",
        PRUNE_KEYS,
        "channel-prune a detect/segment/pose/obb/classify model into a stock checkpoint (ratio 0.3 unless"
        " target_gflops/speed_up/layer_ratios;"
        " default save: <stem>-pruned.pt here)",
        required=("model",),
    ),
    "export": Verb(
        ".cli:export_cli",
        {"imgsz": 640, "half": False, "int8": False, "data": None, "opset": 17, "conf": 0.25, "verify": True,
         "strict": True, "verbose": True},  # fmt: skip
        "export for target=rpi|coral|jetson|onnx through Ultralytics, each artifact verified against PyTorch",
        required=("model", "target"),
    ),
    "bench": Verb(
        ".bench.cli:benchmark_cli",
        ".bench.cli:CLI_DEFAULTS",
        "latency per runtime, size, GFLOPs (and mAP with data=) of base vs pruned, or a sweep of ratios/speed_ups",
        required=("model",),
    ),
    "iterative": Verb(
        ".recovery.iterative:iterative_cli",
        ITERATIVE_KEYS,
        "prune in steps towards ratio/speed_up, fine-tuning each step; stops past max_map_drop (Ultralytics train"
        " keys such as batch=, device=, distill_model= pass through)",
        required=("model", "data"),
        extra_keys="ultralytics.utils:DEFAULT_CFG_KEYS",
    ),
    "sensitivity": Verb(
        ".recovery.sensitivity:sensitivity_cli",
        SENSITIVITY_KEYS,
        "prune one group of layers at a time, measure the mAP drop; CSV + PNG; target_drop= suggests layer_ratios",
        required=("model", "data"),
    ),
    "dataset": Verb(
        ".data.coco:dataset_cli",
        DATASET_KEYS,
        "draw the offline synthetic shapes dataset (task=detect|segment|pose|obb|classify; format=yolo: labels +"
        " COCO JSON + data.yaml; format=coco)",
        required=("out",),
    ),
    "convert": Verb(
        ".data.coco:convert_cli",
        {"images": None, "overwrite": False},
        "convert a COCO-format dataset (annotations/instances_*.json + images) to Ultralytics labels + data.yaml",
        required=("data", "out"),
    ),
    "demo": Verb(
        ".demo:demo_cli",
        {"quick": False, "project": "runs/prune", "name": "demo", "exist_ok": False},
        "offline end to end: synthetic data, train a base, prune, fine-tune, export, benchmark, report.md",
    ),
    "help": Verb(".cli:help_cli", summary="show this help"),
    "version": Verb(".cli:version_cli", summary="show versions"),
}


def usage() -> str:
    """Return the help text listing every verb with its keys and defaults."""
    lines = ["Usage: yolo-prune VERB key=value ...", ""]
    for name, verb in VERBS.items():
        lines.append(f"  {name:<12}{verb.summary}")
        keys = " ".join(f"{k}={'<required>' if v is REQUIRED else v}" for k, v in verb.key_defaults().items())
        lines += textwrap.wrap(keys, width=110, initial_indent=" " * 14, subsequent_indent=" " * 14)
    lines += ["", f"Add {DEBUG_KEY}=True to see a traceback on errors.", "Docs: README.md"]
    return "\n".join(lines)


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def parse(argv: list[str]) -> tuple[Verb, dict[str, Any]]:
    """Parse ``VERB key=value ...`` into the verb and its complete arguments.

    Args:
        argv: Command-line words after the program name.

    Returns:
        The verb and its arguments, defaults filled in.

    Raises:
        PruneError: For an unknown verb or key, a word that is not ``key=value``, or a missing required key.

    Examples:
        >>> verb, args = parse(["prune", "model=yolov8n.pt", "ratio=0.5"])
        >>> args["ratio"]
        0.5
    """
    if not argv:
        return VERBS["help"], {}
    name, words = argv[0], argv[1:]
    if name not in VERBS:
        raise PruneError(f"Unknown verb '{name}'.{_suggest(name, list(VERBS))} Valid verbs: {', '.join(VERBS)}.")
    verb = VERBS[name]
    defaults, accepted = verb.key_defaults(), verb.accepted()
    given: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise PruneError(f"'{word}' is not key=value (e.g. ratio=0.3). Run 'yolo-prune help' for the keys.")
        if key not in accepted:
            valid = ", ".join(defaults) or "none"
            raise PruneError(f"Unknown key '{key}' for '{name}'.{_suggest(key, sorted(accepted))} Valid keys: {valid}.")
        given[key] = smart_value(value)
    missing = [k for k, v in defaults.items() if v is REQUIRED and k not in given]
    if missing:
        raise PruneError(f"'{name}' needs {', '.join(f'{k}=...' for k in missing)}. Run 'yolo-prune help' for the keys.")
    return verb, {**defaults, **given}


def _pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    debug = os.environ.get("YOLO_PRUNE_DEBUG", "") not in {"", "0", "false", "False"}
    rest = []
    for word in argv:
        if word.partition("=")[0] == DEBUG_KEY:
            debug = bool(smart_value(word.partition("=")[2] or "True"))
        else:
            rest.append(word)
    return rest, debug


def main(argv: list[str] | None = None) -> int:
    """Run the ``yolo-prune`` command line; return the process exit status.

    Args:
        argv: Words after the program name (``sys.argv[1:]`` when None).

    Returns:
        0 on success, 2 for a usage or input error, 1 for an unexpected failure.

    Examples:
        >>> main(["version"])
        0
    """
    words, debug = _pop_debug(sys.argv[1:] if argv is None else list(argv))
    try:
        verb, args = parse(words)
        verb.run(args)
        return 0
    except PruneError as e:
        if debug:
            raise
        print(f"yolo-prune: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if debug:
            raise
        print(f"yolo-prune: failed: {type(e).__name__}: {e} (add {DEBUG_KEY}=True for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
