"""The whole-screen prediction killed with SIGKILL mid-run, then run again: the same outputs as an
uninterrupted run (the finished parts are kept, the unfinished one is redone)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.support import ROOT, run_script
from tests.support.tiny import make_setup, write_lmdb


@pytest.mark.slow
def test_killed_screen_prediction_resumes_to_the_same_profiles(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from mcnn.caffe import read_net
    from tests.support.crosscheck import write_random_caffemodel

    tiny = make_setup(tmp_path / "tiny")
    write_random_caffemodel(read_net(tiny.deploy), tmp_path / "w.caffemodel")
    (tiny.root / "labels.txt").write_text("a\nb\nc\n")
    count = 600
    lmdb = write_lmdb(tiny.root / "screen_lmdb", count, seed=5, labels=[-1] * count)
    with open(tiny.root / "screen_index.csv", "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site"])
        for i in range(count):
            w.writerow([f"{i:08d}_img{i}", -1, "", f"P{i // 200}", f"W{(i // 4) % 50:02d}", i % 4 + 1])
    args = ["--model", str(tiny.deploy), "--weights", str(tmp_path / "w.caffemodel"), "--lmdb", str(lmdb),
            "--index", str(tiny.root / "screen_index.csv"), "--chunk", "20", "--batch", "4", "--quiet"]
    whole = run_script("tools/predict.py", *args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "predict.py"), *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / ".parts"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and len(list(parts.glob("part-*.parquet"))) < 3:
        time.sleep(0.01)
    assert proc.poll() is None, "the prediction finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list(parts.glob("part-*.parquet")))
    assert 3 <= finished < count // 20 and not (out / "fields.parquet").exists()
    again = run_script("tools/predict.py", *args, "--out", out)
    assert again.returncode == 0, again.stderr
    a, b = pd.read_parquet(tmp_path / "whole" / "fields.parquet"), pd.read_parquet(out / "fields.parquet")
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == count
    numbers = [c for c in a.columns if c.startswith(("prob_", "MCNN_"))]
    assert np.array_equal(a[numbers].to_numpy(), b[numbers].to_numpy())
    assert (a["key"] == b["key"]).all()
    assert (tmp_path / "whole" / "wells.parquet").read_bytes() == (out / "wells.parquet").read_bytes()
