"""Test support shared by the whole suite: paths, the script runner, tiny nets and datasets.

Tests import from here (``from tests.support import ROOT, run_script``); ``tests/conftest.py``
only turns these into fixtures.
"""

from tests.support.scripts import ROOT, run_script

__all__ = ["ROOT", "run_script"]
