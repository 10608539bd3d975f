"""Plate and well helpers shared by the plate-based datasets.

Wells are named CellProfiler-style: row letter(s) and a zero-padded two-digit column (``A01``,
``O24``). Row-major ordinals count from 1 at A01 (``(row - A) * columns + column``), the
numbering BBBC013/BBBC014 file names use.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterator, Sequence
from pathlib import Path

from mcnn.errors import DatasetLayoutError

#: Plate formats: wells -> (rows, columns).
PLATE_FORMATS: dict[int, tuple[int, int]] = {96: (8, 12), 384: (16, 24)}

_WELL = re.compile(r"^([A-Pa-p])0*(\d{1,2})$")


def row_letter(row: int) -> str:
    """Row letter of a 0-based row index (0 -> ``A``)."""
    return string.ascii_uppercase[row]


def well_name(row: int, column: int) -> str:
    """Well name of a 0-based row and a 1-based column: ``well_name(0, 1) == "A01"``."""
    return f"{row_letter(row)}{column:02d}"


def parse_well(name: str) -> tuple[int, int]:
    """(0-based row, 1-based column) of a well name such as ``B02`` or ``b2``."""
    m = _WELL.match(name.strip())
    if not m:
        raise ValueError(f"not a well name: {name!r}")
    return ord(m.group(1).upper()) - ord("A"), int(m.group(2))


def normalise_well(name: str) -> str:
    """``b2`` -> ``B02``."""
    row, col = parse_well(name)
    return well_name(row, col)


def ordinal(row: int, column: int, columns: int = 12) -> int:
    """Row-major 1-based well ordinal of a 0-based row and 1-based column."""
    return row * columns + column


def wells(plate_format: int = 96) -> Iterator[str]:
    """Every well of a plate in row-major order (A01, A02, ..., H12 for 96 wells)."""
    rows, cols = PLATE_FORMATS[plate_format]
    for r in range(rows):
        for c in range(1, cols + 1):
            yield well_name(r, c)


def read_text(path: Path, latin1: bool = False) -> str:
    """A metadata text file decoded as UTF-8 (with or without BOM); a file that is not UTF-8 is a
    :class:`DatasetLayoutError` naming the line, unless ``latin1`` (BBBC014's plate map is Latin-1)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if latin1:
            return data.decode("latin-1")
        line = data[: exc.start].count(b"\n") + 1
        raise DatasetLayoutError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                                 "save it as UTF-8") from None


def read_platemap(path: Path, expected: int, parse: type[float] | None = float,
                  header_prefix: str | None = None, latin1: bool = False) -> list[str]:
    """The value tokens of a BBBC plate-map text file: one header line, then ``expected`` values.

    Values may be one per line or separated by white space, commas or tabs. ``header_prefix``
    (e.g. ``DESCRIPTION``) is checked when given. With ``parse`` each token must convert to a
    concentration, a finite number >= 0 (the error names the file and the value's position).
    Raises :class:`DatasetLayoutError` on any mismatch.
    """
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: plate map missing (expected a header line and {expected} values)")
    lines = read_text(path, latin1).splitlines()
    if not lines:
        raise DatasetLayoutError(f"{path}: empty plate map (expected a header line and {expected} values)")
    header, body = lines[0], lines[1:]
    if header_prefix is not None and not header.strip().upper().startswith(header_prefix.upper()):
        raise DatasetLayoutError(f"{path}: first line should start with {header_prefix!r}, got {header[:40]!r}")
    tokens = [t for line in body for t in re.split(r"[\s,;]+", line.strip()) if t]
    if len(tokens) != expected:
        raise DatasetLayoutError(f"{path}: {len(tokens)} values after the header line, expected {expected}")
    if parse is not None:
        for n, t in enumerate(tokens, start=1):
            try:
                value = parse(t)
            except ValueError:
                raise DatasetLayoutError(f"{path}: value {n}: {t!r} is not a number") from None
            # the values are concentrations: a negative or NaN dose would change which wells count as lowest
            if not math.isfinite(value) or value < 0:
                raise DatasetLayoutError(f"{path}: value {n}: {t!r} is not a concentration (a finite number >= 0)")
    return tokens


def write_platemap(path: Path, header: str, values: Sequence[str], newline: str = "\n") -> None:
    """Write a header line and one value per line (the BBBC plate-map text layout)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((newline.join([header, *values]) + newline).encode("latin-1"))


def replicate_numbers(wells_by_condition: dict[object, list[str]]) -> dict[str, int]:
    """Replicate number (1, 2, ...) of each well: its rank among the wells of its condition,
    in well order (row-major)."""
    out: dict[str, int] = {}
    for group in wells_by_condition.values():
        for rank, well in enumerate(sorted(group, key=_well_sort_key), start=1):
            out[well] = rank
    return out


def _well_sort_key(well: str) -> tuple[int, int] | tuple[int, str]:
    try:
        return parse_well(well)
    except ValueError:
        return (99, well)
