"""Shared fixtures: the checkout root and a helper to run the command-line tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    return ROOT


def run_tool(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``tools/<script>`` with this interpreter; returns the completed process."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / script), *args],
                          capture_output=True, text=True, cwd=cwd or ROOT)


def run_tool_at(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``<script>`` (a path relative to the checkout, e.g. ``data_prep/prepare.py``)."""
    return subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, cwd=cwd or ROOT)
