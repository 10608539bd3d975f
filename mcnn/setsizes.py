"""Split arithmetic shared by the presets, data_prep and the solver builder."""

from __future__ import annotations

import math
from collections.abc import Iterable


def holdout_count(n: int, fraction: float = 0.1) -> int:
    """Images of one class held out for testing in a per-class random split.

    round(n * fraction), rounding halves up, and at least one image as long as the class
    keeps one for training (n >= 2); 0 for a class of one image.
    """
    if n < 2:
        return 0
    return max(1, min(n - 1, math.floor(n * fraction + 0.5)))


def cv_sizes(class_counts: Iterable[int], fraction: float = 0.1) -> tuple[int, int]:
    """(train, test) set sizes of a per-class split of classes with ``class_counts`` images."""
    counts = list(class_counts)
    test = sum(holdout_count(n, fraction) for n in counts)
    return sum(counts) - test, test


def iterations(images: int, batch: int, epochs: float = 1.0) -> int:
    """Solver iterations for ``epochs`` passes over ``images`` at ``batch`` images each (rounded up)."""
    return max(1, math.ceil(epochs * images / batch))
