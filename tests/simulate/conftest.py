"""Fixtures of the simulator tests: small screens written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.simulate import get_preset, simulate_screen


@pytest.fixture(scope="session")
def test_screen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``test`` preset (64x64, 28 fields, 14 wells) written to a temporary folder; do not modify it."""
    return simulate_screen(get_preset("test"), tmp_path_factory.mktemp("screen") / "raw")


@pytest.fixture(scope="session")
def zarr_screen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``test`` preset written with its OME-Zarr plate (``plates/P01.ome.zarr``); do not modify it."""
    pytest.importorskip("ome_zarr")
    return simulate_screen(get_preset("test"), tmp_path_factory.mktemp("zarr_screen") / "raw", ome_zarr=True)
