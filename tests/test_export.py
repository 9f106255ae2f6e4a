"""Edge export: every artifact that runs here agrees with the PyTorch model; stock exports of pruned checkpoints work.

Parity needs a model whose detections mean something, and a random-init YOLO has none: its features shrink to ~1e-8
by the head, so every score is one constant. Training one to detect takes far longer than this suite may, so
``detecting_checkpoint`` makes one in seconds: recalibrate BatchNorm on the images, then fit the class convolutions
as a linear probe on the frozen features. It then scores objects well above background, as a trained detector does,
and its decisions have the margin that faithful exports keep: measured here, int8 ONNX/OpenVINO/TFLite agree at
0.89-0.91 and fp32/fp16 at 0.965-1.0 (OpenVINO runs "fp32" in bf16 on AMX CPUs). Its box branch stays untrained, so
boxes barely depend on the image: fitting it too made int8 agreement drop to ~0.7 at 64 px, where a one-pixel int8
error already breaks IoU 0.7 on small boxes. Faults upstream of the head (the pruning bugs that matter) show in both.
"""

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import NAMES, tiny_task_model
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

from yolo_prune import PruneError, prune_yolo
from yolo_prune.data.synthetic import make_synthetic_dataset
from yolo_prune.cli import main
from yolo_prune.export import ExportVerificationError, export, extras, toolchains, verify
from yolo_prune.export.matching import Detections, detection_agreement, raw_agreement
from yolo_prune.export.quantization import HEAD_OUTPUTS, calibration_arrays
from yolo_prune.export.targets import plan_target, resolve_target
from yolo_prune.export.toolchains import Toolchains

IMGSZ = 64
EXPORT_PACKAGES = ("onnx", "onnxslim", "onnxruntime", "openvino", "nncf", "ncnn", "pnnx")
TFLITE_PACKAGES = ("litert_torch", "tensorflow", "onnx2tf")
missing = [name for name in EXPORT_PACKAGES if not __import__("importlib").util.find_spec(name)]
missing_tflite = [name for name in TFLITE_PACKAGES if not __import__("importlib").util.find_spec(name)]
# Outside CI a missing extra skips its tests with the install hint; CI installs both (.ci/run), so there they must run.
IN_CI = bool(os.environ.get("CI"))
needs_export_extra = pytest.mark.skipif(
    bool(missing) and not IN_CI, reason=f"pip install 'yolo-prune[export]' (missing {missing})"
)
needs_tflite_extra = pytest.mark.skipif(
    bool(missing_tflite) and not IN_CI, reason=f"pip install 'yolo-prune[tflite]' (missing {missing_tflite})"
)


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    """Synthetic shapes at 64 px: train images fit the probe, the 16 val images calibrate int8 and verify."""
    return make_synthetic_dataset(tmp_path_factory.mktemp("export_data"), n_train=16, n_val=16, imgsz=IMGSZ, seed=0)


@pytest.fixture(scope="session")
def detectors(tmp_path_factory, shapes_data):
    """Pruned detectors that detect the shapes, one per family, made on first use."""
    folder, made = tmp_path_factory.mktemp("detectors"), {}

    def get(cfg: str = "yolov8n.yaml") -> Path:
        if cfg not in made:
            made[cfg] = detecting_checkpoint(cfg, folder / f"{Path(cfg).stem}-pruned.pt", shapes_data)
        return made[cfg]

    return get


@pytest.fixture
def pruned_pt(detectors, tmp_path) -> Path:
    """A private copy of the yolov8n detector: exports land next to it, as with ``yolo export``."""
    return Path(shutil.copy(detectors(), tmp_path / "pruned.pt"))


def detecting_checkpoint(cfg: str, path: Path, data: Path) -> Path:
    """Prune a random-init model, recalibrate its BatchNorm and fit its class convolutions as a linear probe; save it.

    Only weights change, in place: the checkpoint stays a stock pruned one (same yaml, same widths).
    """
    torch.manual_seed(0)
    model = DetectionModel(cfg, nc=len(NAMES), verbose=False)
    model.names = dict(NAMES)
    prune_yolo(model, ratio=0.3, save=path, overwrite=True, verbose=False)
    yolo = YOLO(str(path))
    net = yolo.model.float()
    images, labels = _images_and_labels(data)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the images
    net.train()
    with torch.no_grad():
        net(images)
    net.eval()
    _fit_class_head(net, images, labels)
    yolo.save(str(path))
    return path


def _images_and_labels(data: Path) -> tuple[torch.Tensor, list[np.ndarray]]:
    root, arrays, labels = data.parent, [], []
    for image in sorted((root / "images").rglob("*.jpg")):
        arrays.append(cv2.resize(cv2.imread(str(image)), (IMGSZ, IMGSZ))[..., ::-1].transpose(2, 0, 1))
        text = (root / "labels" / image.parent.name / f"{image.stem}.txt").read_text()
        labels.append(np.array([line.split() for line in text.splitlines()], float).reshape(-1, 5))
    return torch.from_numpy(np.stack(arrays)).float() / 255, labels


def _fit_class_head(net: DetectionModel, images: torch.Tensor, labels: list[np.ndarray]) -> None:
    """Logistic regression of every scale's last class conv: an anchor in the central half of a box is positive."""
    head, features = net.model[-1], []
    hooks = [branch[-1].register_forward_hook(lambda m, i, o: features.append(i[0])) for branch in head.cv3]
    with torch.no_grad():
        net(images)
    for hook in hooks:
        hook.remove()
    for scale, f in enumerate(features):
        x = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
        y = _anchor_targets(labels, *f.shape[2:], head.nc).permute(0, 2, 3, 1).reshape(-1, head.nc)
        weight, bias = _logistic_regression(x, y)
        for branches in (head.cv3, getattr(head, "one2one_cv3", None)):  # YOLO26's NMS-free head too
            if branches is not None:
                branches[scale][-1].weight.data = weight.reshape(branches[scale][-1].weight.shape).clone()
                branches[scale][-1].bias.data = bias.clone()


def _logistic_regression(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (classes, features) and biases of a class-balanced, lightly regularized logistic regression."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    probe = torch.nn.Linear(x.shape[1], y.shape[1])
    optimizer = torch.optim.LBFGS(probe.parameters(), max_iter=100, line_search_fn="strong_wolfe")
    pos_weight = ((1 - y).sum(0) / y.sum(0).clamp(min=1)).clamp(max=50)

    def loss():
        optimizer.zero_grad()
        logits = probe((x - mean) / std)
        value = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, pos_weight=pos_weight)
        value = value + 1e-3 * probe.weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    weight = probe.weight.detach() / std
    return weight, probe.bias.detach() - (probe.weight.detach() * mean / std).sum(1)


def _anchor_targets(labels: list[np.ndarray], h: int, w: int, nc: int) -> torch.Tensor:
    targets = torch.zeros(len(labels), nc, h, w)
    ys, xs = (torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w
    for i, boxes in enumerate(labels):
        for cls, cx, cy, bw, bh in boxes:
            targets[i, int(cls)][((ys[:, None] - cy).abs() < bh / 4) & ((xs[None, :] - cx).abs() < bw / 4)] = 1
    return targets


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def only(rows, fmt):
    [row] = [r for r in rows if r.format == fmt]
    return row


def assert_parity(row, precision):
    assert row.status == "pass", row
    assert row.metric == "detections", row  # the fixture detects, so the matched-detections metric applies
    assert row.agreement >= (0.85 if precision == "int8" else 0.95), row
    assert row.path.exists() and row.size_mb > 0 and row.latency_ms > 0, row


# --- arguments, fast -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typo, message",
    [
        ("rpii", "Unknown target 'rpii'. Did you mean 'rpi'? Valid: rpi, coral, jetson, onnx"),
        ("jetsn", "Did you mean 'jetson'?"),
        ("corral", "Did you mean 'coral'?"),
        ("tflite", "Unknown target 'tflite'. Valid: rpi, coral, jetson, onnx"),
    ],
)
def test_target_typo_gets_a_suggestion(typo, message, tmp_path):
    with pytest.raises(PruneError) as error:
        export(tmp_path / "missing.pt", typo)
    assert str(error.value) == message or message in str(error.value)


def test_target_names_ignore_case():
    assert resolve_target(" Jetson ") == "jetson"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"target": "rpi", "int8": True}, "pass data=<dataset yaml>"),
        ({"target": "coral"}, "the Edge TPU runs only int8 models"),
        ({"target": "onnx", "imgsz": 100}, "multiple of 32"),
        ({"target": "onnx", "half": "yes"}, "half='yes' must be True or False"),
        ({"target": "onnx", "opset": 5}, "opset=5"),
        ({"target": "onnx", "conf": 1.5}, "conf=1.5"),
        ({"target": "rpi", "int8": True, "data": "nowhere.yaml"}, "data='nowhere.yaml' not found"),
    ],
)
def test_bad_arguments_fail_before_exporting(pruned_pt, kwargs, message):
    with pytest.raises(PruneError, match=message.replace("(", r"\(").replace("[", r"\[")):
        export(pruned_pt, **kwargs, verbose=False)
    assert sorted(p.name for p in pruned_pt.parent.iterdir()) == ["pruned.pt"]


@pytest.mark.parametrize("model, message", [("missing.pt", "not found"), ("model.onnx", "not a PyTorch checkpoint")])
def test_bad_model_paths(tmp_path, model, message):
    with pytest.raises(PruneError, match=message):
        export(tmp_path / model, "onnx")


# --- missing extras, fast: the packages an export needs are checked before it starts ---------------------------


@pytest.fixture
def uninstalled(monkeypatch):
    """``uninstalled("ncnn", ...)`` makes those import names look missing to ``find_spec`` (on a LiteRT platform)."""
    real = importlib.util.find_spec
    monkeypatch.setattr(extras, "litert_platform", lambda: True)

    def hide(*names):
        def find_spec(name, *args, **kwargs):
            return None if name in names else real(name, *args, **kwargs)

        monkeypatch.setattr(importlib.util, "find_spec", find_spec)

    return hide


@pytest.fixture
def fake_pt(tmp_path) -> Path:
    """Nothing reads the checkpoint before the check, so any file named .pt will do."""
    (tmp_path / "data.yaml").write_text("")
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    return path


TFLITE_FIX, EXPORT_FIX = 'pip install "yolo-prune[tflite]"', 'pip install "yolo-prune[export]"'
BOTH_FIX = 'pip install "yolo-prune[export,tflite]"'


@pytest.mark.parametrize(
    "target, kwargs, hidden, fix, names",
    [
        ("rpi", {}, ("litert_torch",), TFLITE_FIX, "needs litert-torch, which is not installed"),
        ("rpi", {"int8": True}, ("ai_edge_quantizer",), TFLITE_FIX, "ai-edge-quantizer"),
        ("rpi", {}, ("ncnn", "ai_edge_litert", "onnx2tf"), BOTH_FIX, "needs ncnn and ai-edge-litert, which are"),
        ("coral", {}, ("onnx2tf", "tf_keras"), TFLITE_FIX, "needs tf_keras and onnx2tf"),
        ("onnx", {}, ("onnxslim", "litert_torch"), EXPORT_FIX, "needs onnxslim, which is not installed"),
        ("onnx", {"int8": True}, ("onnxruntime",), EXPORT_FIX, "onnxruntime"),
        ("jetson", {}, ("onnx", "onnxruntime"), EXPORT_FIX, "needs onnx and onnxruntime, which are not installed"),
    ],
)
def test_missing_extra_fails_before_exporting_and_names_it(uninstalled, fake_pt, target, kwargs, hidden, fix, names):
    if target == "coral" and toolchains.coral_supported_here():
        pytest.skip(toolchains.coral_supported_here())
    uninstalled(*hidden)
    with pytest.raises(PruneError) as error:
        export(fake_pt, target, data=fake_pt.with_name("data.yaml"), **kwargs, verbose=False)
    message = str(error.value)
    assert message.startswith(f"target={target} ") and names in message and fix in message and "\n" not in message
    assert (".ci/tflite-lock.txt" in message) == ("tflite" in fix)  # the pinned set CI installs
    assert sorted(p.name for p in fake_pt.parent.iterdir()) == ["data.yaml", "model.pt"]  # nothing exported


@pytest.mark.parametrize(
    "target, hidden, fix", [("rpi", ("litert_torch", "ai_edge_litert"), TFLITE_FIX), ("onnx", ("onnx",), EXPORT_FIX)]
)
def test_cli_missing_extra_is_one_line_naming_it(uninstalled, fake_pt, capsys, target, hidden, fix):
    uninstalled(*hidden)
    assert main(["export", f"model={fake_pt}", f"target={target}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"yolo-prune: error: target={target} needs ") and fix in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_extras_check_passes_when_installed_and_skips_litert_where_the_extra_has_none(monkeypatch):
    builds = plan_target("rpi", half=False, int8=True, opset=17, tools=Toolchains(None, "no GPU")).builds
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: object())
    extras.check_installed("rpi", builds)  # everything importable: no error
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    monkeypatch.setattr(extras, "litert_platform", lambda: False)  # e.g. Linux aarch64: Ultralytics says why
    assert [p.pip for p in extras.missing_packages(builds)] == ["ncnn", "pnnx"]


def test_plans_map_targets_onto_ultralytics_formats():
    no_tools, gpu = Toolchains(None, "no NVIDIA GPU"), Toolchains("/usr/bin/edgetpu_compiler", "")

    def formats(target, tools=no_tools, **precision):
        plan = plan_target(target, half=precision.get("half", False), int8=precision.get("int8", False), opset=17,
                           tools=tools)  # fmt: skip
        return [(b.format, b.precision) for b in plan.builds]

    assert formats("rpi") == [("ncnn", "fp32"), ("litert", "fp32")]
    assert formats("rpi", half=True, int8=True) == [("ncnn", "fp16"), ("litert", "int8")]
    assert formats("onnx", half=True) == [("onnx", "fp16")]
    assert formats("onnx", int8=True) == [("onnx", "int8")]
    assert formats("coral") == [("edgetpu", "int8")]
    assert formats("jetson") == [("onnx", "fp32")]  # no TensorRT: the ONNX that trtexec consumes
    assert formats("jetson", gpu) == [("engine", "fp16")]
    assert formats("jetson", gpu, int8=True) == [("engine", "int8")]
    assert plan_target("coral", half=False, int8=True, opset=17, tools=gpu).builds[0].compile
    assert not plan_target("coral", half=False, int8=True, opset=17, tools=no_tools).builds[0].compile
    assert plan_target("onnx", half=False, int8=False, opset=17, tools=no_tools).builds[0].options["opset"] == 17
    # the int8 ONNX: Ultralytics exports fp32 and yolo_prune quantizes it per channel; other int8 stay Ultralytics'
    [onnx_int8] = plan_target("onnx", half=False, int8=True, opset=17, tools=no_tools).builds
    assert onnx_int8.quantized_here and onnx_int8.quantize is None
    litert = plan_target("rpi", half=False, int8=True, opset=17, tools=no_tools).builds[1]
    assert not litert.quantized_here and litert.quantize == 8


def test_int8_calibration_gives_one_input_per_training_image(tmp_path):
    for split, n in (("train", 6), ("val", 2)):
        for name in ("a", "b", "c"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(folder / f"{i}.jpg"), np.full((40, 60, 3), 80 * "abc".index(name), np.uint8))
    arrays = calibration_arrays(tmp_path, 32, "classify", limit=6)
    assert len(arrays) == 6 and all(a.shape == (1, 3, 32, 32) and a.dtype == np.float32 for a in arrays)
    assert all(0 <= a.min() and a.max() <= 1 for a in arrays)  # ONNX input: RGB in [0, 1]


def test_toolchain_messages_give_exact_commands(tmp_path):
    tflite = tmp_path / "model_full_integer_quant.tflite"
    assert "`cd " in toolchains.edgetpu_instructions(tflite)
    assert "edgetpu_compiler -s model_full_integer_quant.tflite" in toolchains.edgetpu_instructions(tflite)
    message = toolchains.tensorrt_instructions(tmp_path / "m.onnx", "no NVIDIA GPU", int8=True)
    assert "trtexec --onnx=m.onnx --saveEngine=m.engine --fp16" in message and "quantize=8" in message


# --- the agreement metric, fast --------------------------------------------------------------------------------


def dets(*rows):
    """Detections from (x1, y1, x2, y2, cls, score) rows."""
    a = np.array(rows, float).reshape(-1, 6)
    return Detections.of(a[:, :4], a[:, 4], a[:, 5])


def test_detection_agreement_matches_same_class_above_iou_0_7():
    ref = [dets((0, 0, 10, 10, 0, 0.9), (20, 20, 30, 30, 1, 0.8))]
    assert detection_agreement(ref, ref) == 1.0
    assert detection_agreement(ref, [dets((0, 0, 10, 10, 0, 0.5))]) == pytest.approx(2 / 3)  # one missing
    assert detection_agreement(ref, [dets((0, 0, 10, 10, 1, 0.9), (20, 20, 30, 30, 1, 0.8))]) == 0.5  # class
    assert detection_agreement(ref, [dets((2, 0, 12, 10, 0, 0.9), (20, 20, 30, 30, 1, 0.8))]) == 0.5  # IoU 0.67
    extra = dets((0, 0, 10, 10, 0, 0.9), (20, 20, 30, 30, 1, 0.8), (40, 40, 50, 50, 2, 0.3))
    assert detection_agreement(ref, [extra]) == pytest.approx(0.8)  # extra detections count too
    duplicate = dets((0, 0, 10, 10, 0, 0.9), (0, 0, 10, 10, 0, 0.9))
    assert detection_agreement([dets((0, 0, 10, 10, 0, 0.9))], [duplicate]) == pytest.approx(2 / 3)  # used once


def test_detection_agreement_is_undefined_without_reference_detections():
    assert detection_agreement([dets(), dets()], [dets(), dets((0, 0, 1, 1, 0, 0.9))]) is None


def test_raw_agreement_compares_anchors_and_end2end_rows():
    ref = np.zeros((4 + 2, 3))
    ref[:4] = [[5, 15, 25], [5, 5, 5], [10, 10, 10], [10, 10, 10]]  # xywh
    ref[4:] = 0.01
    out = ref.copy()
    assert raw_agreement(ref, out, 0.02) == (3, 3)
    out[4, 1] = 0.2  # one score off
    out[0, 2] = 30  # one box moved by half its width
    assert raw_agreement(ref, out, 0.02) == (1, 3)
    assert raw_agreement(ref, out[:, :2], 0.02) is None  # shapes differ: nothing comparable
    rows = np.array([[0, 0, 10, 10, 0.5, 1], [20, 20, 30, 30, 0.4, 0], [0, 0, 0, 0, 0, 0]], float)
    assert raw_agreement(rows, rows, 0.02, end2end=True) == (4, 4)


def test_task_outputs_must_agree_too():
    box = [[0, 0, 20, 10]]
    full, empty, left = np.zeros((1, 10, 20), bool), np.zeros((1, 10, 20), bool), np.zeros((1, 10, 20), bool)
    full[:] = True
    left[:, :, :12] = True
    masks = lambda m: [Detections.of(box, [0], [0.9], masks=m)]  # noqa: E731
    assert detection_agreement(masks(full), masks(full)) == 1.0
    assert detection_agreement(masks(full), masks(left)) == 0.0  # same box, mask IoU 0.6
    assert detection_agreement(masks(full), masks(empty)) == 0.0
    kpts = lambda k: [Detections.of(box, [0], [0.9], keypoints=[k])]  # noqa: E731
    assert detection_agreement(kpts([[1, 1], [19, 9]]), kpts([[1.5, 1], [19, 9]])) == 1.0  # within 5% of the diagonal
    assert detection_agreement(kpts([[1, 1], [19, 9]]), kpts([[5, 1], [19, 9]])) == 0.0
    rotated = lambda angle: [Detections.of(box, [0], [0.9], rotated=[[10, 5, 20, 10, angle]])]  # noqa: E731
    assert detection_agreement(rotated(0.0), rotated(0.0)) == pytest.approx(1.0)
    assert detection_agreement(rotated(0.0), rotated(0.8)) == 0.0  # same hull box, turned by 46 degrees


def test_top1_agreement_is_the_share_of_images_with_the_same_class():
    top1 = lambda *classes: [Detections.of([[0, 0, 64, 64]], [c], [0.9]) for c in classes]  # noqa: E731
    assert detection_agreement(top1(0, 1, 2, 2), top1(0, 1, 2, 0)) == 0.75


def test_raw_outputs_compare_class_scores_only():
    ref = np.zeros((4 + 2 + 3, 2))  # boxes, 2 class scores, 3 mask coefficients
    ref[:4] = [[5, 15], [5, 5], [10, 10], [10, 10]]
    out = ref.copy()
    out[6:] = 1.0  # mask coefficients differ; scores agree
    assert raw_agreement(ref, out, 0.02, nc=2) == (2, 2)
    assert raw_agreement(ref, out, 0.02) == (0, 2)


# --- targets, each artifact verified (slow) --------------------------------------------------------------------


@pytest.mark.slow
@needs_export_extra
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_onnx_target_parity(pruned_pt, shapes_data, precision):
    digest = sha256(pruned_pt)
    rows = export(pruned_pt, "onnx", imgsz=IMGSZ, half=precision == "fp16", int8=precision == "int8",
                  data=shapes_data)  # fmt: skip
    [row] = rows
    assert (row.target, row.format, row.precision) == ("onnx", "onnx", precision)
    assert_parity(row, precision)
    assert row.path.parent == pruned_pt.parent  # next to the checkpoint, as `yolo export` writes
    assert sha256(pruned_pt) == digest  # the checkpoint is only read
    import onnx

    exported = onnx.load(row.path)
    graph = exported.graph
    if precision == "fp32":
        assert exported.opset_import[0].version == 17
    if precision == "int8":  # quantized per weight channel, the heads' outputs in float; the fp32 step is gone
        assert row.path.name == "pruned_int8.onnx" and not (pruned_pt.parent / "pruned.onnx").exists()
        inits = {i.name: i for i in graph.initializer}
        weight_scales = [inits[n.input[1]] for n in graph.node if n.op_type == "DequantizeLinear"
                         and n.input[0] in inits and len(inits[n.input[0]].dims) == 4]  # fmt: skip
        assert weight_scales and all(len(s.dims) == 1 and s.dims[0] > 1 for s in weight_scales)
        outputs = [n for n in graph.node if n.op_type == "Conv" and HEAD_OUTPUTS.search(n.name)]
        assert outputs and all(n.input[1] in inits for n in outputs)  # float weights, no DequantizeLinear before


@pytest.mark.slow
@needs_export_extra
@needs_tflite_extra
@pytest.mark.parametrize("half, int8", [(False, False), (True, True)], ids=["fp32", "fp16-ncnn+int8-tflite"])
def test_rpi_target_parity(pruned_pt, shapes_data, half, int8):
    rows = export(pruned_pt, "rpi", imgsz=IMGSZ, half=half, int8=int8, data=shapes_data)
    assert [r.format for r in rows] == ["ncnn", "litert"]
    assert_parity(only(rows, "ncnn"), "fp16" if half else "fp32")
    assert_parity(only(rows, "litert"), "int8" if int8 else "fp32")
    assert only(rows, "ncnn").path.name == "pruned_ncnn_model"
    assert only(rows, "litert").path.name == ("pruned_int8.tflite" if int8 else "pruned.tflite")


@pytest.mark.slow
@needs_export_extra
@pytest.mark.parametrize("quantize", [None, 8], ids=["fp32", "int8"])
def test_stock_openvino_export_parity(pruned_pt, shapes_data, quantize):
    artifact = YOLO(str(pruned_pt)).export(format="openvino", imgsz=IMGSZ, quantize=quantize, data=shapes_data)
    row = verify(pruned_pt, artifact, imgsz=IMGSZ, int8=quantize == 8, data=shapes_data)
    assert_parity(row, "int8" if quantize == 8 else "fp32")  # fp32 runs in bf16 on AMX CPUs, still within 0.95


@pytest.mark.slow
@needs_export_extra
@needs_tflite_extra
def test_coral_without_compiler_keeps_the_int8_tflite_and_says_how_to_compile(pruned_pt, shapes_data, monkeypatch):
    monkeypatch.setattr(toolchains, "find_edgetpu_compiler", lambda: None)
    cwd = sorted(os.listdir())
    rows = export(pruned_pt, "coral", imgsz=IMGSZ, data=shapes_data)
    tflite, edgetpu = only(rows, "litert"), only(rows, "edgetpu")
    assert tflite.path.name == "pruned_full_integer_quant.tflite"
    assert_parity(tflite, "int8")  # the full-integer model the compiler would take, run here by LiteRT
    assert edgetpu.status == "not built" and edgetpu.path is None
    assert "Edge TPU compiler not found" in edgetpu.note and "The full-integer int8 TFLite is ready" in edgetpu.note
    assert f"edgetpu_compiler -s {tflite.path.name}" in edgetpu.note
    assert sorted(os.listdir()) == cwd  # onnx2tf's sample file went to a private working folder, not here


@pytest.mark.slow
@needs_export_extra
def test_jetson_without_tensorrt_exports_the_onnx_for_trtexec(pruned_pt, monkeypatch):
    monkeypatch.setattr(toolchains, "tensorrt_missing_reason", lambda: "no NVIDIA GPU is visible to PyTorch")
    rows = export(pruned_pt, "jetson", imgsz=IMGSZ)  # no data: verified on generated images
    onnx, engine = only(rows, "onnx"), only(rows, "engine")
    assert_parity(onnx, "fp32")
    assert (engine.status, engine.precision, engine.path) == ("not built", "fp16", None)
    assert "TensorRT engine not built: no NVIDIA GPU is visible to PyTorch" in engine.note
    assert "trtexec --onnx=pruned.onnx --saveEngine=pruned.engine --fp16" in engine.note


# --- failures are reported, not hidden (slow) ------------------------------------------------------------------


@pytest.mark.slow
@needs_export_extra
def test_export_of_a_mispruned_model_fails_verification(pruned_pt, tmp_path):
    """A pruning bug's signature: one conv's output channels reordered while its consumer still expects the old order."""
    yolo = YOLO(str(pruned_pt))
    conv = yolo.model.model[1]  # the second stem conv, read by the first C2f
    order = torch.randperm(conv.conv.out_channels, generator=torch.Generator().manual_seed(0))
    conv.conv.weight.data = conv.conv.weight.data[order]
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(conv.bn, name).data = getattr(conv.bn, name).data[order]
    yolo.save(str(tmp_path / "mispruned.pt"))
    artifact = YOLO(str(tmp_path / "mispruned.pt")).export(format="onnx", imgsz=IMGSZ)
    row = verify(pruned_pt, artifact, imgsz=IMGSZ)
    assert row.status == "fail" and row.metric == "detections" and row.agreement < 0.9, row  # faithful: 0.965+


@pytest.mark.slow
@needs_export_extra
def test_strict_export_raises_with_every_row_after_a_failed_check(pruned_pt, monkeypatch):
    from yolo_prune.export import verification

    monkeypatch.setitem(verification.THRESHOLDS, "fp32", 1.01)  # no artifact can pass
    with pytest.raises(ExportVerificationError, match="failed for onnx fp32") as error:
        export(pruned_pt, "onnx", imgsz=IMGSZ, verbose=False)
    assert [r.status for r in error.value.results] == ["fail"]
    assert isinstance(error.value, PruneError)  # so the CLI exits non-zero with its one-line message
    rows = export(pruned_pt, "onnx", imgsz=IMGSZ, strict=False, verbose=False)
    assert not rows[0].passed and rows[0].agreement == 1.0


# --- stock Ultralytics exports of pruned checkpoints (slow) ----------------------------------------------------

STOCK_EXPORT = (  # a process in which importing yolo_prune fails: what it exports, any Ultralytics user exports
    "import sys, json; sys.modules['yolo_prune'] = None\n"
    "from ultralytics import YOLO\n"
    "pt, specs = sys.argv[1], json.loads(sys.argv[2])\n"
    "print('ARTIFACTS=' + json.dumps([str(YOLO(pt).export(imgsz=64, **spec)) for spec in specs]))\n"
)
STOCK_FORMATS = [
    {"format": "torchscript"},
    {"format": "onnx", "quantize": 16},  # half precision
    {"format": "openvino"},
    {"format": "ncnn", "quantize": 16},
]


@pytest.mark.slow
@needs_export_extra
@pytest.mark.parametrize("cfg", ["yolo11n.yaml", "yolo26n.yaml"])
def test_stock_exports_of_pruned_families_agree(detectors, cfg, tmp_path):
    pt = Path(shutil.copy(detectors(cfg), tmp_path / f"{Path(cfg).stem}-pruned.pt"))
    result = subprocess.run(
        [sys.executable, "-c", STOCK_EXPORT, str(pt), json.dumps(STOCK_FORMATS)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "YOLO_OFFLINE": "1"}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    artifacts = json.loads(result.stdout.split("ARTIFACTS=")[-1])
    for spec, artifact in zip(STOCK_FORMATS, artifacts):
        row = verify(pt, artifact, imgsz=IMGSZ)
        assert row.metric == "detections", (spec, row)
        if spec["format"] == "openvino" and openvino_runs_fp32_in_bf16():
            assert row.agreement >= 0.90, (spec, row)  # bf16 keeps 8 mantissa bits, fp16 11: measured 0.937 here
        else:
            assert row.status == "pass", (spec, row)


def openvino_runs_fp32_in_bf16() -> bool:
    """OpenVINO's CPU plugin runs fp32 models in bf16 by default on AMX CPUs, and Ultralytics keeps that default."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == ov.Type.bf16


@pytest.mark.slow
@needs_export_extra
@pytest.mark.parametrize("task", ["segment", "pose", "obb", "classify"])
def test_every_task_exports_and_verifies(task, task_dataset, tmp_path):
    """A random-init task model detects nothing, so detect-like tasks fall back to raw class scores; classify
    compares top-1 classes on every image."""
    pt = tmp_path / f"{task}.pt"
    prune_yolo(tiny_task_model("yolov8n.yaml", task), ratio=0.3, save=pt, verbose=False)
    (row,) = export(pt, "onnx", imgsz=IMGSZ, data=task_dataset(task), verbose=False)
    assert row.status == "pass", row
    assert row.metric == ("top-1" if task == "classify" else "raw outputs"), row
