"""Nothing lost (atomic, no-clobber, interruption-safe saves; inputs untouched) and bad inputs beyond test_errors.py:
foreign pickles, unknown custom modules, odd checkpoint layouts, data paths, devices and dtypes, and a guarantee that
user checkpoints are only ever unpickled by Ultralytics' restricted (weights_only) loader.
"""

import ast
import copy
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from ultralytics.nn.modules import Conv
from ultralytics.nn.tasks import DetectionModel, SemanticSegmentationModel, yaml_model_load
from ultralytics.utils.torch_utils import fuse_conv_and_bn, get_num_params

import yolo_prune
from conftest import tiny_detector
from helpers import assert_stock_rebuild_keeps_every_tensor, slot_widths
from yolo_prune import PruneError, prune_yolo
from yolo_prune.checkpoint import checkpoint_dict, save_atomic
from yolo_prune.loading import load_model

SUPPORTS = "supports YOLOv8, YOLO11 and YOLO26 detect, segment, pose, OBB and classify"  # every such message
PACKAGE = Path(yolo_prune.__file__).parent


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A stock checkpoint written by yolo-prune (2% pruned yolov8n, 3 classes)."""
    path = tmp_path_factory.mktemp("ckpt") / "base.pt"
    prune_yolo(tiny_detector(), ratio=0.02, save=path, verbose=False)
    return path


@pytest.fixture
def small_ckpt() -> dict:
    """A tiny, fast-to-save checkpoint dict (save tests don't need a real model)."""
    return {"weights": torch.arange(4.0), "yolo_prune": {"ratio": 0.3}}


def interrupting_save(exc: BaseException):
    """A torch.save that writes a partial archive to real files, then fails like a crash or Ctrl-C would."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, io.BytesIO):  # in-memory size measurements stay real
            return real(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a checkpoint")
        raise exc

    return save


# ---------------------------------------------------------------------------------------------------------------------
# Nothing lost: atomic saves, no clobbering, interruptions
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(28, "No space left on device"), RuntimeError("boom")])
def test_interrupted_save_leaves_nothing_and_keeps_existing_file(tmp_path, monkeypatch, small_ckpt, exc):
    new, existing = tmp_path / "new.pt", tmp_path / "existing.pt"
    existing.write_bytes(b"previous checkpoint")
    monkeypatch.setattr(torch, "save", interrupting_save(exc))
    for dest in (new, existing):
        with pytest.raises(type(exc)):
            save_atomic(small_ckpt, dest, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.pt"]  # no partial file, no temp file
    assert existing.read_bytes() == b"previous checkpoint"


def test_interrupted_prune_yolo_leaves_no_checkpoint(checkpoint, tmp_path, monkeypatch):
    digest, out = sha256(checkpoint), tmp_path / "out" / "pruned.pt"
    monkeypatch.setattr(torch, "save", interrupting_save(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        prune_yolo(checkpoint, ratio=0.3, save=out, verbose=False)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert sha256(checkpoint) == digest


def test_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch, small_ckpt):
    def fail(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", fail)
    monkeypatch.setattr(os, "link", fail)
    with pytest.raises(OSError):
        save_atomic(small_ckpt, tmp_path / "a.pt")
    assert list(tmp_path.iterdir()) == []


def test_file_created_meanwhile_is_not_clobbered(tmp_path, monkeypatch, small_ckpt):
    """Another process writes the destination while we save: without overwrite=True theirs must survive."""
    dest, real = tmp_path / "race.pt", torch.save

    def save_while_someone_else_writes(obj, f, *args, **kwargs):
        dest.write_bytes(b"written by another process")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_while_someone_else_writes)
    with pytest.raises(PruneError, match="already exists"):
        save_atomic(small_ckpt, dest)
    assert dest.read_bytes() == b"written by another process"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["race.pt"]


def test_overwrite_replaces_atomically_and_saved_file_is_complete(tmp_path, small_ckpt):
    dest = tmp_path / "deep" / "er" / "x.pt"  # parents are created
    save_atomic(small_ckpt, dest)
    with pytest.raises(PruneError, match="already exists"):
        save_atomic({"other": 1}, dest)
    assert torch.load(dest, weights_only=True)["yolo_prune"] == {"ratio": 0.3}
    save_atomic({"other": 1}, dest, overwrite=True)
    assert torch.load(dest, weights_only=True) == {"other": 1}
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x.pt"]


def test_unsaved_prune_leaves_no_file_after_the_process(tmp_path):
    """Without save= the checkpoint lives in a temporary folder that must go when the process ends."""
    script = (
        "from yolo_prune.checkpoint import save_atomic, temporary_checkpoint_path\n"
        "import torch, sys\n"
        "path = save_atomic({'yolo_prune': 1}, temporary_checkpoint_path())\n"
        "assert torch.load(path, weights_only=True) == {'yolo_prune': 1}\n"
        "print(path)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).parent.parent == tmp_path
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_saved_file_gets_normal_permissions(tmp_path, small_ckpt):
    """mkstemp creates 0600 files; a checkpoint must get the mode any other written file gets (0666 & ~umask)."""
    mask = os.umask(0o022)
    os.umask(mask)
    save_atomic(small_ckpt, tmp_path / "a.pt")
    assert (tmp_path / "a.pt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_save_to_a_folder_is_refused(tmp_path, small_ckpt):
    (tmp_path / "out.pt").mkdir()
    for overwrite in (False, True):
        with pytest.raises(PruneError, match="is a folder"):
            save_atomic(small_ckpt, tmp_path / "out.pt", overwrite=overwrite)
    assert list((tmp_path / "out.pt").iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_save_through_a_link_to_the_input_is_refused(checkpoint, tmp_path):
    link = tmp_path / "alias.pt"
    link.symlink_to(checkpoint)
    digest = sha256(checkpoint)
    with pytest.raises(PruneError, match="is the input checkpoint"):
        prune_yolo(checkpoint, save=link, overwrite=True, verbose=False)
    assert sha256(checkpoint) == digest and link.is_symlink()


def test_read_only_input_is_read_not_written(checkpoint, tmp_path):
    source = tmp_path / "ro.pt"
    source.write_bytes(checkpoint.read_bytes())
    source.chmod(0o444)
    stat = source.stat()
    prune_yolo(source, ratio=0.3, save=tmp_path / "out.pt", verbose=False)
    after = source.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_mode) == (stat.st_mtime_ns, stat.st_size, stat.st_mode)
    assert sha256(source) == sha256(checkpoint)


# ---------------------------------------------------------------------------------------------------------------------
# Untrusted checkpoints: restricted loader only
# ---------------------------------------------------------------------------------------------------------------------


class Foreign:
    """A class no allow-list knows."""

    def __init__(self):
        self.payload = [1, 2, 3]


class MakesDirWhenUnpickled:
    """What an attacker pickles: unpickling calls os.mkdir(marker)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


@pytest.mark.parametrize("kind", ["foreign", "payload"])
def test_checkpoint_with_foreign_classes_is_refused_unexecuted(tmp_path, kind):
    marker = tmp_path / "PWNED"
    obj = Foreign() if kind == "foreign" else MakesDirWhenUnpickled(marker)
    torch.save({"model": obj, "ema": None, "train_args": {}}, tmp_path / "evil.pt")
    with pytest.raises(PruneError, match="Could not load .* outside the supported Ultralytics checkpoint format"):
        prune_yolo(tmp_path / "evil.pt", verbose=False)
    assert not marker.exists()


def test_payload_next_to_a_real_model_is_refused(checkpoint, tmp_path):
    marker = tmp_path / "PWNED"
    ckpt = torch.load(checkpoint, weights_only=False)  # our own trusted test file
    ckpt["train_args"] = {"imgsz": 64, "hook": MakesDirWhenUnpickled(marker)}
    torch.save(ckpt, tmp_path / "trojan.pt")
    with pytest.raises(PruneError, match="Could not load"):
        prune_yolo(tmp_path / "trojan.pt", verbose=False)
    assert not marker.exists()


def test_yaml_activation_that_would_run_code_is_refused(checkpoint, tmp_path):
    """Stock parse_model eval()s the yaml 'activation' on every rebuild, so it is code in disguise."""
    marker = tmp_path / "PWNED"
    evil = f"__import__('os').mkdir({str(marker)!r})"
    ckpt = torch.load(checkpoint, weights_only=False)
    ckpt["model"].yaml["activation"] = evil
    torch.save(ckpt, tmp_path / "act.pt")
    with pytest.raises(PruneError, match="activation"):
        prune_yolo(tmp_path / "act.pt", verbose=False)
    cfg = {k: v for k, v in yaml_model_load("yolov8n.yaml").items() if k not in ("yaml_file", "scale")}
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump({**cfg, "activation": evil}), encoding="utf-8")
    with pytest.raises(PruneError, match="activation"):
        prune_yolo(tmp_path / "evil.yaml", verbose=False)
    assert not marker.exists()


@pytest.mark.parametrize("activation", ["nn.ReLU()", "torch.nn.LeakyReLU(0.1)", "nn.SiLU(inplace=True)"])
def test_plain_torch_activations_still_load(tmp_path, activation):
    model = tiny_detector()
    model.yaml["activation"] = activation
    torch.save(checkpoint_dict(model, {}), tmp_path / "act.pt")
    loaded, _ = load_model(tmp_path / "act.pt")
    assert loaded.yaml["activation"] == activation


def test_user_checkpoints_load_only_with_weights_only(checkpoint, tmp_path, monkeypatch):
    calls = []
    real = torch.load

    def recording_load(f, *args, **kwargs):
        calls.append((str(f), kwargs.get("weights_only")))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    model, file = load_model(checkpoint)
    assert file == checkpoint and type(model) is DetectionModel
    assert calls and all(weights_only is True for _, weights_only in calls), calls
    calls.clear()
    prune_yolo(checkpoint, ratio=0.3, save=tmp_path / "out.pt", verbose=False)
    on_input = [c for c in calls if Path(c[0]).resolve() == checkpoint.resolve()]
    assert on_input and all(weights_only is True for _, weights_only in on_input), calls


def test_prune_yolo_never_unpickles_unrestricted(checkpoint, tmp_path, monkeypatch):
    """Issue: 'never weights_only=False on a user path' -- ``save`` is a user path too (prune_yolo reloads it)."""
    calls = []
    real = torch.load

    def recording_load(f, *args, **kwargs):
        calls.append((str(f), kwargs.get("weights_only")))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    prune_yolo(checkpoint, ratio=0.3, save=tmp_path / "out.pt", verbose=False)
    assert [c for c in calls if c[1] is not True] == []


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def test_package_source_has_no_unrestricted_unpickling():
    """Static check of yolo_prune/: no torch.load/pickle calls, no weights_only=False, checkpoints via safe_only=True."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree):
            name = ast.unparse(call.func)
            assert name not in {"torch.load", "torch_load", "pickle.load", "pickle.loads", "load"}, (path, name)
            for keyword in call.keywords:
                assert not (keyword.arg == "weights_only" and ast.unparse(keyword.value) != "True"), (path, name)
    tree = ast.parse((PACKAGE / "loading.py").read_text(encoding="utf-8"))
    loader = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "_from_checkpoint")
    names = {ast.unparse(call.func): call for call in _calls(loader)}
    assert "YOLO" not in names  # YOLO(path) would unpickle unrestricted
    safe = names["torch_safe_load"]
    assert any(k.arg == "safe_only" and ast.unparse(k.value) == "True" for k in safe.keywords)


def classes_in(path: Path) -> list[str]:
    """Every global a checkpoint references, ignoring what this process already allow-listed (restricted loads
    register their classes with add_safe_globals for the life of the process, hiding them from the scan)."""
    registered = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    finally:
        torch.serialization.add_safe_globals(registered)


def _sets_safe_load(tree: ast.AST) -> bool:
    """A script run in its own process (export/worker.py) restricts loading by setting ULTRALYTICS_SAFE_LOAD=1."""
    return "ULTRALYTICS_SAFE_LOAD" in ast.unparse(tree)


def test_no_unrestricted_yolo_loads_in_package():
    """``YOLO(path)`` unpickles a .pt without restriction; every such call must sit inside ``restricted_loading()``
    (or be loading.py's yaml builder). Lists the offending call sites."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.With) and any("restricted_loading" in ast.unparse(i) for i in node.items):
                guarded |= {id(call) for call in _calls(node)}
        for call in _calls(tree):
            name = ast.unparse(call.func)
            if name != "YOLO" or id(call) in guarded or path.name == "loading.py" or _sets_safe_load(tree):
                continue
            arg = call.args[0] if call.args else None
            if isinstance(arg, ast.Constant) and str(arg.value).endswith((".yaml", ".yml")):
                continue
            offenders.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}: {ast.unparse(call)}")
    assert offenders == [], "\n".join(offenders)


def test_restricted_loading_makes_yolo_refuse_foreign_pickles(checkpoint, tmp_path, monkeypatch):
    from ultralytics import YOLO

    import ultralytics.nn.tasks as tasks
    from yolo_prune.loading import restricted_loading

    marker = tmp_path / "PWNED"
    torch.save({"model": MakesDirWhenUnpickled(marker)}, tmp_path / "evil.pt")
    calls, real = [], torch.load
    monkeypatch.setattr(torch, "load", lambda f, *a, **k: calls.append(k.get("weights_only")) or real(f, *a, **k))
    previous = tasks.SAFE_LOAD
    with restricted_loading():
        assert type(YOLO(str(checkpoint)).model) is DetectionModel
        with pytest.raises(TypeError, match="outside the supported"):
            YOLO(str(tmp_path / "evil.pt"))
    assert tasks.SAFE_LOAD == previous and not marker.exists() and calls and all(w is True for w in calls)


def test_output_holds_only_stock_classes_and_plain_metadata(checkpoint):
    unsafe = classes_in(checkpoint)
    assert "ultralytics.nn.tasks.DetectionModel" in unsafe and not any("yolo_prune" in name for name in unsafe)
    assert all(name.startswith(("ultralytics.nn.", "torch.", "builtins.", "collections.")) for name in unsafe), unsafe
    ckpt = torch.load(checkpoint, weights_only=False)
    json.dumps(ckpt["yolo_prune"])  # metadata is plain JSON-able data
    json.dumps(ckpt["train_args"])
    loaded, _ = load_model(checkpoint)  # and the restricted loader accepts it
    assert loaded.task == "detect" and set(loaded.args) <= {"imgsz", "data", "task", "single_cls"}


def test_trainer_style_checkpoint_loads_restricted(tmp_path):
    """Ultralytics' trainer writes model=None, an fp16 EMA, optimizer state and train_args: all must pass."""
    base = tiny_detector()
    optimizer = torch.optim.SGD(base.parameters(), lr=0.01, momentum=0.9)
    base(torch.zeros(1, 3, 32, 32))[0].sum().backward()
    optimizer.step()
    ckpt = {
        "epoch": 3, "best_fitness": 0.5, "model": None, "ema": copy.deepcopy(base).half(), "updates": 10,
        "optimizer": optimizer.state_dict(), "train_args": {"imgsz": 64, "data": "d.yaml", "batch": 8, "task": "detect"},
        "train_metrics": {"metrics/mAP50(B)": 0.1}, "date": "2025-01-01", "version": "8.4.190",
    }  # fmt: skip
    torch.save(ckpt, tmp_path / "last.pt")
    model, _ = load_model(tmp_path / "last.pt")
    assert type(model) is DetectionModel and next(model.parameters()).dtype == torch.float32
    assert model.args == {"imgsz": 64, "data": "d.yaml", "task": "detect", "single_cls": False}


# ---------------------------------------------------------------------------------------------------------------------
# Bad inputs, each with one clear PruneError
# ---------------------------------------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_checkpoint_truncated_anywhere_is_refused(checkpoint, tmp_path_factory, fraction):
    data = checkpoint.read_bytes()
    cut = tmp_path_factory.mktemp("cut") / "cut.pt"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(PruneError, match="empty|Could not load"):
        load_model(cut)


@pytest.mark.parametrize(
    "content, message",
    [
        ({"model": {"conv.weight": torch.zeros(1)}}, "holds no PyTorch model"),  # a state_dict
        ({"weights": torch.zeros(3)}, "holds no PyTorch model"),
        (torch.zeros(3), "Could not load|holds no PyTorch model"),  # not even a dict
        ({"model": nn.Linear(2, 2)}, SUPPORTS),  # a torch model, not a YOLO one
    ],
)
def test_checkpoint_without_a_yolo_model(tmp_path, content, message):
    torch.save(content, tmp_path / "x.pt")
    with pytest.raises(PruneError, match=message):
        prune_yolo(tmp_path / "x.pt", verbose=False)


def test_torchscript_archive_is_refused(tmp_path):
    torch.jit.save(torch.jit.trace(nn.Conv2d(3, 4, 1), torch.zeros(1, 3, 8, 8)), str(tmp_path / "ts.pt"))
    with pytest.raises(PruneError, match="TorchScript"):
        prune_yolo(tmp_path / "ts.pt", verbose=False)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("photo.jpg", b"\xff\xd8\xff\xe0 jpeg", "not a PyTorch checkpoint"),
        ("photo.pt", b"\xff\xd8\xff\xe0 jpeg renamed", "Could not load"),
        ("labels.txt", b"0 0.5 0.5 0.1 0.1\n", "not a PyTorch checkpoint"),
        ("model.engine", b"\x00" * 64, "not a PyTorch checkpoint"),
    ],
)
def test_non_checkpoint_files(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(PruneError, match=message):
        prune_yolo(tmp_path / name, verbose=False)


def test_folder_named_like_a_checkpoint(tmp_path):
    (tmp_path / "weights.pt").mkdir()
    with pytest.raises(PruneError, match="is a folder"):
        prune_yolo(tmp_path / "weights.pt", verbose=False)


def test_checkpoint_of_an_unsupported_task(tmp_path):
    model = SemanticSegmentationModel("yolo26n-sem.yaml", nc=3, verbose=False)
    torch.save(checkpoint_dict(model, {}), tmp_path / "sem.pt")
    with pytest.raises(PruneError, match=f"{SUPPORTS}.*SemanticSegmentationModel ending in a SemanticSegment"):
        prune_yolo(tmp_path / "sem.pt", verbose=False)


def test_fused_checkpoint_file(tmp_path):
    torch.save(checkpoint_dict(tiny_detector().fuse(verbose=False), {}), tmp_path / "fused.pt")
    with pytest.raises(PruneError, match="fused"):
        prune_yolo(tmp_path / "fused.pt", verbose=False)


def test_partly_fused_model():
    model = tiny_detector()
    layer = model.model[1]
    layer.conv = fuse_conv_and_bn(layer.conv, layer.bn)
    delattr(layer, "bn")
    layer.forward = layer.forward_fuse
    with pytest.raises(PruneError, match="fused"):
        prune_yolo(model, verbose=False)


UNKNOWN_LAYER_YAML = """
nc: 3
backbone:
  - [-1, 1, Conv, [16, 3, 2]]
  - [-1, 1, GhostConv, [32, 3, 2]]
  - [-1, 1, C2f, [32, True]]
  - [-1, 1, SPPF, [32, 5]]
head:
  - [[3], 1, Detect, [nc]]
"""


def test_yaml_with_an_unsupported_module(tmp_path):
    (tmp_path / "custom.yaml").write_text(UNKNOWN_LAYER_YAML, encoding="utf-8")
    with pytest.raises(PruneError, match="unsupported layers: GhostConv"):
        prune_yolo(tmp_path / "custom.yaml", verbose=False)


class Gate(nn.Module):
    """A user's custom layer."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.conv(x))


class Gated(nn.Module):
    """A stock layer wrapped with a custom gate (keeps the attributes parse_model sets)."""

    def __init__(self, layer: nn.Module, c: int):
        super().__init__()
        self.layer, self.gate = layer, Gate(c)
        self.f, self.i, self.type, self.np = layer.f, layer.i, "Gated", layer.np

    def forward(self, x):
        return self.gate(self.layer(x))


class MyConv(Conv):
    """A Conv subclass with its own behaviour: pruning into a stock Conv would silently drop it."""

    def forward(self, x):
        return super().forward(x) * 2


class MyDetectionModel(DetectionModel):
    pass


def _with_foreign_module(kind: str) -> DetectionModel:
    model = tiny_detector()
    if kind == "attached":  # an extra submodule hung on a stock layer
        model.model[2].extra = Gate(32)
    elif kind == "wrapped":  # a stock layer replaced by a custom wrapper
        model.model[2] = Gated(model.model[2], 32)
    elif kind == "subclass":  # a stock layer replaced by a custom subclass
        old = model.model[1]
        new = MyConv(16, 32, 3, 2)
        new.load_state_dict(old.state_dict())
        new.f, new.i, new.type, new.np = old.f, old.i, old.type, old.np
        model.model[1] = new
    elif kind == "model-subclass":
        subclassed = MyDetectionModel("yolov8n.yaml", nc=3, verbose=False)
        subclassed.load_state_dict(model.state_dict())
        model = subclassed
    return model.eval()


@pytest.mark.parametrize("kind", ["attached", "wrapped", "subclass", "model-subclass"])
def test_model_with_unknown_custom_modules(kind):
    with pytest.raises(PruneError, match=SUPPORTS):
        prune_yolo(_with_foreign_module(kind), ratio=0.3, verbose=False)


@pytest.mark.parametrize(
    "data, message",
    [
        ("notes.txt", "Could not read dataset"),  # not a yaml
        ("photo.jpg", "Could not read dataset"),  # an image, not a dataset
        ("images", "Could not read dataset"),  # a folder of images without a yaml
        ("no_images.yaml", "dataset|images"),  # a yaml whose train folder holds no images
    ],
)
def test_non_image_data_paths(tmp_path, data, message):
    (tmp_path / "notes.txt").write_text("not a dataset", encoding="utf-8")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "images" / "train" / "readme.txt").write_text("no images here", encoding="utf-8")
    (tmp_path / "no_images.yaml").write_text(
        f"path: {tmp_path}\ntrain: images/train\nval: images/train\nnames: {{0: a}}\n", encoding="utf-8"
    )
    with pytest.raises(PruneError, match=message):
        prune_yolo(tiny_detector(), importance="taylor", data=tmp_path / data, verbose=False)


def test_data_yaml_download_script_is_not_run(tmp_path):
    """Ultralytics exec()s a dataset yaml's 'download:' Python when its images are missing; pruning must not."""
    marker = tmp_path / "PWNED"
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path}\ntrain: missing/train\nval: missing/val\nnames: {{0: a}}\n"
        f"download: import os; os.mkdir({str(marker)!r})\n",
        encoding="utf-8",
    )
    with pytest.raises(PruneError):
        prune_yolo(tiny_detector(), importance="taylor", data=tmp_path / "data.yaml", verbose=False)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------------------------
# Devices and dtypes; re-pruning a pruned checkpoint
# ---------------------------------------------------------------------------------------------------------------------


def test_bfloat16_model_is_handled():
    source = tiny_detector().to(torch.bfloat16)
    pruned = prune_yolo(source, ratio=0.3, verbose=False).model
    assert next(pruned.parameters()).dtype == torch.float32
    assert next(source.parameters()).dtype == torch.bfloat16  # the caller's model is left as it was
    assert_stock_rebuild_keeps_every_tensor(pruned)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the model is copied to CPU first)")
def test_cuda_model_is_handled():
    source = tiny_detector().cuda().half()
    pruned = prune_yolo(source, ratio=0.3, verbose=False).model
    assert next(pruned.parameters()).device.type == "cpu"
    assert next(source.parameters()).device.type == "cuda"
    assert_stock_rebuild_keeps_every_tensor(pruned)


def test_repruning_a_pruned_checkpoint_compounds(checkpoint, tmp_path):
    once, twice = tmp_path / "once.pt", tmp_path / "twice.pt"
    first = prune_yolo(checkpoint, ratio=0.3, global_pruning=False, save=once, verbose=False).model  # per-slot rule
    second = prune_yolo(once, ratio=0.3, global_pruning=False, save=twice, verbose=False).model
    assert_stock_rebuild_keeps_every_tensor(second)
    assert get_num_params(second) < get_num_params(first)
    base = load_model(checkpoint)[0]
    for b, w in zip(slot_widths(base), slot_widths(second)):  # ~ original * 0.7 * 0.7, within one round_to
        assert 8 <= w <= b and (w <= 8 or abs(w - b * 0.49) <= 8), (b, w)
    meta = torch.load(twice, weights_only=False)["yolo_prune"]
    assert meta["source"] == str(once) and meta["ratio"] == 0.3
