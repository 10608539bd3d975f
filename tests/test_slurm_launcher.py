"""The job-array launcher (mcnn.cluster): a reproduction's splits as submitit tasks, merged as in one process.

Slurm is not installed here: the array runs through submitit's local executor (the same tasks,
as local processes), and the Slurm executor is built (with a stand-in ``srun`` on PATH, which is
how submitit detects Slurm) and its parameters read back, without submitting anything.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mcnn.cli import run
from mcnn.cluster import (
    DEFAULT_TIME_MIN,
    LaunchOptions,
    LaunchResult,
    SplitTask,
    launch,
    make_executor,
    run_tasks,
)
from mcnn.errors import ConfigError
from mcnn.reproduce import ReproduceOptions
from tests.support import ROOT
from tests.support.lookalikes import lookalike
from tests.support.prepared import run_prepare
from tests.support.scripts import load_script

#: A two-scale M-CNN small enough that a split trains and evaluates in about a second.
NET = {"scales": (4, 8), "pathway_widths": (2, 2), "fusion_width": 8, "fusion_pool": 0, "fc_width": 8}
NET_FLAGS = ["--scales", "4,8", "--widths", "2,2", "--fusion-width", "8", "--fusion-pool", "0", "--fc-width", "8"]
SPLITS = ("repeat_000", "repeat_001")

#: The tests that run or build submitit executors need the 'cluster' extra (pyproject's test extra lists it too).
needs_submitit = pytest.mark.skipif(
    importlib.util.find_spec("submitit") is None,
    reason="submitit (the 'cluster' extra) is not installed: pip install -e '.[cluster]'")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BBBC013's look-alike prepared once: 2 repeats of 32 x 32 fields."""
    out = tmp_path_factory.mktemp("prepared") / "bbbc013"
    run_prepare("bbbc013", lookalike("bbbc013"), out, resize=(32, 32))
    return out


def options(data: Path, out: Path, **kw: object) -> ReproduceOptions:
    """The tiny 2-repeat reproduction of ``data`` into ``out`` (no dose-response: results.csv does not hold it)."""
    base: dict[str, object] = {"dataset": "bbbc013", "raw": None, "data": data, "out": out, "repeats": 2,
                               "epochs": 1, "batch": 8, "workers": 0, "quiet": True, "net_options": NET,
                               "dose": False, "gpu": None}
    return ReproduceOptions(**{**base, **kw})  # type: ignore[arg-type]


def rows(run_dir: Path) -> list[dict[str, str]]:
    """results.csv without the wall time (the one column no two runs share)."""
    with open(run_dir / "results.csv", newline="") as handle:
        return [{k: v for k, v in r.items() if k != "wall_time_h"} for r in csv.DictReader(handle)]


def tool_main(argv: list[str]) -> int:
    """tools/reproduce.py in this process: its parser, main and the one-line error handling."""
    tool = load_script("tools/reproduce.py", "reproduce_tool")
    return run("reproduce", lambda: tool.main(tool.get_args_parser().parse_args(argv)))


@needs_submitit
def test_a_local_array_gives_the_in_process_results_and_a_rerun_submits_nothing(prepared: Path,
                                                                                  tmp_path: Path) -> None:
    alone = tmp_path / "alone"
    assert launch(options(prepared, alone), LaunchOptions(), log=lambda m: None).summary is not None
    run_dir = tmp_path / "array"
    messages: list[str] = []
    result = launch(options(prepared, run_dir), LaunchOptions(launcher="local"), log=messages.append)
    assert (result.submitted, result.failed, len(result.job_ids)) == (list(SPLITS), [], 2)
    assert messages[0] == "bbbc013: 2 splits, 2 to run as local tasks (mcnn, torch)"
    assert sorted(m.split(": task ")[0] for m in messages if ": task " in m) == list(SPLITS)
    assert rows(run_dir) == rows(alone) and rows(alone)[0]["splits_done"] == "2"
    for split in SPLITS:  # each task trained and evaluated its split as the single process did
        a, b = alone / "runs" / "mcnn" / split, run_dir / "runs" / "mcnn" / split
        assert (a / "predictions.csv").read_bytes() == (b / "predictions.csv").read_bytes()
        ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
        assert {k: v for k, v in ma.items() if k != "seconds"} == {k: v for k, v in mb.items() if k != "seconds"}
    assert (run_dir / "kernel_maps_mcnn.png").is_file()
    # the task logs are in the run's slurm folder; all done, a re-run submits nothing and merges the same
    logs = sorted((run_dir / "slurm").glob("*_log.err"))
    assert len(logs) == 2 and all("done in" in p.read_text() for p in logs)
    messages.clear()
    again = launch(options(prepared, run_dir), LaunchOptions(launcher="local"), log=messages.append)
    assert again.submitted == [] and sorted((run_dir / "slurm").glob("*_log.err")) == logs
    assert messages[0] == "bbbc013: 2 splits, 0 to run as local tasks (mcnn, torch)"
    assert rows(run_dir) == rows(alone)
    merged = launch(options(prepared, run_dir), LaunchOptions(summarize_only=True), log=lambda m: None)
    assert merged.summary is not None and merged.summary["row"]["splits_done"] == 2  # type: ignore[index]


@needs_submitit
def test_failed_tasks_are_named_with_their_log_and_parallelism_is_kept(tmp_path: Path) -> None:
    import functools

    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "logs", cluster="local")
    executor.update_parameters(timeout_min=2)
    tasks = [("bad", functools.partial(int, "x")), ("good", functools.partial(int, "7"))]
    messages: list[str] = []
    failed, ids = run_tasks(executor, tasks, LaunchOptions(launcher="local", array_parallelism=1), messages.append)
    ((name, reason, log),) = failed
    assert (name, reason) == ("bad", "ValueError: invalid literal for int() with base 10: 'x'")
    assert log.parent == (tmp_path / "logs").absolute() and "ValueError" in log.read_text()
    assert [m.split(" (")[0] for m in messages] == [f"bad: task {ids[0]} failed", f"good: task {ids[1]} finished"]
    assert [m.split(" (")[1] for m in messages] == ["1/2)", "2/2)"]
    # one at a time: the second job started after the first had ended
    first_end = (tmp_path / "logs" / f"{ids[0]}_0_result.pkl").stat().st_mtime
    assert (tmp_path / "logs" / f"{ids[1]}_submitted.pkl").stat().st_mtime >= first_end


@needs_submitit
def test_the_slurm_executor_gets_the_flags(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "srun"  # submitit looks for srun on PATH to tell a Slurm cluster
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    opts = options(prepared, tmp_path / "run", workers=3)
    slurm = LaunchOptions(launcher="slurm", partition="gpu", gpus_per_task=1, array_parallelism=8, time_min=90,
                          mem_gb=32, gpu="0")
    slurm.validate(opts)
    executor = make_executor(opts, slurm)
    setup = [f"export PYTHONPATH={ROOT}${{PYTHONPATH:+:$PYTHONPATH}}"]
    assert executor.cluster == "slurm" and Path(executor.folder) == (tmp_path / "run" / "slurm").resolve()
    assert executor.parameters == {"job_name": "mcnn-bbbc013-mcnn", "time": 90, "partition": "gpu",
                                   "array_parallelism": 8, "gpus_per_task": 1, "setup": setup, "cpus_per_task": 4,
                                   "mem": "32GB"}
    local = make_executor(opts, LaunchOptions(launcher="local", folder=tmp_path / "logs"))
    assert local.cluster == "local" and Path(local.folder) == (tmp_path / "logs").resolve()
    assert local.parameters == {"name": "mcnn-bbbc013-mcnn", "timeout_min": DEFAULT_TIME_MIN, "gpus_per_node": 0,
                                "setup": setup}
    assert not list((tmp_path / "run").glob("slurm/*"))  # built, nothing submitted
    # a task travels as a pickle; at its time limit it requeues itself, the same split
    task = SplitTask(opts, "auto", "repeat_001")
    assert pickle.loads(pickle.dumps(task)) == task
    requeued = task.checkpoint()
    assert requeued.function == task and requeued.args == ()


@pytest.mark.parametrize(("launch_kw", "option_kw", "pattern"), [
    ({"partition": "gpu"}, {}, r"^--partition only applies with --launcher slurm$"),
    ({"array_parallelism": 4}, {}, r"^--array-parallelism only applies with --launcher slurm or local$"),
    ({"no_wait": True}, {}, r"^--no-wait only applies with --launcher slurm$"),
    ({"launcher": "local", "mem_gb": 8.0}, {}, r"^--mem-gb only applies with --launcher slurm$"),
    ({"launcher": "local", "no_wait": True}, {}, r"^--no-wait only applies with --launcher slurm$"),
    ({"launcher": "slurm", "array_parallelism": 0}, {}, r"^--array-parallelism 0: need at least 1$"),
    ({"launcher": "local", "time_min": 0}, {}, r"^--time 0: need at least 1$"),
    ({"launcher": "slurm", "mem_gb": 0.0}, {}, r"^--mem-gb 0.0: need a positive number of GB$"),
    ({"launcher": "local"}, {"shard": (0, 2)}, r"^--shard and --launcher exclude each other: "),
    ({"launcher": "local", "gpu": "0"}, {}, r"^--gpu 0: each task sees 0 GPU\(s\) \(--gpus-per-task 0\)"),
    pytest.param({"launcher": "slurm"}, {}, r"^--launcher slurm: Slurm's srun is not on PATH here",
                 marks=needs_submitit),
    ({"launcher": "local", "summarize_only": True}, {"force": True}, r"^--summarize-only and --force exclude"),
    ({"summarize_only": True}, {"data": None, "raw": Path("raw")}, r"/data: no prepared dataset yet; run the"),
])
def test_bad_launch_options_stop_before_anything_is_written(
        prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launch_kw: dict[str, object],
        option_kw: dict[str, object], pattern: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    kw = dict(launch_kw)
    wait = not kw.pop("no_wait", False)
    with pytest.raises(ConfigError, match=pattern):
        opts = replace(options(prepared, tmp_path / "out"), **option_kw)  # type: ignore[arg-type]
        launch(opts, LaunchOptions(wait=wait, **kw))  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_the_tool_hands_its_flags_to_the_launcher(prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[tuple[ReproduceOptions, LaunchOptions]] = []

    def submitted(options: ReproduceOptions, cluster: LaunchOptions, log: object) -> LaunchResult:
        seen.append((options, cluster))
        return LaunchResult(None, ["repeat_000", "repeat_001"], job_ids=["4711"])

    monkeypatch.setattr("mcnn.cluster.launch", submitted)
    out = tmp_path / "out"
    assert tool_main(["bbbc013", "--data", str(prepared), "--out", str(out), "--launcher", "slurm", "--partition",
                      "gpu", "--gpus-per-task", "2", "--array-parallelism", "4", "--time", "60", "--mem-gb", "8",
                      "--cpus-per-task", "6", "--slurm-folder", str(tmp_path / "logs"), "--no-wait"]) == 0
    ((options_seen, cluster),) = seen
    assert cluster == LaunchOptions(launcher="slurm", partition="gpu", gpus_per_task=2, array_parallelism=4,
                                    time_min=60, mem_gb=8.0, cpus_per_task=6, folder=tmp_path / "logs", wait=False,
                                    gpu="auto")
    assert (options_seen.out, options_seen.data, options_seen.shard) == (out, prepared, (0, 1))
    assert capsys.readouterr().out.startswith(
        "submitted 2 task(s) as Slurm job 4711; when they have finished, run the same command with --summarize-only")
    # a failed task: one line naming its split and log, the merge of the rest, exit status 1
    row = {"dataset": "bbbc013", "architecture": "mcnn", "statistic": "median", "ours": 50.0, "ours_sd": 0.0,
           "published": 100, "published_sd": 0, "splits_done": 1, "splits_planned": 2}
    failed = LaunchResult({"row": row}, ["repeat_001"], [("repeat_001", "ValueError: x", tmp_path / "7_0_log.err")])
    monkeypatch.setattr("mcnn.cluster.launch", lambda options, cluster, log: failed)
    assert tool_main(["bbbc013", "--data", str(prepared), "--out", str(out), "--launcher", "local"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"reproduce: error: repeat_001: task failed: ValueError: x (log {tmp_path / '7_0_log.err'})"]
    assert "1/2 splits" in captured.out


def test_without_submitit_the_launcher_names_the_extra(prepared: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit -> ImportError
    out = tmp_path / "out"
    assert tool_main(["bbbc013", "--data", str(prepared), "--out", str(out), "--launcher", "slurm",
                      "--partition", "gpu"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "reproduce: error: --launcher slurm needs the 'cluster' extra: pip install 'mcnn[cluster]'"]
    assert not out.exists()
