"""Fixtures of the simulator tests: one small screen written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.simulate import get_preset, simulate_screen


@pytest.fixture(scope="session")
def test_screen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``test`` preset (64x64, 28 fields) written to a temporary folder; do not modify it."""
    return simulate_screen(get_preset("test"), tmp_path_factory.mktemp("screen") / "raw")
