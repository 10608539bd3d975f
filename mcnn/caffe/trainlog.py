"""Training logs in glog's format (ours and real Caffe's) read into the tables of Caffe's ``parse_log.py``.

Caffe's ``tools/extra/parse_log.py`` (Python 2 only) turns a ``caffe train`` log into two CSVs:
``<log>.train`` and ``<log>.test``, columns ``NumIters, Seconds, LearningRate`` then one column per
net output name, one row per iteration that logged outputs. :func:`parse_log` follows its rules
line by line (``tools/extra/parse_log.py`` and ``tools/extra/extract_seconds.py`` of Caffe):

- parsing starts after the first line containing ``Solving``, whose time stamp is second 0; the year
  comes from the file's creation time and goes up by one when the month goes down, unless the stamps
  carry it (glog 0.6 and later write ``I20261201 15:31:54.123456``);
- ``Iteration N`` anywhere in a line sets the current iteration (nothing is read before the first one),
  ``lr = X`` the current learning rate; lines without a glog time stamp are skipped;
- a ``Train net output #k: NAME = V`` (or ``Test net output``) line starting a new iteration pushes
  the pending row and starts one; a row is pushed as soon as it has as many columns as the first
  row; the first row's ``LearningRate`` (logged only after the first outputs) is the second row's.

NumIters, Seconds and LearningRate are floats, as in Caffe's script, so the CSV cells read the same
(``100.0``). One deliberate difference: Caffe's script drops the only row of a log that has one row
(e.g. a single test pass); it is kept here. Output values ``nan``/``inf`` are read too (Caffe's
script fails on them).
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mcnn.errors import BadInputError
from mcnn.tables import write_table

#: The first three columns of both tables, in Caffe's order.
FIXED_COLUMNS = ("NumIters", "Seconds", "LearningRate")

_ITERATION = re.compile(r"Iteration (\d+)")
_NUMBER = r"([-+]?(?:nan|inf|[.\deE+-]+))"
_TRAIN_OUTPUT = re.compile(r"Train net output #(\d+): (\S+) = " + _NUMBER)
_TEST_OUTPUT = re.compile(r"Test net output #(\d+): (\S+) = " + _NUMBER)
_LEARNING_RATE = re.compile(r"lr = ([-+]?[0-9]*\.?[0-9]+([eE]?[-+]?[0-9]+)?)")
_SMOOTHED = re.compile(r"Iteration (\d+)(?: \([^)]*\))?, loss = " + _NUMBER)
# glog's prefix: severity letter, MMDD, then HH:MM:SS.micro (extract_seconds.extract_datetime_from_line).
# glog writes MMDD; glog 0.6 and later write YYYYMMDD (the Caffe builds of current distributions)
_STAMP = re.compile(r"\S(\d{4})?(\d\d)(\d\d)\s+(\d+):(\d+):(\d+)\.(\d+)(?:\s|$)")

Row = dict[str, float]


@dataclass
class TrainingLog:
    """A parsed training log.

    ``train`` and ``test``: the rows of Caffe's ``.train``/``.test`` tables (column name -> value;
    NumIters in iterations, Seconds since the ``Solving`` line, LearningRate). ``smoothed``:
    (iteration, smoothed loss) of every ``Iteration N (...), loss = X`` line (not in Caffe's tables).
    """

    path: Path
    train: list[Row] = field(default_factory=list)
    test: list[Row] = field(default_factory=list)
    smoothed: list[tuple[int, float]] = field(default_factory=list)

    @staticmethod
    def columns(rows: list[Row]) -> list[str]:
        """The columns of a table: the first row's keys, as Caffe's script writes them."""
        return list(rows[0]) if rows else list(FIXED_COLUMNS)

    def series(self, table: str, name: str) -> list[tuple[int, float]]:
        """(iteration, value) of column ``name`` of the ``train`` or ``test`` table (rows without it skipped)."""
        rows = self.train if table == "train" else self.test
        return [(int(row["NumIters"]), row[name]) for row in rows if name in row]


def _stamp(line: str, year: int) -> datetime.datetime | None:
    """The wall time of a glog line in ``year`` (or the year the stamp gives); None when the line has no
    (valid) time stamp."""
    match = _STAMP.match(line.strip())
    if match is None:
        return None
    given, *fields = match.groups()
    month, day, hour, minute, second, micro = (int(g) for g in fields)
    year = int(given) if given else year
    try:
        return datetime.datetime(year, month, day, hour, minute, second, micro)
    except ValueError:  # e.g. 0229 in a year that has none: Caffe's script skips the line as well
        return None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Table:
    """One table being built with the row rules of Caffe's ``parse_line_for_net_output``."""

    def __init__(self, pattern: re.Pattern[str]):
        self.pattern = pattern
        self.rows: list[Row] = []
        self.row: Row | None = None

    def feed(self, line: str, iteration: float, seconds: float, rate: float) -> None:
        match = self.pattern.search(line)
        value = None if match is None else _number(match.group(3))
        if match is not None and value is not None:
            if self.row is None or self.row["NumIters"] != iteration:
                if self.row is not None:
                    self.rows.append(self.row)
                self.row = {"NumIters": iteration, "Seconds": seconds, "LearningRate": rate}
            self.row[match.group(2)] = value
        if self.row is not None and self.rows and len(self.row) == len(self.rows[0]):
            self.rows.append(self.row)
            self.row = None

    def finish(self) -> list[Row]:
        if self.row is not None and not self.rows:  # the one difference from Caffe's script (module docstring)
            self.rows.append(self.row)
        if len(self.rows) > 1:
            self.rows[0]["LearningRate"] = self.rows[1]["LearningRate"]
        return self.rows


def parse_lines(lines: Iterable[str], year: int, path: str | os.PathLike[str] = "<log>") -> TrainingLog:
    """Parse the lines of a training log whose first time stamps fall in ``year``; see the module docstring.

    Raises :class:`BadInputError` naming ``path`` when no line contains ``Solving`` with a time stamp.
    """
    log = TrainingLog(Path(path))
    numbered: Iterator[tuple[int, str]] = enumerate(lines, start=1)
    start = None
    for number, line in numbered:
        if "Solving" in line:
            start = _stamp(line, year)
            if start is None:
                raise BadInputError(str(path), f"line {number}: the 'Solving' line has no glog time stamp "
                                               "(expected e.g. 'I1127 10:53:27.123456  4242 solver.cpp:289] Solving')")
            break
    if start is None:
        raise BadInputError(str(path), "no 'Solving' line: not the log of caffe train or tools/train.py")
    train, test = _Table(_TRAIN_OUTPUT), _Table(_TEST_OUTPUT)
    iteration, rate, last = -1.0, math.nan, start
    for _, line in numbered:
        found = _ITERATION.search(line)
        if found:
            iteration = float(found.group(1))
        if iteration == -1:
            continue
        when = _stamp(line, year)
        if when is None:
            continue
        if when.month < last.month:  # the log ran into a new year
            year += 1
            when = _stamp(line, year) or when
        last = when
        seconds = (when - start).total_seconds()
        lr = _LEARNING_RATE.search(line)
        if lr:
            rate = float(lr.group(1))
        train.feed(line, iteration, seconds, rate)
        test.feed(line, iteration, seconds, rate)
        smoothed = _SMOOTHED.search(line)
        if smoothed and (value := _number(smoothed.group(2))) is not None:
            log.smoothed.append((int(smoothed.group(1)), value))
    log.train, log.test = train.finish(), test.finish()
    return log


def parse_log(path: str | os.PathLike[str]) -> TrainingLog:
    """Parse a training log file (ours or real Caffe's); the year is that of the file's creation, as Caffe's
    script takes it. :class:`BadInputError` for a missing file, a folder or a file that is no training log."""
    path = Path(path)
    if path.is_dir():
        raise BadInputError(str(path), "is a folder, expected a training log file")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise BadInputError(str(path), "no such file") from None
    year = datetime.datetime.fromtimestamp(os.path.getctime(path)).year
    return parse_lines(text.splitlines(), year, path)


def write_csvs(log: TrainingLog, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``<log name>.train`` and ``<log name>.test`` into ``out_dir``; as Caffe's script, a table without
    rows is not written. Returns the files written."""
    written = []
    for suffix, rows in (("train", log.train), ("test", log.test)):
        if rows:
            written.append(write_table(Path(out_dir) / f"{log.path.name}.{suffix}", rows, log.columns(rows)))
    return written


def plot_log(log: TrainingLog, path: str | os.PathLike[str], title: str | None = None) -> Path | None:
    """The training curves as a PNG: losses (train outputs, the smoothed loss, test outputs named ``*loss*``)
    and the other test outputs (e.g. accuracy) over iterations; None when the log has no rows to draw."""
    from matplotlib.figure import Figure

    from mcnn.figures import save_figure

    losses = [(f"train {name}", log.series("train", name)) for name in log.columns(log.train)[3:]]
    if log.smoothed:
        losses.append(("train loss (smoothed)", log.smoothed))
    tests = log.columns(log.test)[3:]
    losses += [(f"test {name}", log.series("test", name)) for name in tests if "loss" in name]
    others = [(f"test {name}", log.series("test", name)) for name in tests if "loss" not in name]
    panels = [(label, curves) for label, curves in (("loss", losses), ("test outputs", others)) if curves]
    if not panels:
        return None
    fig = Figure(figsize=(5.5 * len(panels), 3.4))
    for k, (label, curves) in enumerate(panels, start=1):
        ax = fig.add_subplot(1, len(panels), k)
        for name, points in curves:
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o" if len(points) < 30 else None, ms=3, label=name)
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(title or log.path.name, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
