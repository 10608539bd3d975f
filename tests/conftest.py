"""Fixtures of the whole suite; the code behind them lives in ``tests/support``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.tiny import TinySetup, make_setup


@pytest.fixture
def root() -> Path:
    """The checkout root."""
    return ROOT


@pytest.fixture
def tiny(tmp_path: Path) -> TinySetup:
    """A tiny LMDB dataset with a 4-scale M-CNN and its solver in a temporary folder."""
    return make_setup(tmp_path / "tiny")
