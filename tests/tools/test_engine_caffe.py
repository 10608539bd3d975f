"""The --engine caffe paths, against a fake `caffe` binary and a fake pycaffe module (no real Caffe in CI).

The fakes record their calls; the fake pycaffe computes with our own engine, so these tests check what
the toolkit asks of Caffe (argv, call order, batching, device selection), not Caffe's numbers.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, run_script
from tests.support.tiny import TinySetup

FAKES = ROOT / "tests" / "fakes"


def env_with_fakes(tmp_path: Path, fail: int = 0) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{FAKES / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = f"{FAKES / 'pycaffe'}{os.pathsep}{ROOT}"
    env["FAKE_CAFFE_LOG"] = str(tmp_path / "caffe_calls.jsonl")
    env["FAKE_PYCAFFE_LOG"] = str(tmp_path / "pycaffe_calls.jsonl")
    env["FAKE_CAFFE_EXIT"] = str(fail)
    return env


def calls(path: Path) -> list[list[str]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_train_builds_the_caffe_train_argv_from_its_flags(tiny: TinySetup, tmp_path: Path) -> None:
    env = env_with_fakes(tmp_path)
    out = run_script("tools/train.py", "-solver", str(tiny.solver), "-weights", "a.caffemodel,b.caffemodel",
                     "-gpu", "0", "--engine", "caffe", env=env)
    assert out.returncode == 0, out.stderr
    assert calls(tmp_path / "caffe_calls.jsonl") == [[
        "train", "-solver", str(tiny.solver), "-weights", "a.caffemodel,b.caffemodel", "-gpu", "0",
        "-sigint_effect", "stop", "-sighup_effect", "snapshot"]]
    assert "Optimization Done." in out.stderr  # caffe's log streams through
    state = tmp_path / "s_iter_5.solverstate"
    state.write_bytes(b"")  # the fake caffe does not read it; the launcher checks that it exists
    resume = run_script("tools/train.py", "-solver", str(tiny.solver), "-snapshot", str(state),
                        env=env | {"MCNN_ENGINE": "caffe"})
    assert resume.returncode == 0, resume.stderr
    assert calls(tmp_path / "caffe_calls.jsonl")[-1][:5] == ["train", "-solver", str(tiny.solver), "-snapshot",
                                                              str(state)]


def test_train_passes_caffe_failures_on(tiny: TinySetup, tmp_path: Path) -> None:
    out = run_script("tools/train.py", "-solver", str(tiny.solver), "--engine", "caffe",
                     env=env_with_fakes(tmp_path, fail=3))
    assert out.returncode == 3 and "Check failed: fake failure" in out.stderr


def _eval_setup(tiny: TinySetup, tmp_path: Path) -> list[str]:
    from mcnn.caffe import read_net
    from tests.support.crosscheck import write_random_caffemodel

    write_random_caffemodel(read_net(tiny.deploy), tmp_path / "w.caffemodel")
    (tiny.root / "labels.txt").write_text("a\nb\nc\n")
    return ["--model", str(tiny.deploy), "--weights", str(tmp_path / "w.caffemodel"), "--lmdb",
            str(tiny.root / "test_lmdb")]


def test_evaluate_calls_pycaffe_in_batches_and_writes_the_engine_rows(tiny: TinySetup, tmp_path: Path) -> None:
    common = _eval_setup(tiny, tmp_path)
    env = env_with_fakes(tmp_path)
    caffe = run_script("tools/evaluate.py", *common, "--out", str(tmp_path / "caffe"), "--engine", "caffe",
                       "--batch", "5", env=env)
    assert caffe.returncode == 0, caffe.stderr
    torch_run = run_script("tools/evaluate.py", *common, "--out", str(tmp_path / "torch"), "--engine", "torch",
                           env=env)
    assert torch_run.returncode == 0, torch_run.stderr
    with open(tmp_path / "caffe" / "predictions.csv") as a, open(tmp_path / "torch" / "predictions.csv") as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert len(rows_a) == 12
    for ra, rb in zip(rows_a, rows_b, strict=True):
        assert ra["predicted_class"] == rb["predicted_class"]
        assert float(ra["prob_a"]) == pytest.approx(float(rb["prob_a"]), abs=1e-5)
    log = calls(tmp_path / "pycaffe_calls.jsonl")
    assert log[0] == ["set_mode_cpu"]
    assert log[1] == ["Net", str(tiny.deploy), str(tmp_path / "w.caffemodel"), "1"]  # caffe.TEST
    assert [c[1] for c in log if c[0] == "forward"] == ["(5, 2, 32, 32)", "(5, 2, 32, 32)", "(2, 2, 32, 32)"]


def test_predict_selects_the_gpu_in_pycaffe_before_the_net(tiny: TinySetup, tmp_path: Path) -> None:
    common = _eval_setup(tiny, tmp_path)
    out = run_script("tools/predict.py", *common, "--out", str(tmp_path / "p"), "--engine", "caffe", "--gpu", "1",
                     env=env_with_fakes(tmp_path))
    assert out.returncode == 0, out.stderr
    assert calls(tmp_path / "pycaffe_calls.jsonl")[:2] == [["set_device", "1"], ["set_mode_gpu"]]


@pytest.mark.slow
def test_reproduce_with_caffe_calls_caffe_train_per_split_and_pycaffe_nets(tmp_path: Path) -> None:
    env = env_with_fakes(tmp_path)
    raw = tmp_path / "raw"
    assert run_script("data_prep/synthesize.py", "bbbc016", "--out", str(raw), env=env).returncode == 0
    args = ["bbbc016", "--raw", str(raw), "--out", str(tmp_path / "run"), "--repeats", "2", "--epochs", "2",
            "--engine", "caffe", "--gpu", "cpu", "--fusion-pool", "0", "--widths", "4,4,4,4,4,4,4", "--quiet"]
    out = run_script("tools/reproduce.py", *args, env=env)
    assert out.returncode == 0, out.stderr
    trains = calls(tmp_path / "caffe_calls.jsonl")
    assert [c[:2] for c in trains] == [["train", "-solver"]] * 2
    assert trains[0][2].endswith("runs/mcnn/repeat_000/solver.prototxt") and "-gpu" not in trains[0]
    assert sum(c[0] == "Net" for c in calls(tmp_path / "pycaffe_calls.jsonl")) >= 2
    with open(tmp_path / "run" / "results.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["engine"] == "caffe" and row["splits_done"] == "2"
    # real Caffe's weights get their model card too (mcnn.caffe.modelcard), metrics from pycaffe's evaluation
    (card,) = (tmp_path / "run" / "runs" / "mcnn" / "repeat_000" / "snapshots").glob("*.card.json")
    card_data = json.loads(card.read_text())
    assert (card_data["training"]["engine"], card_data["metrics"]["source"]) == ("caffe", "evaluation")
    failing = run_script("tools/reproduce.py", *args[:4], str(tmp_path / "run2"), *args[5:],
                         env=env_with_fakes(tmp_path, 1))
    assert failing.returncode == 2 and "caffe train failed" in failing.stderr.strip().splitlines()[-1]


def test_caffe_argv_keeps_caffes_defaults_unless_given() -> None:
    from mcnn.training import TrainingRun, caffe_argv

    # the reproduction harness's call: resume and GPU only, Caffe's own signal defaults
    assert caffe_argv(TrainingRun(solver="s.prototxt", snapshot="x_iter_4.solverstate", gpu="1")) == [
        "caffe", "train", "-solver", "s.prototxt", "-snapshot", "x_iter_4.solverstate", "-gpu", "1"]
    assert caffe_argv(TrainingRun(solver="s.prototxt", weights=("a", "b"), iterations=3, sighup_effect="stop")) == [
        "caffe", "train", "-solver", "s.prototxt", "-weights", "a,b", "-sighup_effect", "stop", "-iterations", "3"]


def test_train_rejects_an_unknown_engine() -> None:
    from mcnn.errors import ConfigError
    from mcnn.training import TrainingRun, train

    with pytest.raises(ConfigError, match="--engine must be one of torch, caffe"):
        train(TrainingRun(solver="s.prototxt"), engine="tensorflow")
