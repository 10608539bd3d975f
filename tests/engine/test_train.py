"""tools/train.py end to end: learning, Caffe's snapshot names and logs, exact resume, bad input."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from tests.support import ROOT, run_script
from tests.support.tiny import TinySetup, make_setup, write_lmdb


def train(*args: str) -> subprocess.CompletedProcess[str]:
    """tools/train.py with ``args``, data read in the main process."""
    return run_script("tools/train.py", *args, "--workers", "0")


def weights(path: str | Path) -> dict[str, list[np.ndarray]]:
    return cio.net_weights(cio.read_caffemodel(path))


def test_trains_logs_and_snapshots(tiny: TinySetup) -> None:
    out = train("-solver", str(tiny.solver))
    assert out.returncode == 0, out.stderr
    log = out.stderr
    # glog lines that Caffe's parse_log.py understands.
    assert re.search(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ solver\.cpp:\d+\] Solving M-CNN$", log, re.M)
    losses = [float(v) for v in re.findall(r"Iteration \d+ \(.*\), loss = ([\d.eE+-]+)", log)]
    assert len(losses) >= 5 and losses[-1] < 0.5 * losses[0]
    assert re.search(r"Train net output #0: loss = [\d.eE+-]+ \(\* 1 = [\d.eE+-]+ loss\)", log)
    assert re.search(r"Iteration \d+, lr = 0\.1$", log, re.M)
    test_acc = [float(v) for v in re.findall(r"Test net output #0: accuracy = ([\d.eE+-]+)", log)]
    assert test_acc[-1] >= 0.9 and "Optimization Done." in log
    # 48 images / batch 8 = 6 iterations per epoch; 4 epochs; snapshots every 2 epochs.
    names = sorted(p.name for p in (tiny.root / "snaps").iterdir())
    assert names == ["tiny_iter_12.caffemodel", "tiny_iter_12.solverstate",  # the model card: the final one only
                     "tiny_iter_24.caffemodel", "tiny_iter_24.card.json", "tiny_iter_24.solverstate"]
    state = cio.read_solverstate(tiny.root / "snaps" / "tiny_iter_24.solverstate")
    assert state.iter == 24 and state.learned_net.endswith("tiny_iter_24.caffemodel")
    assert len(state.history) == 2 * 15  # weights and biases: 12 pathway convs, the fusion conv, 2 FC layers
    model = cio.read_caffemodel(tiny.root / "snaps" / "tiny_iter_24.caffemodel")
    assert [layer.type for layer in model.layer][:2] == ["Data", "Convolution"]


def test_resume_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    full = make_setup(tmp_path / "full", dropout=0.5)
    assert train("-solver", str(full.solver)).returncode == 0
    part = make_setup(tmp_path / "part", dropout=0.5)
    first = train("-solver", str(part.solver), "-iterations", "12")
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "part" / "snaps" / "tiny_iter_24.caffemodel").exists()
    second = train("-solver", str(part.solver), "-snapshot", f"{part.snapshot_prefix}_iter_12.solverstate")
    assert second.returncode == 0, second.stderr
    assert "Restoring previous solver status" in second.stderr
    a, b = weights(f"{full.snapshot_prefix}_iter_24.caffemodel"), weights(f"{part.snapshot_prefix}_iter_24.caffemodel")
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)


def test_fine_tune_from_weights(tiny: TinySetup, tmp_path: Path) -> None:
    assert train("-solver", str(tiny.solver), "-iterations", "6").returncode == 0
    other = make_setup(tmp_path / "other", max_epochs=1)
    out = train("-solver", str(other.solver), "-weights", f"{tiny.snapshot_prefix}_iter_6.caffemodel")
    assert out.returncode == 0, out.stderr
    assert "Copied weights from" in out.stderr
    both = train("-solver", str(other.solver), "-weights", "a.caffemodel", "-snapshot", "b.solverstate")
    assert both.returncode == 2 and "not both" in both.stderr


def test_nan_loss_stops_and_keeps_the_last_good_snapshot(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "nan", base_lr=1e6, snapshot_epochs=1, max_epochs=4)
    out = train("-solver", str(setup.solver))
    assert out.returncode == 2
    assert "training diverged" in out.stderr and out.stderr.strip().splitlines()[-1].startswith("train: error:")
    written = sorted((tmp_path / "nan" / "snaps").glob("*.caffemodel"))
    for path in written:  # every snapshot on disk holds finite weights
        assert all(np.isfinite(a).all() for arrays in weights(path).values() for a in arrays)


def test_sigint_snapshots_then_stops(tmp_path: Path) -> None:
    setup = make_setup(tmp_path / "sig", max_epochs=200, snapshot_epochs=0)
    # run_script waits for the end; this test must signal the running process, hence Popen.
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "train.py"), "-solver", str(setup.solver),
                             "--workers", "0"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.time() + 60
    for line in proc.stderr:
        if "Iteration 4," in line or time.time() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert "Optimization stopped early." in rest
    snaps = list((tmp_path / "sig" / "snaps").glob("*.caffemodel"))
    assert len(snaps) == 1
    iteration = int(re.search(r"_iter_(\d+)", snaps[0].name).group(1))
    assert 4 <= iteration < 1200


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_lmdb", "does not exist (no data.mdb)"),
        ("missing_net", "solver net"),
        ("shape_mismatch", "differs from the first record's"),
        ("test_shape", "TEST layer 'data' gives 2x64x64 inputs from"),
        ("label_range", "label 7 is outside 0..2"),
        ("unknown_layer", "layer type 'Frobnicate' is not supported"),
        ("deploy_net", "an Input layer has no data to train on"),
    ],
)
def test_bad_input_fails_with_one_line(case: str, message: str, tmp_path: Path) -> None:
    setup = make_setup(tmp_path / case)
    solver = cio.read_solver(setup.solver)
    net = cio.read_net(setup.train_val)
    if case == "missing_lmdb":
        net.layer[0].data_param.source = str(tmp_path / "nowhere_lmdb")
    elif case == "missing_net":
        solver.net = str(tmp_path / "missing.prototxt")
    elif case == "shape_mismatch":
        from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
        path = tmp_path / "mixed_lmdb"
        with LmdbWriter(path) as writer:
            writer.put(record_key(0, "a"), array_to_datum(np.zeros((2, 32, 32), np.uint8), 0))
            writer.put(record_key(1, "b"), array_to_datum(np.zeros((2, 30, 32), np.uint8), 1))
        net.layer[0].data_param.source = str(path)
    elif case == "test_shape":  # would otherwise fail at fc1, whose weights the test net shares
        from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
        path = tmp_path / "other_size_lmdb"
        with LmdbWriter(path) as writer:
            for i in range(4):
                writer.put(record_key(i, "a"), array_to_datum(np.zeros((2, 64, 64), np.uint8), i % 3))
        net.layer[1].data_param.source = str(path)
    elif case == "label_range":
        net.layer[0].data_param.source = str(write_lmdb(tmp_path / "bad_labels_lmdb", 8, 0, [7] * 8))
    elif case == "unknown_layer":
        net.layer.add(name="odd", type="Frobnicate", bottom=["fc2"], top=["odd"])
    elif case == "deploy_net":
        solver.net = str(setup.deploy)
    cio.write_prototxt(setup.train_val, net)
    cio.write_prototxt(setup.solver, solver)
    out = train("-solver", str(setup.solver))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert lines[-1].startswith("train: error:") and message in lines[-1], out.stderr[-2000:]
    assert not any(line.startswith("Traceback") for line in lines)


def test_engine_caffe_without_caffe_is_a_clear_error(tiny: TinySetup) -> None:
    out = run_script("tools/train.py", "-solver", str(tiny.solver), "--engine", "caffe", env={"PATH": "/nonexistent"})
    assert out.returncode == 2 and "needs the `caffe` binary on PATH" in out.stderr


def test_solver_types_train(tmp_path: Path) -> None:
    for kind in ("Nesterov", "Adam", "RMSProp", "AdaGrad", "AdaDelta"):
        lr = {"Adam": 0.001, "AdaDelta": 1.0, "RMSProp": 0.001}.get(kind, 0.05)
        setup = make_setup(tmp_path / kind, solver_type=kind, base_lr=lr, max_epochs=2, iter_size=2)
        out = train("-solver", str(setup.solver))
        assert out.returncode == 0, out.stderr
        state = cio.read_solverstate(f"{setup.snapshot_prefix}_iter_6.solverstate")
        assert len(state.history) == 30 * (2 if kind in ("Adam", "AdaDelta") else 1)
        assert cio.read_solver(setup.solver).iter_size == 2 and pb.SolverParameter().type == "SGD"
