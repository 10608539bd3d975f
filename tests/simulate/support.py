"""Helpers of the simulator tests: a screen's CSVs read back with the plain ``csv`` module."""

from __future__ import annotations

import csv
from pathlib import Path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV as dicts of text (plain ``csv``, independent of ``mcnn.tables``)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def header(path: Path) -> list[str]:
    """The column names of a CSV, in file order."""
    return path.read_text(encoding="utf-8").splitlines()[0].split(",")
