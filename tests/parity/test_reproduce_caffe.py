"""`tools/reproduce.py --engine caffe` end to end with real `caffe train` and real pycaffe (``make parity``).

The toolkit runs under the Caffe venv's interpreter (``make caffe`` installs it there, NumPy held at
pycaffe's, as Dockerfile.caffe does), with Caffe's bin/ on PATH and its pycaffe on PYTHONPATH: one
repeat of a BBBC013 look-alike, two epochs of a narrow M-CNN.
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, run_script
from tests.support.parity import PYTHON, Report, caffe_env

TINY = ["--widths", "4,4,4,4,4,4,4", "--fusion-width", "16", "--fusion-pool", "0", "--fc-width", "16",
        "--quiet", "--batch", "8", "--workers", "0"]


def test_reproduce_with_real_caffe(caffe_prefix: Path, tmp_path: Path, report: Report) -> None:
    env = caffe_env(threads=2)
    probe = subprocess.run([PYTHON, "-c", "import mcnn, caffe; print(caffe.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path)
    if probe.returncode != 0:
        pytest.skip(f"the toolkit or pycaffe does not import in {PYTHON} (run `make caffe`): "
                    f"{probe.stderr.strip().splitlines()[-1:]}")
    assert str(caffe_prefix) in probe.stdout  # the real pycaffe, not the shim
    out = run_script("data_prep/synthesize.py", "bbbc013", "--out", tmp_path / "raw")
    assert out.returncode == 0, out.stderr
    run = tmp_path / "run"
    out = subprocess.run([PYTHON, str(ROOT / "tools" / "reproduce.py"), "bbbc013", "--raw", str(tmp_path / "raw"),
                          "--out", str(run), "--repeats", "1", "--epochs", "2", "--engine", "caffe", "--gpu", "cpu",
                          *TINY], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    with open(run / "results.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["engine"] == "caffe" and row["splits_done"] == "1", row
    assert (run / "results.md").is_file()
    assert list((run / "runs" / "mcnn").glob("*/snapshots/*.caffemodel")), "caffe train wrote no snapshot"
    report.add("tools/reproduce.py --engine caffe, BBBC013 look-alike, 1 repeat x 2 epochs", 0.0, 0.0,
               note=f"ran; accuracy {row['ours']} (engine {row['engine']})")
