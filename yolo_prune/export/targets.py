"""Edge targets and the Ultralytics exports each one runs.

| target | exports (Ultralytics ``format``)                                     | fp16 (``half``)       | int8 (``int8`` + ``data``) |
|--------|----------------------------------------------------------------------|-----------------------|----------------------------|
| rpi    | ``ncnn`` + ``litert`` (TFLite)                                       | NCNN stores fp16      | TFLite int8                |
| coral  | ``edgetpu``: full-integer int8 TFLite, compiled when the compiler is | -                     | always (needs ``data``)    |
|        | installed                                                            |                       |                            |
| jetson | ``engine`` (TensorRT) with a GPU and TensorRT, else ``onnx`` for     | engine fp16 (default) | engine int8                |
|        | ``trtexec`` on the device                                            |                       |                            |
| onnx   | ``onnx``, simplified, opset 17                                       | fp16 ONNX             | int8 ONNX, per channel     |
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ..errors import PruneError
from .results import Precision
from .toolchains import Toolchains

TARGETS = {
    "rpi": "Raspberry Pi: NCNN and TFLite",
    "coral": "Google Coral: full-integer int8 TFLite, compiled for the Edge TPU",
    "jetson": "NVIDIA Jetson: TensorRT engine (or the ONNX that trtexec builds it from)",
    "onnx": "ONNX: simplified, opset 17",
}
# Opset 17 is the newest that TensorRT 8.5+ (JetPack 5 and 6), ONNX Runtime >= 1.13 and OpenCV DNN all read;
# Ultralytics' own default on torch >= 2.4 is 18.
ONNX_OPSET = 17
QUANTIZE = {"fp32": None, "fp16": 16, "int8": 8}  # Ultralytics' ``quantize`` argument for each precision


def quantized_here(fmt: str, precision: Precision) -> bool:
    """Whether yolo_prune quantizes this format and precision itself (the int8 ONNX) after Ultralytics' fp32 export."""
    return fmt == "onnx" and precision == "int8"


@dataclass(frozen=True)
class Build:
    """One Ultralytics export to run.

    Attributes:
        format: Ultralytics format argument.
        precision: Precision of the artifact.
        options: Further export arguments (only ones the format accepts: Ultralytics rejects the others).
        compile: For ``edgetpu``: run the Edge TPU compiler (else stop at the full-integer TFLite).
        note: Remark shown with the artifact.
    """

    format: str
    precision: Precision
    options: dict = field(default_factory=dict)
    compile: bool = True
    note: str = ""

    @property
    def quantized_here(self) -> bool:
        """An int8 ONNX: Ultralytics exports fp32 and yolo_prune quantizes it per channel (``quantization``)."""
        return quantized_here(self.format, self.precision)

    @property
    def quantize(self) -> int | None:
        """Ultralytics' ``quantize`` value for this build."""
        return None if self.quantized_here else QUANTIZE[self.precision]


@dataclass(frozen=True)
class Plan:
    """What one target builds here and what it cannot (with the reason, for the user).

    Attributes:
        target: Target name.
        builds: Exports to run, in order.
        tensorrt_missing: For ``jetson``: why no engine is built here ("" when it is).
    """

    target: str
    builds: list[Build]
    tensorrt_missing: str = ""


def resolve_target(name: object) -> str:
    """Return the target called ``name``, or raise PruneError with the closest valid name.

    Args:
        name: What the user typed, e.g. ``rpi`` or ``Jetson`` (case is ignored).

    Returns:
        The canonical lower-case target name.

    Raises:
        PruneError: For an unknown target, suggesting the closest one and listing all.

    Examples:
        >>> from yolo_prune.export.targets import resolve_target
        >>> resolve_target("RPI")
        'rpi'
        >>> resolve_target("rpii")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        PruneError: Unknown target 'rpii'. Did you mean 'rpi'? Valid: rpi, coral, jetson, onnx
    """
    text = str(name).strip().lower()
    if text in TARGETS:
        return text
    close = difflib.get_close_matches(text, TARGETS, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise PruneError(f"Unknown target '{name}'.{hint} Valid: {', '.join(TARGETS)}")


def plan_target(target: str, *, half: bool, int8: bool, opset: int, tools: Toolchains) -> Plan:
    """The exports ``target`` runs on this machine for the precision asked.

    Args:
        target: A name from ``TARGETS``.
        half: Ask for fp16 where the format stores it.
        int8: Ask for int8 where the format has it (calibrated on ``data``).
        opset: ONNX opset for ONNX exports.
        tools: The device toolchains found on this machine.

    Returns:
        The plan; ``jetson`` without TensorRT plans the ONNX for ``trtexec`` and says why.

    Examples:
        >>> from yolo_prune.export.targets import plan_target
        >>> from yolo_prune.export.toolchains import Toolchains
        >>> plan = plan_target("rpi", half=True, int8=False, opset=17, tools=Toolchains(None, "no GPU"))
        >>> [(b.format, b.precision) for b in plan.builds]
        [('ncnn', 'fp16'), ('litert', 'fp32')]
    """
    onnx_options = {"opset": opset, "simplify": True}
    if target == "onnx":
        return Plan(target, [Build("onnx", _precision(half, int8), onnx_options)])
    if target == "rpi":
        ncnn_note = f"NCNN has no int8 export in Ultralytics; written in {'fp16' if half else 'fp32'}." if int8 else ""
        litert_note = (
            "Ultralytics writes no separate fp16 TFLite: on the Pi, LiteRT runs this fp32 model in fp16 through "
            "XNNPACK (FORCE_FP16) or the GPU delegate."
            if half and not int8
            else ""
        )
        return Plan(
            target,
            [
                Build("ncnn", "fp16" if half else "fp32", note=ncnn_note),
                Build("litert", "int8" if int8 else "fp32", note=litert_note),
            ],
        )
    if target == "coral":
        return Plan(target, [Build("edgetpu", "int8", {}, compile=tools.edgetpu_compiler is not None)])
    if target == "jetson":
        if tools.tensorrt_missing:
            return Plan(target, [Build("onnx", "fp32", onnx_options)], tools.tensorrt_missing)
        return Plan(target, [Build("engine", "int8" if int8 else "fp16", {"opset": opset})])
    raise PruneError(f"Unknown target '{target}'. Valid: {', '.join(TARGETS)}")


def _precision(half: bool, int8: bool) -> Precision:
    """int8 wins over fp16, as in Ultralytics."""
    return "int8" if int8 else "fp16" if half else "fp32"
