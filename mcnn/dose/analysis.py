"""Fit every (group, class) dose series of an aggregated predictions table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mcnn.dose.aggregate import DEFAULT_CONTROLS, GroupData
from mcnn.dose.fit import DoseFit, fit_ll4
from mcnn.errors import ConfigError

#: What the curve is fitted to: the per-concentration medians (the paper, Fig. 3b) or every replicate's
#: median over fields (more residual degrees of freedom; drc's usual data layout).
FIT_TO = ("medians", "replicates")


@dataclass
class DoseSettings:
    """Options of one analysis, written into ec50.json (concentrations in ``unit``)."""

    unit: str = ""
    fit_to: str = "medians"
    level: float = 0.95
    alpha: float = 0.05
    min_concentrations: int = 5
    min_span: float = 0.1
    plateau_fraction: float = 0.2
    asymptote_bounds: tuple[float, float] | None = (0.0, 1.0)
    control_names: tuple[str, ...] = DEFAULT_CONTROLS
    extra: dict[str, object] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the option for values the fit cannot use."""
        if self.fit_to not in FIT_TO:
            raise ConfigError(f"--fit-to {self.fit_to!r}: expected one of {', '.join(FIT_TO)}")
        if not 0 < self.level < 1:
            raise ConfigError(f"--level {self.level}: expected a number between 0 and 1")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha {self.alpha}: expected a number between 0 and 1")
        if self.min_concentrations < 4:
            raise ConfigError(f"--min-concentrations {self.min_concentrations}: a 4-parameter fit needs at least 4")
        if self.min_span < 0:
            raise ConfigError(f"--min-span {self.min_span}: expected a number >= 0")
        if not 0 <= self.plateau_fraction < 0.5:
            raise ConfigError(f"--plateau-fraction {self.plateau_fraction}: expected a number in [0, 0.5)")

    def fit_options(self) -> dict[str, object]:
        """Keyword arguments of :func:`mcnn.dose.fit.fit_ll4`."""
        return {"level": self.level, "alpha": self.alpha, "min_concentrations": self.min_concentrations,
                "min_span": self.min_span, "plateau_fraction": self.plateau_fraction,
                "asymptote_bounds": self.asymptote_bounds}


@dataclass
class CurveResult:
    """The fit of one class's probability over one group's concentrations."""

    group: GroupData
    class_name: str
    class_index: int
    fit: DoseFit


def fit_data(group: GroupData, class_index: int, fit_to: str = "medians") -> tuple[np.ndarray, np.ndarray]:
    """The ``(concentration, response)`` arrays a fit uses (1-D, same length) for one class of a group."""
    if fit_to == "medians":
        return group.concentrations, np.array([p.median[class_index] for p in group.points])
    x = np.concatenate([np.full(p.n_replicates, p.concentration) for p in group.points])
    y = np.concatenate([p.replicate_medians[:, class_index] for p in group.points])
    return x, y


def fit_groups(groups: Sequence[GroupData], class_names: Sequence[str], fit_classes: Sequence[str],
               settings: DoseSettings) -> list[CurveResult]:
    """LL.4 fits of each class in ``fit_classes`` for each group, grouped by group then class order."""
    settings.check()
    results = []
    for group in groups:
        for name in fit_classes:
            k = list(class_names).index(name)
            x, y = fit_data(group, k, settings.fit_to)
            results.append(CurveResult(group=group, class_name=name, class_index=k,
                                       fit=fit_ll4(x, y, **settings.fit_options())))
    return results
