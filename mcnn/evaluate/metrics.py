"""Classification metrics and the statistics the paper reports over repeated splits.

Accuracy per repeat is the trace of the confusion matrix over its total (the paper's §2.4);
over repeats we report the mean, the standard deviation, the median and the median absolute
deviation. The SD is the population SD (ddof = 0): with it, the paper's BBBC021 "100 (13)"
is reproduced from the 12 per-MoA accuracies (SD 12.7); the MAD is the raw
median(|x - median(x)|) (scale 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


def confusion_matrix(true: Sequence[int] | np.ndarray, predicted: Sequence[int] | np.ndarray,
                     classes: int) -> np.ndarray:
    """``classes x classes`` counts: row = true class, column = predicted class."""
    t = np.asarray(true, dtype=np.int64)
    p = np.asarray(predicted, dtype=np.int64)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels for {p.size} predictions")
    if t.size and (t.min() < 0 or t.max() >= classes or p.min() < 0 or p.max() >= classes):
        raise ValueError(f"labels must lie in 0..{classes - 1}")
    cm = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def accuracy(cm: np.ndarray) -> float:
    """Trace over total (NaN for an empty matrix)."""
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Diagonal over row sums (recall per true class); NaN for classes without samples."""
    rows = cm.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(cm) / rows, np.nan)


@dataclass(frozen=True)
class RepeatStats:
    """Summary of one number over repeats (or over classes): n, mean, SD, median, MAD."""

    n: int
    mean: float
    sd: float
    median: float
    mad: float

    def as_dict(self) -> dict[str, float]:
        """The fields as a dict (n, mean, sd, median, mad)."""
        return asdict(self)


def summarize(values: Sequence[float] | np.ndarray) -> RepeatStats:
    """Mean, population SD, median and raw MAD of the finite ``values``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return RepeatStats(0, nan, nan, nan, nan)
    median = float(np.median(v))
    return RepeatStats(n=int(v.size), mean=float(v.mean()), sd=float(v.std(ddof=0)), median=median,
                       mad=float(np.median(np.abs(v - median))))
