"""tools/parse_log.py: Caffe's parse_log.py tables (and a PNG) from real Caffe's log format and from ours."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from mcnn.caffe.trainlog import parse_lines, parse_log
from mcnn.demo import plot_training, training_curves
from mcnn.errors import BadInputError
from mcnn.tables import read_table
from tests.support import ROOT, run_script
from tests.support.trainlogs import short_training

FIXTURE = ROOT / "tests" / "fixtures" / "caffe_train.log"
PNG = b"\x89PNG\r\n\x1a\n"


def test_real_caffe_log_gives_caffes_tables(tmp_path: Path) -> None:
    out = run_script("tools/parse_log.py", FIXTURE, tmp_path / "out")
    assert out.returncode == 0, out.stderr
    names = [Path(line).name for line in out.stdout.split()]
    assert names == ["caffe_train.log.train", "caffe_train.log.test", "caffe_train.log.png"]
    # Rows as Caffe's script makes them: the row of iteration N is opened by its first output line, so its
    # LearningRate is the last one logged before (iteration 200 still shows 0.01); the first row takes the
    # second's; Seconds count from the 'Solving' line across the new year (Dec 31 -> Jan 1).
    assert (tmp_path / "out" / "caffe_train.log.train").read_text().splitlines() == [
        "NumIters,Seconds,LearningRate,loss",
        "0.0,0.950032,0.01,1.10214",
        "100.0,1.850027,0.01,0.75208",
        "200.0,2.750031,0.01,0.43187"]
    assert (tmp_path / "out" / "caffe_train.log.test").read_text().splitlines() == [
        "NumIters,Seconds,LearningRate,accuracy,loss",
        "0.0,0.8,0.001,0.3375,1.09861",
        "300.0,4.5,0.001,0.8625,0.388916"]
    png = (tmp_path / "out" / "caffe_train.log.png").read_bytes()
    assert png.startswith(PNG) and len(png) > 10_000
    assert parse_log(FIXTURE).smoothed == [(0, 1.10214), (100, 0.874321), (200, 0.521778), (300, 0.40342)]


def test_our_log_gives_the_same_tables_and_the_demo_curves(tmp_path: Path) -> None:
    _, log = short_training(tmp_path / "run")
    text = log.read_text()
    out = run_script("tools/parse_log.py", log, "--no-plot")  # OUT_DIR defaults to the log's folder
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "run" / "train.log.png").exists()
    train, test = read_table(f"{log}.train"), read_table(f"{log}.test")
    assert train.columns == ("NumIters", "Seconds", "LearningRate", "loss")
    assert test.columns == ("NumIters", "Seconds", "LearningRate", "accuracy", "loss")  # Caffe's (alphabetical) order
    logged = re.findall(r"Train net output #0: loss = (\S+)", text)
    assert [float(v) for v in train.column("loss")] == [float(v) for v in logged]
    assert train.column("NumIters") == ["0.0", "2.0", "4.0"] and test.column("NumIters") == ["0.0", "6.0"]
    assert [float(v) for v in test.column("accuracy")] == [float(v) for v in re.findall(
        r"Test net output #0: accuracy = (\S+)", text)]
    assert set(train.column("LearningRate")) == {"0.1"}
    seconds = [float(v) for v in train.column("Seconds")]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    losses, accuracy = training_curves(log)
    assert [i for i, _ in losses] == [0, 2, 4, 6] and losses[0][1] == float(train.column("loss")[0])
    assert accuracy == [(0, float(test.column("accuracy")[0])), (6, float(test.column("accuracy")[1]))]
    assert plot_training(log, tmp_path / "training.png").read_bytes().startswith(PNG)  # type: ignore[union-attr]
    assert plot_training(tmp_path / "none.log", tmp_path / "none.png") is None and training_curves(tmp_path) == ([], [])


STAMP = "I0301 10:00:0{s}.000000  4242 solver.cpp:1] "


def test_row_rules_and_bad_logs(tmp_path: Path) -> None:
    one_test = [STAMP.format(s=0) + "Solving x", STAMP.format(s=1) + "Iteration 0, Testing net (#0)",
                STAMP.format(s=2) + "    Test net output #0: accuracy = 0.5",
                STAMP.format(s=3) + "    Test net output #1: loss = nan (* 1 = nan loss)"]
    log = parse_lines(one_test, 2023)
    # Caffe's script drops the only row of a one-row table; it is kept here (module docstring)
    assert len(log.test) == 1 and log.train == []
    row = log.test[0]
    assert (row["NumIters"], row["Seconds"], row["accuracy"]) == (0.0, 2.0, 0.5) and math.isnan(row["loss"])
    assert math.isnan(row["LearningRate"])  # no 'lr =' line before it, no second row to take it from
    with pytest.raises(BadInputError, match=r"x\.log: no 'Solving' line"):
        parse_lines(one_test[1:], 2023, "x.log")
    with pytest.raises(BadInputError, match=r"x\.log: line 2: the 'Solving' line has no glog time stamp"):
        parse_lines(["hello", "Solving x", *one_test[1:]], 2023, "x.log")
    (tmp_path / "solving_only.log").write_text(STAMP.format(s=0) + "Solving x\n")
    out = run_script("tools/parse_log.py", tmp_path / "solving_only.log", tmp_path / "o")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "nothing to tabulate" in out.stderr
    assert not (tmp_path / "o").exists()


def test_stamps_with_the_year() -> None:
    """glog 0.6 and later write YYYYMMDD (a Caffe built on Debian 12); such a log runs into the new year."""
    lines = ["I20261231 23:59:58.500000 42 solver.cpp:289] Solving x",
             "I20261231 23:59:59.000000 42 solver.cpp:243] Iteration 0 (0 iter/s, 0.5s/1 iters), loss = 2",
             "I20261231 23:59:59.000000 42 solver.cpp:258]     Train net output #0: loss = 2 (* 1 = 2 loss)",
             "I20261231 23:59:59.000000 42 sgd_solver.cpp:112] Iteration 0, lr = 0.01",
             "I20270101 00:00:01.250000 42 solver.cpp:243] Iteration 1 (0.5 iter/s, 2.25s/1 iters), loss = 1",
             "I20270101 00:00:01.250000 42 solver.cpp:258]     Train net output #0: loss = 1 (* 1 = 1 loss)",
             "I20270101 00:00:01.250000 42 sgd_solver.cpp:112] Iteration 1, lr = 0.001"]
    log = parse_lines(lines, 1999)  # the file's year is ignored where the stamps give one
    # a row takes the rate logged before its outputs (Caffe's rule), so iteration 1 has iteration 0's
    assert [(r["NumIters"], r["Seconds"], r["LearningRate"], r["loss"]) for r in log.train] == [
        (0.0, 0.5, 0.01, 2.0), (1.0, 2.75, 0.01, 1.0)]
