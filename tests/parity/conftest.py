"""The parity suite's report: each case adds its worst relative difference; the table is printed and written.

It goes to ``MCNN_PARITY_REPORT`` (``make parity``: ``.cache/caffe/parity-report.md``) when any case ran.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

import pytest

from mcnn.fsutil import atomic_write_text
from tests.support.parity import PREFIX, Report, missing_reason

REPORT = Report()


@pytest.fixture
def report() -> Report:
    """The session's parity report (one per process: ``make parity`` runs the suite serially)."""
    return REPORT


@pytest.fixture
def caffe_prefix() -> Path:
    """The real Caffe's install prefix; skips the test, with the reason, when there is none."""
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    return Path(PREFIX)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the table of worst differences and write it to ``MCNN_PARITY_REPORT``."""
    if not REPORT.rows:
        return
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = f"Parity against real Caffe ({PREFIX}), {stamp}, {platform.machine()} {os.cpu_count()} CPUs\n\n"
    text = head + REPORT.markdown()
    terminalreporter.write_sep("=", "parity: worst relative differences")
    terminalreporter.write_line(text)
    target = os.environ.get("MCNN_PARITY_REPORT")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
