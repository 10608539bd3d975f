"""The plate map of your own screen and the rules that turn its rows into roles, classes and metadata.

A plate map is a CSV/TSV with one row per well, joined to the image source on
(``Metadata_Plate``, ``Metadata_Well``); without a ``Metadata_Plate`` column it applies to every
plate. Every column becomes field metadata, its name given the ``Metadata_`` prefix where it lacks
one (``Well`` -> ``Metadata_Well``). A row trains the class in the label column when its label
is not blank (and ``train_where`` matches); a negative-control row with a blank label trains the
control class. Class order: the ``classes`` option, else first appearance in the file.
(Not named ``platemap``: :mod:`mcnn.datasets.platemap` is the BBBC013-016 base.)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mcnn.datasets.base import format_number
from mcnn.datasets.loaddata import TextTable, read_delimited
from mcnn.datasets.plates import normalise_well
from mcnn.datasets.screenspec import Selector
from mcnn.errors import DatasetLayoutError

PREFIX = "Metadata_"
ROLE = "Metadata_Role"
UNIT = "Metadata_ConcentrationUnit"
ROLES = ("negative_control", "positive_control", "treatment")


@dataclass(frozen=True)
class Rules:
    """The screen options that read the plate map (column names as the user gave them)."""

    label_column: str
    negative: Selector | None
    positive: Selector | None
    train_where: Selector | None
    classes: tuple[str, ...]
    control_class: str
    unit: str
    compound_column: str
    concentration_column: str
    need_compound: bool = False


@dataclass(frozen=True)
class Well:
    """One plate-map row: its line, plate ("" for a map of every plate), well (``A01``), the metadata
    it gives (``Metadata_*``, concentration normalised, ``Metadata_Role`` filled in), its role, the
    class it trains (None: it does not train) and its compound."""

    line: int
    plate: str
    well: str
    meta: dict[str, str]
    role: str
    label: str | None
    compound: str


@dataclass(frozen=True)
class PlateMap:
    """A read plate map: ``wells`` keyed by (plate or "", well); ``columns`` its ``Metadata_*``
    columns besides plate and well (file order, then those the rules add); the classes in label
    order and the concentration unit."""

    path: Path
    per_plate: bool
    wells: dict[tuple[str, str], Well]
    columns: tuple[str, ...]
    classes: tuple[str, ...]
    unit: str

    def lookup(self, plate: str, well: str) -> Well | None:
        """The row of ``well`` on ``plate`` (the plate-independent row without a plate column)."""
        return self.wells.get((plate if self.per_plate else "", well))


def prefixed(column: str) -> str:
    """A column name with the ``Metadata_`` prefix (``compound`` -> ``Metadata_compound``)."""
    return column if column.startswith(PREFIX) else PREFIX + column


def _renamed(table: TextTable) -> TextTable:
    """The table with every column prefixed; DatasetLayoutError if two columns then clash."""
    names = [prefixed(c) for c in table.columns]
    twice = [n for n, k in Counter(names).items() if k > 1]
    if twice:
        raise DatasetLayoutError(f"{table.path}: line 1: two columns are both {twice[0]} once prefixed with "
                                 f"{PREFIX!r} (has {', '.join(table.columns)})")
    rows = tuple((n, {prefixed(k): v for k, v in row.items()}) for n, row in table.rows)
    return TextTable(table.path, tuple(names), rows)


def _resolve(table: TextTable, name: str, option: str, original: tuple[str, ...]) -> str:
    """The (prefixed) column ``name`` refers to; DatasetLayoutError listing the columns if there is none."""
    column = prefixed(name)
    if column not in table.columns:
        raise DatasetLayoutError(f"{table.path}: line 1: no column {name!r} ({option}; has {', '.join(original)})")
    return column


def _concentration(table: TextTable, n: int, column: str, text: str) -> str:
    """A concentration as a plain number ("" when blank); DatasetLayoutError unless a number >= 0."""
    if not text:
        return ""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        what = "is negative" if value < 0 else "is not a number"
        raise DatasetLayoutError(f"{table.path}: line {n}: column {column}: {text!r} {what} (expected a "
                                 "concentration >= 0)")
    return format_number(value)


class _Reader:
    """Reads the rows of one (prefixed) plate map under ``rules``."""

    def __init__(self, table: TextTable, rules: Rules, original: tuple[str, ...]):
        self.table, self.rules = table, rules
        self.label = _resolve(table, rules.label_column, "--label-column", original)
        self.selectors = {}
        for option, sel in (("--negative-control", rules.negative), ("--positive-control", rules.positive),
                            ("--train-where", rules.train_where)):
            if sel is not None:
                self.selectors[option] = Selector(_resolve(table, sel.column, option, original), sel.values)
        self.compound = self._optional(rules.compound_column, "Metadata_Compound", "--option compound_column",
                                       original, rules.need_compound)
        self.concentration = self._optional(rules.concentration_column, "Metadata_Concentration",
                                            "--option concentration_column", original, False)
        self.has_role = ROLE in table.columns
        if rules.negative is None and not self.has_role:
            raise DatasetLayoutError(f"{table.path}: line 1: no {ROLE} column marking the negative controls; give "
                                     f"--negative-control COLUMN=VALUE (has {', '.join(original)})")

    def _optional(self, name: str, default: str, option: str, original: tuple[str, ...], needed: bool) -> str | None:
        """A column that may be absent when it is the default and not ``needed``."""
        if prefixed(name) not in self.table.columns and prefixed(name) == default and not needed:
            return None
        return _resolve(self.table, name, option + (" (--split compound needs it)" if needed else ""), original)

    def _role(self, n: int, row: dict[str, str]) -> str:
        """negative_control, positive_control or treatment (selectors first, else the role column)."""
        given = row.get(ROLE, "") if self.has_role else ""
        if given and given not in ROLES:
            raise DatasetLayoutError(f"{self.table.path}: line {n}: column {ROLE}: {given!r}, expected one of "
                                     f"{', '.join(ROLES)} (or blank)")
        negative = self.selectors.get("--negative-control")
        positive = self.selectors.get("--positive-control")
        is_negative = negative.matches(row[negative.column]) if negative else given == "negative_control"
        is_positive = positive.matches(row[positive.column]) if positive else given == "positive_control"
        if is_negative:
            return "negative_control"
        return "positive_control" if is_positive else "treatment"

    def well(self, n: int, row: dict[str, str], per_plate: bool) -> Well:
        """The :class:`Well` of plate-map row ``n``."""
        path = self.table.path
        plate = row.get("Metadata_Plate", "") if per_plate else ""
        if per_plate and not plate:
            raise DatasetLayoutError(f"{path}: line {n}: column Metadata_Plate: blank, expected a plate name")
        try:
            well = normalise_well(row["Metadata_Well"])
        except ValueError:
            raise DatasetLayoutError(f"{path}: line {n}: column Metadata_Well: {row['Metadata_Well']!r} is not a "
                                     "well (expected e.g. A01, A1 or a01)") from None
        meta = {k: v for k, v in row.items() if k not in ("Metadata_Plate", "Metadata_Well")}
        role = self._role(n, row)
        meta[ROLE] = role
        compound = row[self.compound] if self.compound else ""
        if self.compound:
            meta["Metadata_Compound"] = compound
        if self.concentration:
            meta["Metadata_Concentration"] = _concentration(self.table, n, self.concentration, row[self.concentration])
        where = self.selectors.get("--train-where")
        trains = where is None or where.matches(row[where.column])
        label = row[self.label] or (self.rules.control_class if role == "negative_control" else "")
        return Well(n, plate, well, meta, role, label if label and trains else None, compound)


def _unit(table: TextTable, rules: Rules) -> str:
    """The concentration unit: the one value of ``Metadata_ConcentrationUnit``, else the ``unit`` option."""
    if UNIT not in table.columns:
        return rules.unit
    first: tuple[int, str] | None = None
    for n, row in table.rows:
        value = row[UNIT]
        if value and first is None:
            first = (n, value)
        elif value and first is not None and value != first[1]:
            raise DatasetLayoutError(f"{table.path}: line {n}: column {UNIT}: {value!r}, but line {first[0]} says "
                                     f"{first[1]!r} (one unit per screen)")
    return first[1] if first else rules.unit


def _classes(path: Path, wells: list[Well], rules: Rules, label_column: str) -> tuple[str, ...]:
    """The classes in label order: the ``classes`` option (checked against the rows) or first appearance."""
    seen = list(dict.fromkeys(w.label for w in wells if w.label is not None))
    if rules.classes:
        for w in wells:
            if w.label is not None and w.label not in rules.classes:
                raise DatasetLayoutError(f"{path}: line {w.line}: column {label_column}: class {w.label!r} is not in "
                                         f"--classes {','.join(rules.classes)}")
        unused = [c for c in rules.classes if c not in seen]
        if unused:
            raise DatasetLayoutError(f"{path}: column {label_column}: no training well of class {unused[0]!r} "
                                     f"(--classes {','.join(rules.classes)})")
        seen = list(rules.classes)
    if len(seen) < 2:
        found = f"one class ({seen[0]!r})" if seen else "no class"
        raise DatasetLayoutError(f"{path}: column {label_column}: {found} among the training wells, at least 2 "
                                 f"needed (negative controls with a blank label train {rules.control_class!r})")
    return tuple(seen)


def read_platemap(path: Path, rules: Rules) -> PlateMap:
    """Read and check a plate map (DatasetLayoutError naming file, line and column on the first problem)."""
    original = read_delimited(path, "a plate map (CSV/TSV: Metadata_Well, optional Metadata_Plate, one row per "
                                    "well)")
    table = _renamed(original)
    if "Metadata_Well" not in table.columns:
        raise DatasetLayoutError(f"{path}: line 1: no column Metadata_Well (or Well) (has "
                                 f"{', '.join(original.columns)})")
    reader = _Reader(table, rules, original.columns)
    per_plate = "Metadata_Plate" in table.columns
    wells: dict[tuple[str, str], Well] = {}
    for n, row in table.rows:
        w = reader.well(n, row, per_plate)
        if (w.plate, w.well) in wells:
            first = wells[(w.plate, w.well)].line
            on = f" of plate {w.plate}" if per_plate else ""
            raise DatasetLayoutError(f"{path}: line {n}: column Metadata_Well: well {w.well}{on} listed twice "
                                     f"(first on line {first})")
        wells[(w.plate, w.well)] = w
    rows = list(wells.values())
    if not any(w.role == "negative_control" for w in rows):
        sel = rules.negative
        what = f"--negative-control {sel.text()}" if sel else f"{ROLE} = negative_control"
        present = sorted({row[prefixed(sel.column)] for _, row in table.rows}) if sel else []
        extra = f" (values of {sel.column}: {', '.join(present)})" if sel else ""
        raise DatasetLayoutError(f"{path}: column {prefixed(sel.column) if sel else ROLE}: {what} matches no "
                                 f"row{extra}")
    classes = _classes(path, rows, rules, reader.label)
    extra_columns = [c for c in (ROLE, "Metadata_Compound", "Metadata_Concentration")
                     if c not in table.columns and any(c in w.meta for w in rows)]
    columns = tuple(c for c in table.columns if c not in ("Metadata_Plate", "Metadata_Well")) + tuple(extra_columns)
    return PlateMap(path, per_plate, wells, columns, classes, _unit(table, rules))
