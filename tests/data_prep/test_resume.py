"""A killed or partial conversion, re-run, ends with the same content as an uninterrupted one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest

from mcnn.errors import ConfigError
from mcnn.prep.write import KILL_AFTER_ENV
from tests.support import ROOT, run_script
from tests.support.lookalikes import lookalike
from tests.support.prepared import run_prepare

ARGS = ("--repeats", "3", "--seed", "11", "--workers", "1", "--quiet")


def _snapshot(out: Path) -> dict[str, object]:
    """Every file and LMDB under ``out`` (LMDBs as their key/value pairs); fails on leftovers."""
    snap: dict[str, object] = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.name == ".lock":  # the lock of the folder holds the pid of its last writer, not an output
            continue
        assert ".partial" not in rel and ".tmp-" not in rel, f"leftover {rel}"
        if p.is_symlink():
            snap[rel] = str(p.readlink())
        elif p.is_dir():
            if (p / "data.mdb").is_file():
                env = lmdb.open(str(p), readonly=True, lock=False)
                with env.begin() as txn:
                    snap[rel] = [(bytes(k), bytes(v)) for k, v in txn.cursor()]
                env.close()
        elif not (p.parent / "data.mdb").is_file():
            snap[rel] = p.read_bytes()
    return snap


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("reference") / "out"
    res = run_script("data_prep/prepare.py", "bbbc013", "--raw", str(lookalike("bbbc013")), "--out", str(out), *ARGS)
    assert res.returncode == 0, res.stderr
    return _snapshot(out)


def test_killed_runs_resume_to_the_same_content(tmp_path: Path, reference: dict[str, object]) -> None:
    out = tmp_path / "out"
    argv = ("bbbc013", "--raw", str(lookalike("bbbc013")), "--out", str(out), *ARGS)
    # Records written in one run: cache 32, 3 x (28 + 4) split records, 72 dose records = 200.
    # killed while decoding into the cache
    first = run_script("data_prep/prepare.py", *argv, extra_env={KILL_AFTER_ENV: "20"})
    assert first.returncode == -9
    assert not (out / "splits").exists() and (out / ".cache" / ".fields_lmdb.partial").is_dir()
    # killed in repeat_001's training LMDB
    second = run_script("data_prep/prepare.py", *argv, extra_env={KILL_AFTER_ENV: "90"})
    assert second.returncode == -9
    assert (out / "splits" / "repeat_000" / "split.json").is_file()
    assert (out / "splits" / "repeat_001" / ".train_lmdb.partial").is_dir()
    last = run_script("data_prep/prepare.py", *argv)
    assert last.returncode == 0, last.stderr
    assert "already complete" in last.stderr
    assert _snapshot(out) == reference


def test_partial_state_is_rebuilt(tmp_path: Path, reference: dict[str, object]) -> None:
    out = tmp_path / "out"
    run_prepare("bbbc013", lookalike("bbbc013"), out, repeats=3, seed=11)
    assert _snapshot(out) == reference  # in-process run == script run
    shutil.rmtree(out / "splits" / "repeat_001" / "test_lmdb")
    (out / "splits" / "repeat_001" / "split.json").unlink()
    shutil.rmtree(out / "splits" / "repeat_002" / "train_lmdb")
    (out / "splits" / "repeat_002" / ".train_lmdb.partial").mkdir()  # what a crash leaves
    (out / "splits" / "repeat_002" / ".train_index.csv.tmp-99999").write_text("half a file")
    (out / "splits" / "repeat_000" / ".split.json.tmp-99999").write_text("{")
    (out / ".dataset.json.tmp-99999").write_text("{")
    shutil.rmtree(out / "dose_lmdb")
    result = run_prepare("bbbc013", lookalike("bbbc013"), out, repeats=3, seed=11)
    assert sorted(result.built) == ["dose", "repeat_001/test", "repeat_002/train"]
    assert "repeat_000" in result.skipped
    assert _snapshot(out) == reference
    again = run_prepare("bbbc013", lookalike("bbbc013"), out, repeats=3, seed=11)
    assert again.built == []


def test_other_options_need_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_prepare("bbbc016", lookalike("bbbc016"), out, repeats=1, seed=1)
    with pytest.raises(ConfigError, match=r"prepared earlier with other options \(seed: 1 -> 2\); use another --out"):
        run_prepare("bbbc016", lookalike("bbbc016"), out, repeats=1, seed=2)
    result = run_prepare("bbbc016", lookalike("bbbc016"), out, repeats=1, seed=2, force=True)
    assert "repeat_000/train" in result.built
    more = run_prepare("bbbc016", lookalike("bbbc016"), out, repeats=2, seed=2)  # more repeats: only the new one
    assert sorted(more.built) == ["repeat_001/test", "repeat_001/train"]


def test_a_second_prepare_into_the_same_out_stops_at_once(tmp_path: Path, reference: dict[str, object]) -> None:
    out = tmp_path / "out"
    argv = [sys.executable, str(ROOT / "data_prep" / "prepare.py"), "bbbc013", "--raw", str(lookalike("bbbc013")),
            "--out", str(out), *ARGS]
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = out / ".lock"
    deadline = time.time() + 60
    while time.time() < deadline and not (lock.is_file() and lock.read_text().strip()):
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGSTOP)  # hold the first one mid-run, lock taken
    try:
        running = first.poll() is None
        second = subprocess.run(argv, capture_output=True, text=True)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
    assert running, "the first prepare finished before the second started"
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"prepare: error: {out}: another run (pid {first.pid}) is writing this folder; wait for it to finish or use "
        "another --out"]
    assert _snapshot(out) == reference  # the first run, undisturbed, as a lone run
