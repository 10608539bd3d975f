"""The published numbers our reproduction is compared with: the paper's Table 1.

Accuracy in percent with the SD in parentheses; the statistic (median or mean over the 50
repeats, for BBBC021 over the 12 per-MoA accuracies) follows the table's footnote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One dataset's row of Table 1: the statistic, the benchmark and the accuracy (%, SD) per architecture."""

    statistic: str                              # "median" or "mean"
    benchmark: tuple[float, float | None, str]  # accuracy (%), SD, method
    accuracy: Mapping[str, tuple[float, float]]

    def arch(self, name: str) -> tuple[float, float] | None:
        """(accuracy %, SD) the paper gives for architecture ``name``; None for one it did not test."""
        return self.accuracy.get(name)


def _row(statistic: str, benchmark: tuple[float, float | None, str], alexnet: tuple[float, float],
         googlenet: tuple[float, float], mcnn: tuple[float, float]) -> Published:
    return Published(statistic, benchmark, {"alexnet": alexnet, "googlenet": googlenet, "mcnn": mcnn})


TABLE1: dict[str, Published] = {
    "bbbc013": _row("median", (99, 1, "CP-CHARM"), (50, 0), (50, 7), (100, 0)),
    "bbbc014": _row("median", (84, 3, "CP-CHARM"), (50, 4), (50, 4), (100, 14)),
    "bbbc015": _row("median", (99, 0.8, "CP-CHARM"), (50, 0), (50, 7), (100, 0)),
    "bbbc016": _row("median", (81, 7, "CP-CHARM"), (50, 0), (50, 24), (100, 0)),
    "hela": _row("mean", (95, 0, "Chebira et al. 2007"), (11, 0), (92, 3), (91, 3)),
    "cho": _row("median", (99, 0.3, "CP-CHARM"), (29, 0), (91, 5), (94, 4)),
    "hpa": _row("mean", (83, None, "Coelho et al. 2013"), (63, 5), (79, 3), (77, 3)),
    "bbbc021": _row("median", (97, 9, "Ljosa et al. 2013"), (65, 31), (86, 30), (100, 13)),
}
