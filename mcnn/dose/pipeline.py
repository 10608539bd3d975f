"""The whole dose-response analysis of a predictions CSV, as ``tools/dose_response.py`` runs it.

Aggregate per group and concentration, fit every selected class, write ec50.csv, ec50.json,
points.csv and the plots. The reproduction runner and the demo call :func:`analyze` directly.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcnn.dose.aggregate import (
    GroupData,
    aggregate,
    class_columns,
    mark_training,
    read_table,
    resolve_classes,
    resolve_group_columns,
    training_concentrations,
)
from mcnn.dose.analysis import CurveResult, DoseSettings, fit_groups
from mcnn.dose.outputs import write_ec50_csv, write_ec50_json, write_points_csv
from mcnn.errors import ConfigError

OVERVIEW_LIMIT = 48
PathLike = str | os.PathLike[str]


@dataclass
class DoseAnalysis:
    """The groups, their fits and the files written."""

    groups: list[GroupData]
    results: list[CurveResult]
    class_names: list[str]
    fit_classes: list[str]
    group_columns: tuple[str, ...]
    written: list[Path]


def slug(text: str) -> str:
    """A file-name-safe lower-case form: runs of characters other than a-z0-9 become '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "blank"


def analyze(predictions: PathLike, out: PathLike, settings: DoseSettings, classes: Sequence[str] = (),
            group: str | None = None, training_index: Sequence[PathLike] = (), plots: bool = True,
            plot_style: str = "auto") -> DoseAnalysis:
    """Run the dose-response analysis of ``predictions`` into ``out`` (see the module docstring).

    ``classes`` are the classes to fit (default: the positive class of a 2-class model, every
    class otherwise); ``group`` the grouping column(s); ``training_index`` index CSVs whose
    concentrations are marked as training points.
    """
    settings.check()
    out = Path(out)
    table = read_table(predictions)
    class_names = [name for name, _ in class_columns(table)]
    fit_classes = resolve_classes(table, list(classes))
    group_columns = resolve_group_columns(table, group)
    groups = aggregate(table, group_columns, control_names=settings.control_names)
    if not groups:
        raise ConfigError(f"{predictions}: no treated rows (every row is a control or the file is empty)")
    seen: dict[tuple[str, ...], set[float]] = {}
    for path in training_index:
        for key, concs in training_concentrations(read_table(path), group_columns,
                                                  control_names=settings.control_names).items():
            seen.setdefault(key, set()).update(concs)
    mark_training(groups, seen)
    results = fit_groups(groups, class_names, fit_classes, settings)
    written = [
        write_ec50_csv(out / "ec50.csv", results, group_columns, settings),
        write_ec50_json(out / "ec50.json", results, group_columns, class_names, fit_classes, settings),
        write_points_csv(out / "points.csv", groups, group_columns, class_names),
    ]
    if plots:
        written += _plots(out, groups, results, class_names, fit_classes, settings, plot_style)
    return DoseAnalysis(groups, results, class_names, fit_classes, tuple(group_columns), written)


def _plots(out: Path, groups: Sequence[GroupData], results: Sequence[CurveResult], class_names: Sequence[str],
           fit_classes: Sequence[str], settings: DoseSettings, plot_style: str) -> list[Path]:
    from mcnn.dose.plots import plot_group, plot_overview  # matplotlib only when plotting

    written = []
    multiclass = plot_style == "multiclass" or (plot_style == "auto" and len(fit_classes) > 1)
    used: Counter[str] = Counter()
    for group in groups:
        mine = [r for r in results if r.group is group]
        name = slug("_".join(group.key))
        used[name] += 1
        if used[name] > 1:
            name = f"{name}-{used[name]}"
        if multiclass:
            written.append(plot_group(out / "plots" / f"{name}.png", group, class_names, mine, settings.unit,
                                      multiclass=True))
        elif len(fit_classes) == 1:
            written.append(plot_group(out / "plots" / f"{name}.png", group, class_names, mine, settings.unit))
        else:
            for res in mine:
                written.append(plot_group(out / "plots" / f"{name}__{slug(res.class_name)}.png", group,
                                          class_names, [res], settings.unit))
    if len(groups) <= OVERVIEW_LIMIT and (multiclass or len(fit_classes) == 1):
        written.append(plot_overview(out / "overview.png", groups, class_names, results, settings.unit,
                                     multiclass=multiclass))
    elif len(groups) > OVERVIEW_LIMIT:
        print(f"dose_response: {len(groups)} groups, more than {OVERVIEW_LIMIT}: no overview.png", file=sys.stderr)
    return written
