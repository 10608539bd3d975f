"""Dose-response plots in the style of the paper's Fig. 3b (one class) and Fig. 5b (every class).

Conventions: concentration on a log x axis, probability on y (0 to 1); points are the median over
replicates with the raw MAD as error bars; the fitted LL.4 curve is drawn (solid for ``ok`` fits,
dashed grey for fits whose EC50 is not reported); the EC50 of an ``ok`` fit is a diamond on the curve
with a dotted drop line; concentrations in the training set are circled with a dashed line; the
group's controls, when the predictions have any, are drawn as open squares at a pseudo-dose of
``lowest concentration / 10`` (thunor's convention) and are not part of the fit.

Figures are built with :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state) and written
with :func:`mcnn.fsutil.atomic_write_bytes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from mcnn.dose.aggregate import GroupData
from mcnn.dose.analysis import CurveResult
from mcnn.dose.fit import CURVE_STATUSES, OK, DoseFit
from mcnn.figures import save_figure

CONTROL_DOSE_DIVISOR = 10.0
PROMINENT = 0.2  # Fig. 5b: classes whose median reaches this are labelled
_SMOOTH = 200


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def group_label(group: GroupData) -> str:
    """The group's values joined by `` / `` (the compound name with the default ``--group``)."""
    return " / ".join(v or "(blank)" for v in group.key)


def _xlabel(unit: str) -> str:
    return f"concentration ({unit})" if unit else "concentration"


def _x_range(group: GroupData) -> tuple[float, float]:
    x = group.concentrations
    lo, hi = float(x.min()), float(x.max())
    if group.control is not None:
        lo = lo / CONTROL_DOSE_DIVISOR
    return lo / 1.6, hi * 1.6


def _n_text(group: GroupData) -> str:
    reps = sorted({p.n_replicates for p in group.points})
    return f"n = {reps[0]}" if len(reps) == 1 else f"n = {reps[0]}-{reps[-1]}"


def _draw_training(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    if x.size:
        ax.scatter(x, y, s=260, facecolors="none", edgecolors="black", linewidths=1.0, linestyles="--", zorder=4,
                   label="in training set")


def _draw_control(ax: Axes, group: GroupData, k: int, color: str, label: str | None) -> None:
    if group.control is None:
        return
    dose = float(group.concentrations.min()) / CONTROL_DOSE_DIVISOR
    ax.errorbar([dose], [group.control.median[k]], yerr=[group.control.mad[k]], fmt="s", mfc="white", color=color,
                ms=5, capsize=2, zorder=3, label=label)


def _dose_tick(value: float, _pos: object = None) -> str:
    return f"{value:g}"


def _finish(ax: Axes, group: GroupData, unit: str, ylabel: str) -> None:
    ax.set_xscale("log")
    # Plain "0.01, 0.1, 1" labels: no mathtext (slow to lay out) and what the paper's axes show.
    ax.xaxis.set_major_locator(LogLocator(base=10.0))
    ax.xaxis.set_major_formatter(FuncFormatter(_dose_tick))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(*_x_range(group))
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(_xlabel(unit))
    ax.set_ylabel(ylabel)
    ax.set_title(f"{group_label(group)} ({_n_text(group)})", fontsize=10)


def _curve_x(group: GroupData) -> np.ndarray:
    x = group.concentrations
    return np.logspace(math.log10(x.min()) - 0.15, math.log10(x.max()) + 0.15, _SMOOTH)


def ec50_text(fit: DoseFit, unit: str) -> str:
    """``EC50 = 1.2 µM [0.8, 1.9]`` for an ``ok`` fit; otherwise the status (and the bound, if any)."""
    u = f" {unit}" if unit else ""
    if fit.status == OK:
        ci = (f" [{_fmt(fit.ec50_ci_low)}, {_fmt(fit.ec50_ci_high)}]"
              if math.isfinite(fit.ec50_ci_low) and math.isfinite(fit.ec50_ci_high) else "")
        return f"EC50 = {_fmt(fit.ec50)}{u}{ci}"
    bound = f" (EC50 {fit.ec50_bound}{u})" if fit.ec50_bound else ""
    return f"no EC50: {fit.status}{bound}"


def draw_single(ax: Axes, result: CurveResult, unit: str = "") -> None:
    """Fig. 3b panel: one class's median +/- MAD per concentration, the LL.4 curve and the EC50."""
    group, k, fit = result.group, result.class_index, result.fit
    x = group.concentrations
    med = np.array([p.median[k] for p in group.points])
    mad = np.array([p.mad[k] for p in group.points])
    train = np.array([p.training for p in group.points], dtype=bool)
    ax.errorbar(x, med, yerr=mad, fmt="o", color="tab:blue", ms=5, capsize=2, zorder=3, label="median ± MAD")
    _draw_training(ax, x[train], med[train])
    _draw_control(ax, group, k, "0.45", f"control (at min/{CONTROL_DOSE_DIVISOR:g})")
    if fit.curve is not None and fit.status in CURVE_STATUSES:
        xs = _curve_x(group)
        style = {"color": "black", "lw": 1.5} if fit.status == OK else {"color": "0.5", "lw": 1.0, "ls": "--"}
        ax.plot(xs, fit.curve(xs), zorder=2, label="LL.4 fit", **style)
        if fit.status == OK:
            y50 = float(fit.curve(fit.ec50))
            ax.plot([fit.ec50, fit.ec50], [-0.05, y50], ls=":", color="black", lw=1)
            ax.plot([fit.ec50], [y50], "D", color="tab:red", ms=6, zorder=5, label="EC50")
    ax.text(0.03, 0.95, ec50_text(fit, unit), transform=ax.transAxes, va="top", fontsize=8)
    _finish(ax, group, unit, f"P({result.class_name})")
    ax.legend(loc="best", fontsize=7, frameon=False)


def draw_multiclass(ax: Axes, group: GroupData, class_names: Sequence[str], results: Sequence[CurveResult],
                    unit: str = "") -> None:
    """Fig. 5b panel: every class's median +/- MAD joined by a line (the fitted curve for ``ok`` fits),
    EC50 diamonds, prominent classes (median >= 0.2 somewhere) labelled, training concentrations circled
    on the top class; the legend lists the prominent and the ``ok`` classes with their EC50."""
    x = group.concentrations
    med = np.array([p.median for p in group.points])  # (n_points, n_classes)
    mad = np.array([p.mad for p in group.points])
    fits = {r.class_index: r.fit for r in results}
    palette = [f"C{i}" for i in range(10)] + ["tab:olive", "black", "darkgoldenrod", "navy", "teal"]
    xs = _curve_x(group)
    for k, name in enumerate(class_names):
        color = palette[k % len(palette)]
        prominent = bool(np.nanmax(med[:, k]) >= PROMINENT) if med.size else False
        fit = fits.get(k)
        label = None
        if fit is not None and fit.status == OK:
            label = f"{name}: {ec50_text(fit, unit)}"
        elif prominent:
            label = name if fit is None else f"{name}: {ec50_text(fit, unit)}"
        ax.errorbar(x, med[:, k], yerr=mad[:, k], fmt="o", color=color, ms=3.5, capsize=1.5, lw=0.8, zorder=3,
                    label=label)
        if fit is not None and fit.status == OK and fit.curve is not None:
            ax.plot(xs, fit.curve(xs), color=color, lw=1.4, zorder=2)
            ax.plot([fit.ec50], [float(fit.curve(fit.ec50))], "D", color=color, mec="black", ms=5, zorder=5)
        else:
            ax.plot(x, med[:, k], color=color, lw=0.9, zorder=2)
        _draw_control(ax, group, k, color, None)
        if prominent:
            i = int(np.nanargmax(med[:, k]))
            ax.annotate(name, (x[i], med[i, k]), textcoords="offset points", xytext=(4, 6), fontsize=7, color=color)
    train = np.array([p.training for p in group.points], dtype=bool)
    if train.any():
        top = med[train].argmax(axis=1)
        _draw_training(ax, x[train], med[train][np.arange(top.size), top])
    _finish(ax, group, unit, "probability")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False, borderaxespad=0)



def plot_group(path: str | Path, group: GroupData, class_names: Sequence[str], results: Sequence[CurveResult],
               unit: str = "", multiclass: bool = False) -> Path:
    """Write one group's PNG: a Fig. 3b panel (``multiclass`` False, the first result's class) or Fig. 5b."""
    fig = Figure(figsize=(7.5 if multiclass else 5.0, 3.8))
    fig.subplots_adjust(left=0.09 if multiclass else 0.13, right=0.64 if multiclass else 0.97,
                        bottom=0.13, top=0.92)
    ax = fig.add_subplot()
    if multiclass:
        draw_multiclass(ax, group, class_names, results, unit)
    else:
        draw_single(ax, results[0], unit)
    return save_figure(fig, path, dpi=120)


def plot_overview(path: str | Path, groups: Sequence[GroupData], class_names: Sequence[str],
                  results: Sequence[CurveResult], unit: str = "", multiclass: bool = False,
                  columns: int = 4) -> Path:
    """Write a grid with one panel per group (like Fig. 3b's grid of treatments)."""
    rows = max(1, math.ceil(len(groups) / columns))
    cols = min(columns, max(1, len(groups)))
    fig = Figure(figsize=((7.0 if multiclass else 4.2) * cols, 3.4 * rows), layout="constrained")
    for i, group in enumerate(groups):
        ax = fig.add_subplot(rows, cols, i + 1)
        mine = [r for r in results if r.group is group]
        if multiclass:
            draw_multiclass(ax, group, class_names, mine, unit)
        elif mine:
            draw_single(ax, mine[0], unit)
    return save_figure(fig, path, dpi=120)
