"""bench/vs_caffe.py: a --quick run writes every row and its goals; the log and goal rules it computes with.

The Caffe rows use the real Caffe build when there is one (``make caffe``) and say why they are
skipped otherwise; the OpenCV row always runs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from mcnn.errors import ConfigError
from tests.support.scripts import load_script


def _load() -> ModuleType:
    return load_script("bench/vs_caffe.py", "vs_caffe_bench")


vs = _load()
cb = importlib.import_module("caffe_binary")  # bench/caffe_binary.py, beside vs_caffe.py (now on the path)

ENGINE_LOG = """I1201 15:31:50.467039 13705 solver.cpp:289] Solving M-CNN
I1201 15:31:50.594071 13705 solver.cpp:243] Iteration 0 (0 iter/s, 0.08997s/1 iters), loss = 2.314
I1201 15:31:50.594071 13705 solver.cpp:258]     Train net output #0: loss = 2.314 (* 1 = 2.314 loss)
I1201 15:31:50.594374 13705 sgd_solver.cpp:112] Iteration 0, lr = 0.001
I1201 15:31:51.094071 13705 solver.cpp:243] Iteration 1 (2 iter/s, 0.5s/1 iters), loss = 2.5
I1201 15:31:51.094071 13705 solver.cpp:258]     Train net output #0: loss = 2.6 (* 1 = 2.6 loss)
I1201 15:31:52.094071 13705 solver.cpp:243] Iteration 2 (1 iter/s, 1s/1 iters), loss = 2.25
I1201 15:31:52.094071 13705 solver.cpp:258]     Train net output #0: loss = 2.25 (* 1 = 2.25 loss)
I1201 15:31:52.784073 13705 solver.cpp:310] Iteration 3, loss = 2.24936
"""
# glog 0.6 and later write the year (Caffe built against it); a run over midnight at the end of February
CAFFE_LOG = """I20240228 23:59:59.000000 13772 solver.cpp:289] Solving M-CNN
I20240228 23:59:59.500000 13772 solver.cpp:239] Iteration 0 (-4.5e-43 iter/s, 0.345s/1 iters), loss = 2.4
I20240228 23:59:59.500000 13772 solver.cpp:258]     Train net output #0: loss = 2.4 (* 1 = 2.4 loss)
I20240229 00:00:02.500000 13772 solver.cpp:239] Iteration 1 (0.33 iter/s, 3s/1 iters), loss = 2.3
I20240229 00:00:02.500000 13772 solver.cpp:258]     Train net output #0: loss = 2.3 (* 1 = 2.3 loss)
"""


def test_the_logs_give_seconds_per_iteration_after_the_warm_up() -> None:
    assert cb.log_figures(ENGINE_LOG, 3) == {"log_s_per_iter": pytest.approx(0.75), "final_loss": 2.25}
    assert cb.log_figures(CAFFE_LOG, 2) == {"log_s_per_iter": pytest.approx(3.0), "final_loss": 2.3}
    with pytest.raises(SystemExit, match=r"no outputs of iteration 3"):
        cb.log_figures(ENGINE_LOG, 4)  # a run cut short


def test_goals_are_met_or_not_at_full_size_only() -> None:
    assert vs.goal_status(3.2, 3.0, quick=False) == "met"
    assert vs.goal_status(2.07, 3.0, quick=False) == "not met"
    assert vs.goal_status(None, 3.0, quick=False) == "not measured"
    assert vs.goal_status(9.0, 3.0, quick=True) == "n/a: quick sizes"
    rows = [{"case": "train_bbbc021", "log_ratio": 2.1, "images_per_s": 0.5}, {"case": "evaluate", "ratio": 0.54}]
    vs.add_goals(rows, quick=False)
    assert [(g["target"], g["status"]) for g in rows[0]["goals"]] == [(3.0, "not met"), (0.48, "met")]
    assert [(g["figure"], g["value"], g["status"]) for g in rows[1]["goals"]] == [("ratio", 0.54, "not met")]


def test_bad_flags_are_refused_before_any_work(tmp_path: Path) -> None:
    parse = vs.get_args_parser().parse_args
    with pytest.raises(ConfigError, match="unknown case 'train'"):
        vs.check_args(parse(["--cases", "train", "--out", str(tmp_path)]))
    with pytest.raises(ConfigError, match="--repeat 0: must be at least 1"):
        vs.check_args(parse(["--repeat", "0", "--out", str(tmp_path)]))
    with pytest.raises(ConfigError, match="no executable bin/caffe"):
        cb.caffe_prefix(tmp_path)


def _run(wall: float, per_iter: float, rss: float) -> dict[str, float]:
    return {"wall_s": wall, "max_rss_mb": rss, "tree_rss_mb": rss, "tree_anon_mb": rss, "log_s_per_iter": per_iter,
            "final_loss": 2.4}


def test_without_caffe_its_rows_say_why_and_the_engine_still_counts(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCNN_CAFFE_PREFIX", str(tmp_path / "nowhere"))
    _, skip, version = cb.caffe_prefix(None)
    assert skip == f"no Caffe build at {tmp_path / 'nowhere'} (run `make caffe`, or give --caffe PREFIX)"
    assert version == ""
    case = vs.FULL["train_bbbc021"]
    alone = vs.training_result("train_bbbc021", case, {"engine": [_run(12.0, 2.5, 1500), _run(11.0, 2.0, 1600)]}, skip)
    assert alone["status"] == f"skipped: {skip}" and alone["reference"] is None and alone["ratio"] is None
    engine = alone["engine"]
    assert (engine["wall_s"], engine["log_s_per_iter"], engine["max_rss_mb"]) == (11.0, 2.0, 1600)  # best, best, worst
    assert engine["s_per_iter"] == 11.0 / 4 and alone["images_per_s"] == 0.5
    paired = vs.training_result("train_bbbc021", case, {"engine": [_run(11.0, 2.0, 1600)],
                                                        "caffe": [_run(40.0, 6.3, 7700)]}, "")
    assert (paired["ratio"], paired["log_ratio"]) == (pytest.approx(40 / 11), pytest.approx(3.15))
    rows = [alone, paired]
    vs.add_goals(rows, quick=False)
    assert [g["status"] for g in alone["goals"]] == ["not measured", "met"]
    assert [g["status"] for g in paired["goals"]] == ["met", "met"]
    text = vs.markdown({"when": "now", "machine": {"host": "CPU x", "torch": "2"}, "opencv": "4", "threads": 2,
                        "repeat": 2, "quick": False, "caffe": f"skipped: {skip}", "rows": rows})
    assert f"| caffe train: skipped: {skip} | — |" in text
    assert "| 2 s/iter after the warm-up (0.5 img/s); whole process 11.00 s, peak RSS 1.56 GB |" in text
    assert "| not measured; met |" in text and "| 3.64x whole process; 3.15x per iteration |" in text


@pytest.mark.slow
def test_quick_run_writes_every_case_and_goal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = vs.get_args_parser().parse_args(["--quick", "--repeat", "1", "--threads", "1",
                                            "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")])
    assert vs.main(args) == 0
    [json_path], [md_path] = sorted((tmp_path / "out").glob("vs_caffe-*.json")), sorted((tmp_path / "out").glob("*.md"))
    assert json_path.stem == md_path.stem
    record = json.loads(json_path.read_text())
    assert record["quick"] is True and record["threads"] == 1 and record["machine"]["threads"] >= 1
    _, skip, _ = cb.caffe_prefix(None)
    rows = {row["case"]: row for row in record["rows"]}
    assert list(rows) == ["train_demo", "train_bbbc021", "evaluate"]
    for name, inputs, iterations in (("train_demo", "3x128x128", 3), ("train_bbbc021", "3x128x160", 2)):
        row, engine = rows[name], rows[name]["engine"]
        assert (row["input"], row["iterations"]) == (inputs, iterations)
        assert len(engine["runs"]) == 1 and engine["wall_s"] > engine["log_s_per_iter"] > 0
        assert engine["images_per_s"] == pytest.approx(row["batch"] * iterations / engine["wall_s"])
        assert engine["max_rss_mb"] > 100 and engine["final_loss"] > 0
        if skip:
            assert row["status"] == f"skipped: {skip}" and row["reference"] is None and row["ratio"] is None
            assert row["goals"][0]["status"] == "not measured"
        else:
            ref = row["reference"]
            assert row["status"] == "ok" and row["ratio"] == pytest.approx(ref["wall_s"] / engine["wall_s"])
            assert ref["log_s_per_iter"] > 0 and ref["max_rss_mb"] > 10
    evaluate = rows["evaluate"]
    assert evaluate["records"] == 8 and evaluate["status"] == "ok"
    assert evaluate["ratio"] == pytest.approx(evaluate["reference"]["wall_s"] / evaluate["engine"]["wall_s"])
    assert evaluate["agreement"]["prob_max_abs_diff"] < 1e-4 and evaluate["agreement"]["same_prediction"] == 1.0
    goals = [(row["case"], g["target"]) for row in record["rows"] for g in row["goals"]]
    assert goals == [("train_demo", 3.0), ("train_bbbc021", 3.0), ("train_bbbc021", 0.48), ("evaluate", 1.5)]
    assert {g["status"] for row in record["rows"] for g in row["goals"]} <= {"n/a: quick sizes", "not measured"}
    text = md_path.read_text()
    assert text.count("\n| ") == 4  # the header and the three rows
    for row in record["rows"]:
        assert f"| {row['work']}, {row['input']}, batch {row['batch']} |" in text
    assert ("skipped: " in text) == bool(skip) and "OpenCV script:" in text
    assert "results:" in capsys.readouterr().out
    assert not any((tmp_path / "work").iterdir())  # the fixtures are gone
