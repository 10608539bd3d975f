"""Read a predictions CSV and summarise it per group (compound) and concentration.

The paper's aggregation (Sec. 2.4, Fig. 3b, 5b): for each group and concentration, the element-wise
median of the probability vectors over the fields (images) of each replicate, then the median and the
median absolute deviation (MAD) over the replicates. The MAD is the raw one,
``median(|r - median(r)|)`` (scale 1, i.e. ``scipy.stats.median_abs_deviation(r, scale=1.0)``), not
the normal-consistent ``1.4826 * MAD``.

A *replicate* is the row's ``Metadata_Replicate`` when the file has that column (and the cell is not
blank), else its ``(Metadata_Plate, Metadata_Well)`` pair. *Controls* (rows with concentration 0, a
``Metadata_Compound`` among the control names, or ``Metadata_Role == negative_control``) are never
part of a group's curve; a group's control summary uses the control wells (each ``(plate, well)`` one
replicate) on the plates the group was imaged on, or every control well when there is no plate column.

Files are read with the ``csv`` module; columns are selected by name, concentrations compared as floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcnn.errors import TableError
from mcnn.tables import Table
from mcnn.tables import read_table as read_table  # re-exported for the dose tools

COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
REPLICATE = "Metadata_Replicate"
PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
ROLE = "Metadata_Role"
CELL_LINE = "Metadata_CellLine"
PROB_PREFIX = "prob_"
DEFAULT_CONTROLS = ("DMSO",)


def class_columns(table: Table) -> list[tuple[str, str]]:
    """``(class name, column)`` for every ``prob_<class name>`` column, in file (label) order."""
    found = [(c[len(PROB_PREFIX):], c) for c in table.columns if c.startswith(PROB_PREFIX) and len(c) > 5]
    if not found:
        raise TableError(f"{table.path}: no probability columns (expected prob_<class name>, formats.md)")
    return found


def resolve_classes(table: Table, requested: Sequence[str]) -> list[str]:
    """Class names for ``--class`` values (a class name or its ``prob_`` column; exact, then case-insensitive).

    With nothing requested: the positive (second) class of a 2-class model, every class otherwise.
    """
    names = [name for name, _ in class_columns(table)]
    if not requested:
        return [names[1]] if len(names) == 2 else list(names)
    chosen: list[str] = []
    for text in requested:
        bare = text[len(PROB_PREFIX):] if text.startswith(PROB_PREFIX) and text[len(PROB_PREFIX):] in names else text
        if bare not in names:
            folded = [n for n in names if n.lower() == bare.lower()]
            if len(folded) != 1:
                raise TableError(f"{table.path}: no column {PROB_PREFIX + bare!r} for --class {text!r} "
                                       f"(classes: {', '.join(names)})")
            bare = folded[0]
        if bare not in chosen:
            chosen.append(bare)
    return chosen


def resolve_group_columns(table: Table, spec: str | None) -> tuple[str, ...]:
    """Column names for ``--group``: a comma list of column names or short names (``compound`` ->
    ``Metadata_Compound``, case-insensitive).

    ``None`` (the default) is ``Metadata_Compound``, plus ``Metadata_CellLine`` when the file has it
    (BBBC014 treats two cell lines with the same compound: two curves in the paper's Fig. 3b).
    """
    if spec is None:
        return (COMPOUND, CELL_LINE) if CELL_LINE in table.columns else (COMPOUND,)
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in table.columns:
            out.append(part)
            continue
        wanted = {part.lower(), f"metadata_{part.lower()}"}
        matches = [c for c in table.columns if c.lower() in wanted]
        if len(matches) != 1:
            raise TableError(f"{table.path}: no column {part!r} for --group")
        out.append(matches[0])
    if not out:
        raise TableError(f"{table.path}: --group names no column")
    return tuple(out)


def concentration_key(value: float) -> float:
    """A concentration rounded to 12 significant digits, so ``0.1`` and ``0.1000000000001`` are one dose."""
    return float(f"{value:.12g}")


def _number(table: Table, row: dict[str, str], column: str, line: int, *, blank_ok: bool = False) -> float:
    text = (row.get(column) or "").strip()
    if not text and blank_ok:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise TableError(f"{table.path}: line {line}: column {column!r}: {text!r} is not a number") from None


@dataclass
class DosePoint:
    """The summary of one group at one concentration (or of its controls).

    ``median`` and ``mad`` have one entry per class (probability units); ``replicate_medians`` is
    ``(n_replicates, n_classes)``: the per-replicate medians over fields that the median and MAD summarise.
    """

    concentration: float
    median: np.ndarray
    mad: np.ndarray
    replicate_medians: np.ndarray
    replicates: tuple[str, ...]
    n_fields: int
    training: bool = False

    @property
    def n_replicates(self) -> int:
        """Number of replicates summarised."""
        return len(self.replicates)


@dataclass
class GroupData:
    """One group's dose series: ``key`` holds the values of the group columns; points sorted by concentration."""

    key: tuple[str, ...]
    points: list[DosePoint]
    control: DosePoint | None = None
    training_concentrations: list[float] = field(default_factory=list)

    @property
    def concentrations(self) -> np.ndarray:
        """Concentrations of the points, ascending, shape ``(n_points,)``."""
        return np.array([p.concentration for p in self.points])


def summarise(replicate_rows: dict[str, list[np.ndarray]], concentration: float) -> DosePoint:
    """Median over fields within each replicate, then median and raw MAD over replicates.

    Args:
        replicate_rows: replicate id -> the probability vectors (each ``(n_classes,)``) of its fields.
        concentration: the concentration the point is plotted at.
    """
    ids = tuple(sorted(replicate_rows, key=_natural))
    per_rep = np.array([np.median(np.stack(replicate_rows[r]), axis=0) for r in ids])
    median = np.median(per_rep, axis=0)
    mad = np.median(np.abs(per_rep - median), axis=0)
    n_fields = sum(len(v) for v in replicate_rows.values())
    return DosePoint(concentration=concentration, median=median, mad=mad, replicate_medians=per_rep,
                     replicates=ids, n_fields=n_fields)


def _natural(text: str) -> tuple[int, float | str]:
    try:
        return (0, float(text))
    except ValueError:
        return (1, text)


def is_control(row: dict[str, str], concentration: float, control_names: Iterable[str]) -> bool:
    """Whether a row is a control: concentration 0, compound among ``control_names``, or role negative_control."""
    names = {n.lower() for n in control_names}
    if (row.get(COMPOUND) or "").strip().lower() in names:
        return True
    if (row.get(ROLE) or "").strip().lower() == "negative_control":
        return True
    return concentration == 0.0


def aggregate(table: Table, group_columns: Sequence[str], *, control_names: Sequence[str] = DEFAULT_CONTROLS
              ) -> list[GroupData]:
    """Summarise every group of a predictions table per concentration (see the module docstring).

    Args:
        table: a predictions CSV (formats.md) read by :func:`read_table`.
        group_columns: the columns whose values identify a curve (default use: ``Metadata_Compound``).
        control_names: compound names that are controls (compared case-insensitively).

    Returns:
        One :class:`GroupData` per group, sorted by key; each point's vectors follow the order of
        :func:`class_columns`.
    """
    prob = [col for _, col in class_columns(table)]
    table.require(*group_columns, purpose="--group")
    table.require(CONCENTRATION)
    has_replicate = REPLICATE in table.columns
    has_plate_well = PLATE in table.columns and WELL in table.columns
    if not has_replicate and not has_plate_well:
        table.require(REPLICATE, purpose=f"or {PLATE} and {WELL}, to tell replicates apart")

    # group key -> concentration -> replicate -> list of probability vectors
    series: dict[tuple[str, ...], dict[float, dict[str, list[np.ndarray]]]] = {}
    group_plates: dict[tuple[str, ...], set[str]] = {}
    controls: dict[str, dict[str, list[np.ndarray]]] = {}  # plate -> well replicate -> vectors
    for line, row in enumerate(table.rows, start=2):
        named_control = is_control(row, math.nan, control_names)
        conc = _number(table, row, CONCENTRATION, line, blank_ok=named_control)
        vector = np.array([_number(table, row, col, line, blank_ok=True) for col in prob])
        _check_probabilities(table, line, prob, vector)
        plate = (row.get(PLATE) or "").strip()
        well_id = f"{plate}/{(row.get(WELL) or '').strip()}"
        if named_control or is_control(row, conc, control_names):
            if has_plate_well:
                controls.setdefault(plate, {}).setdefault(well_id, []).append(vector)
            continue
        key = tuple((row.get(c) or "").strip() for c in group_columns)
        replicate = _replicate_id(table, row, line, conc, well_id, has_replicate, has_plate_well)
        series.setdefault(key, {}).setdefault(concentration_key(conc), {}).setdefault(replicate, []).append(vector)
        group_plates.setdefault(key, set()).add(plate)
    return _groups(series, group_plates, controls, has_plate_well)


def _check_probabilities(table: Table, line: int, columns: Sequence[str], vector: np.ndarray) -> None:
    """A probability is a number in [0, 1] (a blank cell is a missing value; 1e-6 of rounding is allowed)."""
    bad = np.flatnonzero((vector < -1e-6) | (vector > 1 + 1e-6) | np.isinf(vector))
    if bad.size:
        i = int(bad[0])
        raise TableError(f"{table.path}: line {line}: column {columns[i]!r}: {vector[i]:g} is not a probability "
                         "(expected a number from 0 to 1)")


def _replicate_id(table: Table, row: dict[str, str], line: int, conc: float, well_id: str, has_replicate: bool,
                  has_plate_well: bool) -> str:
    """The replicate of a treated row (``Metadata_Replicate``, else plate/well); checks the concentration."""
    if not math.isfinite(conc) or conc < 0:
        raise TableError(f"{table.path}: line {line}: column {CONCENTRATION!r}: {conc!r} is not a "
                         "concentration (a finite number >= 0)")
    replicate = (row.get(REPLICATE) or "").strip() if has_replicate else ""
    if replicate:
        return replicate
    if not has_plate_well:
        raise TableError(f"{table.path}: line {line}: column {REPLICATE!r} is blank and there are "
                         f"no {PLATE}/{WELL} columns to tell replicates apart")
    return well_id


def _groups(series: dict[tuple[str, ...], dict[float, dict[str, list[np.ndarray]]]],
            group_plates: dict[tuple[str, ...], set[str]], controls: dict[str, dict[str, list[np.ndarray]]],
            has_plate_well: bool) -> list[GroupData]:
    """One :class:`GroupData` per group key, sorted, with the control wells of its plates."""
    groups = []
    for key in sorted(series):
        points = [summarise(reps, conc) for conc, reps in sorted(series[key].items())]
        plates = group_plates[key] if has_plate_well else set(controls)
        wells = {w: v for p in sorted(plates) for w, v in controls.get(p, {}).items()}
        control = summarise(wells, 0.0) if wells else None
        groups.append(GroupData(key=key, points=points, control=control))
    return groups


def training_concentrations(table: Table, group_columns: Sequence[str], *,
                            control_names: Sequence[str] = DEFAULT_CONTROLS) -> dict[tuple[str, ...], set[float]]:
    """Group key -> the (rounded, :func:`concentration_key`) concentrations an index CSV holds.

    Used with the training index of a split: those (group, concentration) points were seen in training.
    Controls are left out.
    """
    table.require(*group_columns, purpose="--group, to match the predictions")
    table.require(CONCENTRATION)
    out: dict[tuple[str, ...], set[float]] = {}
    for line, row in enumerate(table.rows, start=2):
        named_control = is_control(row, math.nan, control_names)
        conc = _number(table, row, CONCENTRATION, line, blank_ok=named_control)
        if named_control or is_control(row, conc, control_names):
            continue
        key = tuple((row.get(c) or "").strip() for c in group_columns)
        out.setdefault(key, set()).add(concentration_key(conc))
    return out


def mark_training(groups: Sequence[GroupData], seen: dict[tuple[str, ...], set[float]]) -> None:
    """Set ``training`` on the points that ``seen`` holds, and each group's ``training_concentrations``
    (every concentration of the group in ``seen``, also those without a point in the predictions).

    Concentrations match within a relative tolerance of 1e-6.
    """
    for group in groups:
        known = sorted(seen.get(group.key, ()))
        for point in group.points:
            point.training = any(math.isclose(point.concentration, c, rel_tol=1e-6) for c in known)
        group.training_concentrations = known
