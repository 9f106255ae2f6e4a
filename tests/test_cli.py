"""yolo-prune command line: key=value grammar, suggestions, one-line errors, default output name."""

import subprocess
import sys
from pathlib import Path

import pytest

from yolo_prune import __version__
from yolo_prune.cli import main, parse


def run(capsys, *words):
    code = main(list(words))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prune_writes_stem_pruned_in_working_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "prune", "model=yolov8n.yaml", "ratio=0.3", "verbose=False")
    assert code == 0, err
    assert (tmp_path / "yolov8n-pruned.pt").stat().st_size > 0


def test_prune_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "yolov8n-pruned.pt").write_bytes(b"mine")
    code, _, err = run(capsys, "prune", "model=yolov8n.yaml", "verbose=False")
    assert code == 2 and "already exists" in err and "Traceback" not in err
    assert (tmp_path / "yolov8n-pruned.pt").read_bytes() == b"mine"


def test_values_are_parsed_like_ultralytics():
    _, args = parse(["prune", "model=a.pt", "ratio=0.5", "global_pruning=True", "round_to=16", "save=x.pt"])
    assert args["ratio"] == 0.5 and args["global_pruning"] is True and args["round_to"] == 16
    assert args["importance"] == "auto"  # default filled in


@pytest.mark.parametrize(
    "words, message",
    [
        (["prnue", "model=a.pt"], "Unknown verb 'prnue'. Did you mean 'prune'?"),
        (["prune", "model=a.pt", "ratoi=0.3"], "Unknown key 'ratoi' for 'prune'. Did you mean 'ratio'?"),
        (["prune", "model=a.pt", "ratio"], "'ratio' is not key=value"),
        (["prune", "ratio=0.3"], "'prune' needs model=..."),
        (["prune", "model=yolov8n.yaml", "ratio=1.5"], "strictly between 0 and 1"),
        (["prune", "model=yolov8n.yaml", "ratio=abc"], "strictly between 0 and 1"),
        (["prune", "model=missing.pt"], "not found"),
        (["prune", "model=yolov10n.yaml"], "detect, segment, pose, OBB and classify"),
    ],
)
def test_errors_are_one_line_with_exit_2(capsys, words, message):
    code, _, err = run(capsys, *words)
    assert code == 2
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_debug_shows_the_traceback():
    with pytest.raises(Exception, match="Unknown verb"):
        main(["prnue", "debug=True"])


def test_help_lists_verbs_and_keys(capsys):
    for words in ([], ["help"]):
        code, out, _ = run(capsys, *words)
        assert code == 0 and "prune" in out and "ratio=None" in out and "model=<required>" in out


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "yolo-prune"
    exe = subprocess.run([str(script), "version"], capture_output=True, text=True)
    assert exe.returncode == 0 and __version__ in exe.stdout


def test_every_verb_resolves_its_function_and_keys():
    from yolo_prune.cli import VERBS, _resolve

    for name, verb in VERBS.items():
        assert verb.summary, name
        assert isinstance(verb.key_defaults(), dict), name
        assert callable(_resolve(verb.target)), name


@pytest.mark.parametrize(
    "words, message",
    [
        (["bench", "model=a.pt", "fromats=onnx"], "Did you mean 'formats'?"),
        (["iterative", "model=a.pt"], "'iterative' needs data=..."),
        (["sensitivity", "model=a.pt", "data=d.yaml", "ratio=0.2"], "Did you mean 'ratios'?"),
        (["dataset", "n_train=4"], "'dataset' needs out=..."),
        (["convert", "data=coco"], "'convert' needs out=..."),
    ],
)
def test_verb_key_errors(capsys, words, message):
    code, _, err = run(capsys, *words)
    assert code == 2 and message in err, err


def test_iterative_passes_ultralytics_train_keys_through():
    _, args = parse(["iterative", "model=a.pt", "data=d.yaml", "batch=4", "lr0=0.001", "distill_model=b.pt"])
    assert args["batch"] == 4 and args["lr0"] == 0.001 and args["distill_model"] == "b.pt"


def test_dataset_verb_writes_yolo_and_coco(tmp_path, capsys):
    assert main(["dataset", f"out={tmp_path / 'y'}", "n_train=4", "n_val=2", "imgsz=64"]) == 0
    assert (tmp_path / "y" / "data.yaml").is_file()
    assert main(["dataset", f"out={tmp_path / 'c'}", "n_train=4", "n_val=2", "imgsz=64", "format=coco"]) == 0
    assert (tmp_path / "c" / "annotations" / "instances_train.json").is_file()
    assert main(["convert", f"data={tmp_path / 'c'}", f"out={tmp_path / 'cy'}"]) == 0
    assert (tmp_path / "cy" / "data.yaml").is_file()


def test_export_target_typo_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "export", f"model={tmp_path / 'x.pt'}", "target=rpii")
    assert code == 2 and "Did you mean 'rpi'?" in err and "Traceback" not in err
