"""CSV tables: the index, predictions and result files every stage exchanges.

Read with the ``csv`` module (any line ending, quoted or not, a UTF-8 BOM tolerated);
columns are selected by name. Writing is atomic (temporary name, then rename); tables too large
to hold in memory are streamed row by row with :class:`RowWriter` (same dialect: LF line ends).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mcnn.errors import TableError
from mcnn.fsutil import atomic_write_text


@dataclass(frozen=True)
class Table:
    """A CSV file as read: its path, its column names in file order, its rows as dicts of text."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]

    def require(self, *names: str, purpose: str = "") -> None:
        """Raise :class:`TableError` naming the file and the first column of ``names`` it lacks."""
        for name in names:
            if name not in self.columns:
                why = f" ({purpose})" if purpose else ""
                raise TableError(f"{self.path}: no column {name!r}{why}")

    def column(self, name: str) -> list[str]:
        """All values of column ``name`` (which must exist)."""
        self.require(name)
        return [row[name] for row in self.rows]


def read_table(path: str | os.PathLike[str]) -> Table:
    """Read a CSV with a header row; raises :class:`TableError` if the file is missing or empty."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise TableError(f"{path}: is a folder, expected a CSV file") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # never a silent re-decode: name the line
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                         "save it as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None:
        raise TableError(f"{path}: empty file, expected a CSV header")
    columns = tuple(reader.fieldnames)
    rows = tuple(reader)
    return Table(path=path, columns=columns, rows=rows)


def format_cell(value: object) -> object:
    """A CSV cell of the toolkit's dialect: ``None`` as empty, floats at full precision (``repr``)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def format_table(rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> str:
    """CSV text (LF line ends) of ``rows`` restricted to ``columns``; floats keep full precision."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: format_cell(v) for k, v in row.items()})
    return buffer.getvalue()


def write_table(path: str | os.PathLike[str], rows: Iterable[Mapping[str, object]], columns: Sequence[str]) -> Path:
    """Write ``rows`` as a CSV with ``columns``, atomically."""
    return atomic_write_text(path, format_table(rows, columns))


class RowWriter:
    """Streams a CSV table into an open text ``handle`` (opened with ``newline=""``): the header
    ``columns`` at once, then one :meth:`row` at a time; the dialect of :func:`format_table`."""

    def __init__(self, handle: TextIO, columns: Sequence[str]):
        self.columns = tuple(columns)
        self._writer = csv.writer(handle, lineterminator="\n")
        self._writer.writerow(self.columns)

    def row(self, values: Sequence[object]) -> None:
        """Write one row: ``values`` in column order (``None`` as empty, floats at full precision)."""
        if len(values) != len(self.columns):
            raise ValueError(f"CSV row of {len(values)} values for {len(self.columns)} columns")
        self._writer.writerow([format_cell(v) for v in values])
