"""What each export needs installed: its Python packages, the yolo-prune extra with them, the error without them.

Ultralytics' exporter imports these only halfway through an export (or tries to pip-install them at run time), so
``export`` checks them first: a missing package fails at once with the ``pip install "yolo-prune[...]"`` that fixes it.
"""

from __future__ import annotations

import importlib.util
import platform
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import PruneError
from .targets import Build

TFLITE_LOCK = ".ci/tflite-lock.txt"  # the tflite extra's versions CI tests, installed with --no-deps


@dataclass(frozen=True)
class Package:
    """One package an export needs.

    Attributes:
        module: Its import name.
        pip: Its name on PyPI.
        extra: The yolo-prune extra (``pyproject.toml``) that installs it.
    """

    module: str
    pip: str
    extra: str


# The import names each extra of pyproject.toml provides (those the exports below use), and the PyPI names that differ.
EXTRA_MODULES = {
    "export": ("onnx", "onnxslim", "onnxruntime", "ncnn", "pnnx"),
    "tflite": ("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "tensorflow", "tf_keras", "onnx2tf", "sng4onnx",
               "onnx_graphsurgeon"),
}  # fmt: skip
PIP_NAMES = {"litert_torch": "litert-torch", "ai_edge_litert": "ai-edge-litert",
             "ai_edge_quantizer": "ai-edge-quantizer"}  # fmt: skip
PACKAGES = {m: Package(m, PIP_NAMES.get(m, m), extra) for extra, modules in EXTRA_MODULES.items() for m in modules}
# The ONNX export with ``simplify=True`` (Ultralytics' default) needs ONNX Runtime too; verification runs on it.
ONNX = ("onnx", "onnxslim", "onnxruntime")
# What the export of each Ultralytics format a target builds needs, and running its artifact here for verification.
FORMAT_MODULES = {
    "onnx": ONNX,
    "engine": ONNX,  # TensorRT builds the engine from the ONNX; TensorRT itself comes with JetPack (see toolchains)
    "ncnn": ("ncnn", "pnnx"),
    "litert": ("litert_torch", "ai_edge_litert"),
    "edgetpu": ("tensorflow", "tf_keras", "onnx2tf", "sng4onnx", "onnx_graphsurgeon", "ai_edge_litert", *ONNX),
}
INT8_MODULES = {"litert": ("ai_edge_quantizer",)}  # int8 quantization beyond the format's own packages
# The tflite extra installs these only where Ultralytics' LiteRT export runs (pyproject.toml's markers); elsewhere that
# export fails with Ultralytics' own reason, which no install fixes.
LITERT_ONLY = {"litert_torch", "ai_edge_litert", "ai_edge_quantizer"}


def litert_platform() -> bool:
    """Whether the tflite extra installs LiteRT on this machine (Linux x86_64 or macOS)."""
    system = platform.system()
    return (system == "Linux" and platform.machine() == "x86_64") or system == "Darwin"


def missing_packages(builds: Iterable[Build]) -> list[Package]:
    """The packages ``builds`` need that are not importable here, in a stable order, each once."""
    needed: dict[str, None] = {}
    for build in builds:
        int8 = INT8_MODULES.get(build.format, ()) if build.precision == "int8" else ()
        needed.update(dict.fromkeys((*FORMAT_MODULES.get(build.format, ()), *int8)))
    skip = set() if litert_platform() else LITERT_ONLY
    return [PACKAGES[m] for m in needed if m not in skip and importlib.util.find_spec(m) is None]


def check_installed(target: str, builds: Iterable[Build]) -> None:
    """Raise a one-line PruneError naming the extra to install when a package ``builds`` need is missing.

    Args:
        target: The export target, for the message.
        builds: The exports planned for it.

    Raises:
        PruneError: E.g. ``target=rpi needs litert-torch and ai-edge-litert, which are not installed; install the
            tflite extra: pip install "yolo-prune[tflite]" (or CI's tested versions, from a clone: ...).``
    """
    missing = missing_packages(builds)
    if not missing:
        return
    extras = sorted({p.extra for p in missing})
    pips = [p.pip for p in missing]
    names = f"{', '.join(pips[:-1])} and {pips[-1]}, which are" if len(pips) > 1 else f"{pips[0]}, which is"
    which = f"the {extras[0]} extra" if len(extras) == 1 else f"the {' and '.join(extras)} extras"
    text = f'target={target} needs {names} not installed; install {which}: pip install "yolo-prune[{",".join(extras)}]"'
    if "tflite" in extras:  # CI installs the extra's tested versions with --no-deps, on top of .[dev,export]
        text += f" (or CI's tested versions, from a clone: pip install --no-deps -r {TFLITE_LOCK})"
    raise PruneError(text + ".")
