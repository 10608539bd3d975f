"""Write the dose-response results: ``ec50.csv``, ``ec50.json`` and ``points.csv``.

Only the dose-specific content lives here (the columns, the cell format, the JSON document); the CSV
files are written by :func:`mcnn.tables.write_table`. CSV cells: numbers with 10 significant digits,
a blank cell for "not available" (NaN), ``inf`` for an unbounded value. JSON: ``null`` for any value
that is not a finite number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import mcnn
from mcnn.dose.aggregate import DosePoint, GroupData
from mcnn.dose.analysis import CurveResult, DoseSettings
from mcnn.dose.fit import CURVE_STATUSES, STATUSES
from mcnn.fsutil import atomic_write_text
from mcnn.tables import write_table

MAD_DEFINITION = ("raw median absolute deviation over replicates, median(|r - median(r)|), scale 1 "
                  "(not multiplied by 1.4826)")
AGGREGATION = "median over the fields (images) of each replicate, then median and MAD over the replicates"
MODEL = "LL.4 (R drc): f(x) = c + (d - c) / (1 + exp(b * (log(x) - log(e)))), fitted in log(e)"
CI_METHOD = ("delta method on log(EC50) (the fit's covariance, scaled by the residual variance), "
             "exp(log(EC50) -/+ t(level, n - 4) * SE): drc's ED(..., interval = 'fls')")

#: ec50.csv columns after the group columns, in order.
EC50_COLUMNS = (
    "class", "status", "message", "ec50", "ec50_se", "ec50_ci_low", "ec50_ci_high", "ec50_bound", "log10_ec50",
    "log10_ec50_se", "hill_slope", "hill_slope_se", "bottom", "bottom_se", "top", "top_se", "response_range",
    "r_squared", "f_statistic", "f_pvalue", "rss", "df_residual", "n_points", "n_concentrations",
    "n_replicates_min", "n_replicates_max", "conc_min", "conc_max", "unit", "fit_to", "ci_level",
    "training_concentrations",
)
#: points.csv columns after the group columns, in order.
POINT_COLUMNS = ("concentration", "control", "class", "median", "mad_raw", "n_replicates", "n_fields", "training")


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.10g}"
    return str(value)


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_value(value.tolist())
    return value


def _write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` (values in ``header`` order) with every cell formatted by :func:`_cell`."""
    return write_table(path, [dict(zip(header, map(_cell, row), strict=True)) for row in rows], header)


def _concs(values: Sequence[float]) -> str:
    return ";".join(f"{v:.10g}" for v in values)


def ec50_rows(results: Sequence[CurveResult], settings: DoseSettings) -> list[list[object]]:
    """One row per (group, class) fit: the group values, then :data:`EC50_COLUMNS`."""
    rows = []
    for res in results:
        fit = res.fit
        reps = [p.n_replicates for p in res.group.points]
        values = {**fit.as_dict(), "class": res.class_name, "n_replicates_min": min(reps),
                  "n_replicates_max": max(reps), "unit": settings.unit, "fit_to": settings.fit_to,
                  "ci_level": fit.level, "training_concentrations": _concs(res.group.training_concentrations)}
        rows.append([*res.group.key, *(values[c] for c in EC50_COLUMNS)])
    return rows


def write_ec50_csv(path: str | Path, results: Sequence[CurveResult], group_columns: Sequence[str],
                   settings: DoseSettings) -> Path:
    """Write ``ec50.csv``: one row per (group, class) with every fitted quantity (blank = not supported)."""
    return _write_csv(path, [*group_columns, *EC50_COLUMNS], ec50_rows(results, settings))


def _point_rows(group: GroupData, point: DosePoint, class_names: Sequence[str], control: bool) -> list[list[object]]:
    return [[*group.key, point.concentration, control, name, float(point.median[k]), float(point.mad[k]),
             point.n_replicates, point.n_fields, point.training] for k, name in enumerate(class_names)]


def write_points_csv(path: str | Path, groups: Sequence[GroupData], group_columns: Sequence[str],
                     class_names: Sequence[str]) -> Path:
    """Write ``points.csv``: per group, concentration and class the median and raw MAD over replicates.

    The control summary of each group (when the file has controls) is a row with ``control`` = 1 and
    concentration 0.
    """
    rows = []
    for group in groups:
        if group.control is not None:
            rows += _point_rows(group, group.control, class_names, True)
        for point in group.points:
            rows += _point_rows(group, point, class_names, False)
    return _write_csv(path, [*group_columns, *POINT_COLUMNS], rows)


def ec50_document(results: Sequence[CurveResult], group_columns: Sequence[str], class_names: Sequence[str],
                  fit_classes: Sequence[str], settings: DoseSettings) -> dict[str, object]:
    """The ``ec50.json`` content as a dict (non-finite numbers still as floats; see :func:`write_ec50_json`)."""
    entries = []
    for res in results:
        fit = res.fit.as_dict()
        curve = fit.pop("curve")
        group = res.group
        k = res.class_index
        entries.append({
            "group": dict(zip(group_columns, group.key, strict=True)),
            "class": res.class_name,
            **fit,
            "curve": curve,
            "n_replicates_min": min(p.n_replicates for p in group.points),
            "n_replicates_max": max(p.n_replicates for p in group.points),
            "training_concentrations": list(group.training_concentrations),
            "points": [{"concentration": p.concentration, "median": float(p.median[k]), "mad_raw": float(p.mad[k]),
                        "n_replicates": p.n_replicates, "n_fields": p.n_fields, "training": p.training,
                        "replicate_medians": p.replicate_medians[:, k].tolist()} for p in group.points],
            "control": None if group.control is None else {
                "median": float(group.control.median[k]), "mad_raw": float(group.control.mad[k]),
                "n_replicates": group.control.n_replicates, "n_fields": group.control.n_fields},
        })
    return {
        "tool": "tools/dose_response.py",
        "version": mcnn.__version__,
        "group_columns": list(group_columns),
        "classes": list(class_names),
        "fitted_classes": list(fit_classes),
        "unit": settings.unit,
        "aggregation": AGGREGATION,
        "mad": {"definition": MAD_DEFINITION, "scale": 1.0},
        "model": MODEL,
        "ci_method": CI_METHOD,
        "settings": {"fit_to": settings.fit_to, "level": settings.level, "alpha": settings.alpha,
                     "min_concentrations": settings.min_concentrations, "min_span": settings.min_span,
                     "plateau_fraction": settings.plateau_fraction,
                     "asymptote_bounds": None if settings.asymptote_bounds is None else list(settings.asymptote_bounds),
                     "control_names": list(settings.control_names), **settings.extra},
        "statuses": dict(STATUSES),
        "curve_statuses": sorted(CURVE_STATUSES),
        "results": entries,
    }


def write_ec50_json(path: str | Path, results: Sequence[CurveResult], group_columns: Sequence[str],
                    class_names: Sequence[str], fit_classes: Sequence[str], settings: DoseSettings) -> Path:
    """Write ``ec50.json``: the settings, the status meanings and per (group, class) every parameter,
    the raw LL.4 curve (``curve``: b, c, d, e as drawn, also when the EC50 is not reported) and the points."""
    doc = _json_value(ec50_document(results, group_columns, class_names, fit_classes, settings))
    return atomic_write_text(path, json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
