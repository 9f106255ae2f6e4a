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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics.cfg import smart_value

from . import __version__
from .errors import PruneError

DEBUG_KEY = "debug"


@dataclass(frozen=True)
class Verb:
    """One CLI verb: the function it runs, its keys with defaults (``REQUIRED`` marks must-give keys), a summary."""

    run: Callable[[dict[str, Any]], Any]
    keys: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


REQUIRED = object()


def _prune(args: dict[str, Any]) -> None:
    from .api import prune_yolo

    model = args.pop("model")
    if args.get("save") is None:
        args["save"] = Path.cwd() / f"{Path(str(model)).stem}-pruned.pt"
    prune_yolo(model, **args)


def _demo(args: dict[str, Any]) -> None:
    from .demo import demo_cli

    demo_cli(args)


def _help(args: dict[str, Any]) -> None:
    print(usage())


def _version(args: dict[str, Any]) -> None:
    from importlib.metadata import version

    print(f"yolo-prune {__version__} (ultralytics {version('ultralytics')}, torch-pruning {version('torch-pruning')})")


VERBS: dict[str, Verb] = {
    "prune": Verb(
        _prune,
        {
            "model": REQUIRED,
            "ratio": None,
            "target_gflops": None,
            "speed_up": None,
            "importance": "l2",
            "global_pruning": False,
            "layer_ratios": None,
            "round_to": 8,
            "imgsz": 640,
            "data": None,
            "save": None,
            "overwrite": False,
            "verbose": True,
        },
        "channel-prune a YOLO detector into a stock checkpoint (ratio 0.3 unless target_gflops/speed_up is given;"
        " default save: <stem>-pruned.pt here)",
    ),
    "demo": Verb(
        _demo,
        {"quick": False, "project": "runs/prune", "name": "demo", "exist_ok": False},
        "offline end-to-end run: synthetic data, train a base, prune, fine-tune, export, benchmark, report.md",
    ),
    "help": Verb(_help, summary="show this help"),
    "version": Verb(_version, summary="show versions"),
}


def usage() -> str:
    """Return the help text listing every verb and its keys with defaults."""
    lines = ["Usage: yolo-prune VERB key=value ...", ""]
    for name, verb in VERBS.items():
        lines.append(f"  {name:<10}{verb.summary}")
        for key, default in verb.keys.items():
            lines.append(f"  {'':<12}{key}={'<required>' if default is REQUIRED else default}")
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
    given: dict[str, Any] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise PruneError(f"'{word}' is not key=value (e.g. ratio=0.3). Run 'yolo-prune help' for the keys.")
        if key not in verb.keys:
            valid = ", ".join(verb.keys) or "none"
            raise PruneError(f"Unknown key '{key}' for '{name}'.{_suggest(key, list(verb.keys))} Valid keys: {valid}.")
        given[key] = smart_value(value)
    missing = [k for k, v in verb.keys.items() if v is REQUIRED and k not in given]
    if missing:
        raise PruneError(f"'{name}' needs {', '.join(f'{k}=...' for k in missing)}, e.g. 'yolo-prune {name} model=yolov8n.pt'.")
    return verb, {**verb.keys, **given}


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
