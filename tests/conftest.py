"""Fixtures of the whole suite; the code behind them lives in ``tests/support``.

The suite runs on one torch thread per process (``make test`` runs two pytest workers on CI's 2
cores): nets this small gain nothing from a second thread, and two spinning threads per process on
a shared machine make their convolutions several times slower. The numbers do not depend on it.
Tests marked ``slow`` are started first, so the long end-to-end runs spread over the workers.

Every temporary file, the tests' own and those of the tools, torchrun and real Caffe's logs that
they start, lands in one folder under pytest's base folder, which is removed when the session
ends: a suite run leaves nothing behind in the system's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.support import ROOT
from tests.support.tiny import TinySetup, make_setup

os.environ["OMP_NUM_THREADS"] = "1"  # the tools the tests run as subprocesses inherit it
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def private_tempdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's temporary folder: ``TMPDIR`` for the subprocesses, ``tempfile``'s for this one."""
    path = tmp_path_factory.mktemp("tempdir")
    before = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(path)
    yield path
    if before[0] is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = before[0]
    tempfile.tempdir = before[1]
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root() -> Path:
    """The checkout root."""
    return ROOT


@pytest.fixture
def tiny(tmp_path: Path) -> TinySetup:
    """A tiny LMDB dataset with a 4-scale M-CNN and its solver in a temporary folder."""
    return make_setup(tmp_path / "tiny")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first (a stable sort: otherwise in collection order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
