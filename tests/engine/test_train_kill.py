"""tools/train.py killed with SIGKILL mid-run: every snapshot left on disk is a complete pair, and both
the same command again and a resume from the last pair end with the weights of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from tests.support import ROOT, run_script
from tests.support.tiny import make_setup


def _weights(path: Path) -> dict[str, list[np.ndarray]]:
    return cio.net_weights(cio.read_caffemodel(path))


def _assert_same(a: Path, b: Path) -> None:
    x, y = _weights(a), _weights(b)
    assert x.keys() == y.keys()
    for name in x:
        for u, v in zip(x[name], y[name], strict=True):
            np.testing.assert_array_equal(u, v)


@pytest.mark.slow
def test_killed_training_leaves_complete_pairs_and_runs_again_to_the_same_weights(tmp_path: Path) -> None:
    # 48 images / batch 8: 6 iterations an epoch, 5 epochs, a snapshot every epoch
    kw = dict(dropout=0.5, max_epochs=5, snapshot_epochs=1)
    whole = make_setup(tmp_path / "whole", **kw)
    assert run_script("tools/train.py", "-solver", whole.solver, "--workers", "0").returncode == 0
    final = Path(f"{whole.snapshot_prefix}_iter_30.caffemodel")
    killed = make_setup(tmp_path / "killed", **kw)
    argv = [sys.executable, str(ROOT / "tools" / "train.py"), "-solver", str(killed.solver), "--workers", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    snaps = killed.root / "snaps"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(snaps.glob("*.solverstate")):
        time.sleep(0.005)
    time.sleep(random.Random(os.getpid()).uniform(0, 0.2))  # a moment somewhere after the first snapshot
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    models, states = sorted(snaps.glob("*.caffemodel")), sorted(snaps.glob("*.solverstate"))
    assert [p.stem for p in models] == [p.stem for p in states] and models  # no weights without their state
    assert not any(p.name.startswith(".") or p.suffix == ".tmp" for p in snaps.iterdir())  # no temporary files
    assert not Path(f"{killed.snapshot_prefix}_iter_30.caffemodel").exists()
    last = max(states, key=lambda p: cio.read_solverstate(p).iter)  # every state parses
    resumed = run_script("tools/train.py", "-solver", killed.solver, "-snapshot", last, "--workers", "0")
    assert resumed.returncode == 0, resumed.stderr
    _assert_same(final, Path(f"{killed.snapshot_prefix}_iter_30.caffemodel"))
    again = run_script("tools/train.py", "-solver", killed.solver, "--workers", "0")  # the same command again
    assert again.returncode == 0, again.stderr
    _assert_same(final, Path(f"{killed.snapshot_prefix}_iter_30.caffemodel"))
