"""More real COCO checkpoints for the real-model benchmarks: Ultralytics' released weights, fetched with pip.

Pretrained weights cannot be downloaded from Ultralytics' hosts here, but a few packages on the package index ship
Ultralytics' own release checkpoints inside their archives. This script downloads the pinned archive with pip
(``--no-deps``; the source archive where only that holds the weights), extracts the one checkpoint, checks its
SHA-256 and caches it in ``benchmarks/cache/real/weights/`` (git-ignored; nothing is installed). yolov8n, yolov8s and
yolo11n appear in two unrelated packages each with identical hashes, and every checkpoint carries Ultralytics' own metadata
(training args on coco.yaml, dates, versions), so they are the released ``yolov8n.pt`` / ``yolov8s.pt`` /
``yolo11n.pt`` / ``yolo26n.pt`` (the official yolov8n, where ``../shared``'s is rebuilt from an int8 export):

    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_weights.py yolov8n yolo11n yolo26n   # prints the paths
    YOLO_OFFLINE=1 .venv/bin/python benchmarks/real_models.py --model benchmarks/cache/real/weights/yolo11n.pt ...
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "benchmarks" / "cache" / "real" / "weights"
# model -> (pip requirement, archive kind, member of the archive, SHA-256 of the checkpoint)
SOURCES = {
    "yolov8n": ("xinfer==0.3.2", "source", "xinfer-0.3.2/nbs/yolov8n.pt",
                "f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"),
    "yolo11n": ("yowo==2.4.1", "source", "yowo-2.4.1/yolo11n.pt",
                "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1"),
    "yolov8s": ("xinfer==0.3.2", "source", "xinfer-0.3.2/nbs/yolov8s.pt",
                "1f47a78bf100391c2a140b7ac73a1caae18c32779be7d310658112f7ac9aa78a"),
    "yolo26n": ("mustatil==5.6.0", "wheel", "mustatil/yolo26n.pt",
                "9b09cc8bf347f0fc8a5f7657480587f25db09b34bf33b0652110fb03a8ad4fef"),
}


def fetch(name: str) -> Path:
    """The cached checkpoint ``name`` (a key of ``SOURCES``), downloaded and checked first if it is not there yet."""
    requirement, kind, member, sha256 = SOURCES[name]
    target = WEIGHTS / f"{name}.pt"
    if not target.exists():
        WEIGHTS.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            flags = ["--no-binary", ":all:"] if kind == "source" else ["--only-binary", ":all:"]
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", *flags, requirement, "-d", tmp],
                           check=True)
            archive = next(Path(tmp).iterdir())
            target.with_suffix(".tmp").write_bytes(_read_member(archive, member))
        target.with_suffix(".tmp").rename(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != sha256:
        target.unlink()
        raise SystemExit(f"{name}: SHA-256 {digest} is not the expected {sha256}; the file was removed")
    return target


def _read_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` in a wheel (zip) or a source archive (tar.gz)."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(member)
    with tarfile.open(archive) as t:
        return t.extractfile(member).read()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("models", nargs="+", choices=sorted(SOURCES))
    for name in p.parse_args().models:
        print(fetch(name))


if __name__ == "__main__":
    main()
