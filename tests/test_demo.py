"""`yolo-prune demo quick=True`: the whole offline path in seconds (the full demo runs the same code, bigger)."""

import json

import pytest

from yolo_prune.cli import main


@pytest.mark.slow
def test_quick_demo_writes_report(tmp_path):
    assert main(["demo", "quick=True", f"project={tmp_path}"]) == 0
    run = tmp_path / "demo"
    report = (run / "report.md").read_text()
    assert "| base |" in report and "| pruned + fine-tune |" in report and "onnx" in report
    assert "| GFLOPs @" in report  # the image size the GFLOPs are counted at
    assert (run / "accuracy.png").stat().st_size > 0 and (run / "bench" / "bench.png").stat().st_size > 0
    scores = json.loads((run / "demo.json").read_text())["scores"]
    assert scores["pruned + fine-tune"]["gflops"] < 0.7 * scores["base"]["gflops"]
    cached = tmp_path / "demo-cache" / "quick" / "base.pt"
    stamp = cached.stat().st_mtime_ns
    assert main(["demo", "quick=True", f"project={tmp_path}"]) == 0  # second run: new run folder, cached base
    assert (tmp_path / "demo-2" / "report.md").is_file()
    assert cached.stat().st_mtime_ns == stamp
