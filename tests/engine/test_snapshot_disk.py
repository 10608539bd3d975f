"""Snapshots and the disk: room for one pair is checked before the first iteration, and a solverstate
that cannot be written takes its caffemodel with it (the last complete pair stays)."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from mcnn.cli import run
from mcnn.engine import snapshots
from mcnn.engine.trainer import Trainer, TrainOptions
from tests.support.tiny import make_setup

Usage = namedtuple("Usage", "total used free")


def test_too_little_room_for_one_snapshot_stops_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    setup = make_setup(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(1 << 30, (1 << 30) - 4096, 4096))
    status = run("train", lambda: Trainer(setup.solver, TrainOptions(progress=False)).solve() and 0)
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(lines) == 1
    assert "one snapshot (caffemodel + solverstate) needs about" in lines[0] and "0.0 MB are free" in lines[0]
    assert not (tmp_path / "snaps").exists() or not any((tmp_path / "snaps").iterdir())


def test_failed_solverstate_removes_its_caffemodel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    setup = make_setup(tmp_path, max_epochs=1, snapshot_epochs=0.5)
    trainer = Trainer(setup.solver, TrainOptions(progress=False, iterations=3))
    trainer.step(3)
    first = trainer.snapshot()
    assert first is not None and all(p.is_file() for p in first)

    def full_disk(path: Path, state: object) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(snapshots.cio, "write_solverstate", full_disk)
    trainer.step(1)
    with pytest.raises(OSError, match="No space left"):
        trainer.snapshot()
    model, state = trainer.snapshot_paths()
    assert not model.exists() and not state.exists()  # no weights without their history
    assert all(p.is_file() for p in first)           # the last complete pair is kept
