"""Golden files: outputs of a fixed tiny run committed under ``tests/golden/`` and compared by tests.

Names (columns, keys, row and line counts, every text cell) must match exactly; numbers match
within a tolerance, since training on another machine (another BLAS, another CPU) changes the
last digits. Wall-clock times and hardware strings are not compared. Run the test with
``MCNN_UPDATE_GOLDEN=1`` to rewrite the golden files from the current outputs (then review the diff).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from tests.support.scripts import ROOT

GOLDEN = ROOT / "tests" / "golden"

#: Numbers of a golden file match within this relative or absolute difference.
REL_TOL = 1e-3
ABS_TOL = 1e-3
#: metrics.json keys and results.md columns that differ from machine to machine.
MACHINE_KEYS = frozenset({"seconds", "hardware"})
MACHINE_COLUMNS = frozenset({"wall time (h)", "hardware"})
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf")


def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _same_text(actual: str, golden: str, where: str) -> None:
    """Equal text outside the numbers, and each number within the tolerance."""
    assert _NUMBER.split(actual) == _NUMBER.split(golden), f"{where}: {actual!r} != golden {golden!r}"
    for a, g in zip(_NUMBER.findall(actual), _NUMBER.findall(golden), strict=True):
        assert _close(float(a), float(g)), f"{where}: {a} != golden {g} ({actual!r})"


def _near_tie(row: dict[str, str], tolerance: float) -> bool:
    probs = sorted((float(v) for k, v in row.items() if k.startswith("prob_") and v), reverse=True)
    return len(probs) > 1 and probs[0] - probs[1] <= 2 * tolerance


def compare_csv(actual: Path, golden: Path) -> None:
    """Same header and rows; cells equal as text, numbers within the tolerance.

    In a row whose two highest ``prob_`` values are a near tie the ``predicted_*`` cells may differ.
    """
    with open(actual, newline="", encoding="utf-8") as a, open(golden, newline="", encoding="utf-8") as g:
        rows_a, rows_g = list(csv.reader(a)), list(csv.reader(g))
    assert rows_a[0] == rows_g[0], f"{actual.name}: columns {rows_a[0]} != golden {rows_g[0]}"
    assert len(rows_a) == len(rows_g), f"{actual.name}: {len(rows_a) - 1} rows, golden {len(rows_g) - 1}"
    header = rows_g[0]
    for line, (ra, rg) in enumerate(zip(rows_a[1:], rows_g[1:], strict=True), start=2):
        tie = _near_tie(dict(zip(header, rg, strict=True)), ABS_TOL)
        for column, a, g in zip(header, ra, rg, strict=True):
            if tie and column.startswith("predicted_"):
                continue
            _same_text(a, g, f"{actual.name} line {line} column {column!r}")


def _compare_json(actual: object, golden: object, where: str) -> None:
    if isinstance(golden, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        keys = set(golden) - MACHINE_KEYS
        assert set(actual) - MACHINE_KEYS == keys, f"{where}: keys {sorted(actual)} != golden {sorted(golden)}"
        for key in sorted(keys):
            _compare_json(actual[key], golden[key], f"{where}.{key}")
    elif isinstance(golden, list):
        assert isinstance(actual, list) and len(actual) == len(golden), f"{where}: {actual!r} != golden {golden!r}"
        for i, (a, g) in enumerate(zip(actual, golden, strict=True)):
            _compare_json(a, g, f"{where}[{i}]")
    elif isinstance(golden, float) and not isinstance(golden, bool):
        assert isinstance(actual, int | float) and _close(float(actual), golden), f"{where}: {actual} != {golden}"
    else:
        assert actual == golden, f"{where}: {actual!r} != golden {golden!r}"


def compare_json(actual: Path, golden: Path) -> None:
    """Same keys (machine keys aside) and values; floats within the tolerance."""
    _compare_json(json.loads(actual.read_text()), json.loads(golden.read_text()), actual.name)


def _skipped_cells(header: str) -> set[int]:
    cells = [c.strip() for c in header.split("|")]
    return {i for i, c in enumerate(cells) if c in MACHINE_COLUMNS}


def compare_markdown(actual: Path, golden: Path) -> None:
    """Same lines; in tables the machine columns are skipped, numbers compared within the tolerance."""
    lines_a, lines_g = actual.read_text().splitlines(), golden.read_text().splitlines()
    assert len(lines_a) == len(lines_g), f"{actual.name}: {len(lines_a)} lines, golden {len(lines_g)}"
    skip: set[int] = set()
    for n, (a, g) in enumerate(zip(lines_a, lines_g, strict=True), start=1):
        if not g.startswith("|"):
            skip = set()
            _same_text(a, g, f"{actual.name} line {n}")
            continue
        skip = skip or _skipped_cells(g)
        cells_a, cells_g = a.split("|"), g.split("|")
        assert len(cells_a) == len(cells_g), f"{actual.name} line {n}: {a!r} != golden {g!r}"
        for i, (ca, cg) in enumerate(zip(cells_a, cells_g, strict=True)):
            if i not in skip:
                _same_text(ca, cg, f"{actual.name} line {n} cell {i}")


COMPARE = {".csv": compare_csv, ".json": compare_json, ".md": compare_markdown}


def check_golden(name: str, files: Sequence[Path]) -> None:
    """Compare ``files`` with ``tests/golden/<name>/<file name>`` (rewrite them with MCNN_UPDATE_GOLDEN=1)."""
    folder = GOLDEN / name
    if os.environ.get("MCNN_UPDATE_GOLDEN") == "1":
        folder.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, folder / path.name)
    for path in files:
        golden = folder / path.name
        assert golden.is_file(), f"no golden file {golden.relative_to(ROOT)}; run with MCNN_UPDATE_GOLDEN=1"
        COMPARE[path.suffix](path, golden)
