"""Mechanism-of-action results on BBBC021 (the paper's §3.3, Fig. 5a and Table 1).

Each treatment's aggregated probability vector (see :mod:`mcnn.evaluate.aggregate`) is
classified by its argmax and compared with the annotated MoA. The paper's Table 1 statistic
for BBBC021 is the median and SD over the per-MoA accuracies ("100 (13)"), which corresponds
to 96 of 103 treatments; we report that and the overall treatment accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcnn.evaluate.aggregate import Treatment
from mcnn.evaluate.metrics import RepeatStats, accuracy, confusion_matrix, per_class_accuracy, summarize


@dataclass
class MoaResult:
    """Treatment-level MoA classification."""

    classes: list[str]
    confusion: np.ndarray            # rows: annotated MoA, columns: predicted
    per_moa: dict[str, float]        # accuracy per annotated MoA present
    treatment_accuracy: float        # correct treatments / treatments
    table1: RepeatStats              # over the per-MoA accuracies
    predictions: list[tuple[Treatment, str]]


def classify_treatments(treatments: Sequence[Treatment], classes: Sequence[str]) -> MoaResult:
    """Argmax of each treatment's probability vector against its annotated MoA."""
    classes = list(classes)
    index = {name: i for i, name in enumerate(classes)}
    true, predicted, pairs = [], [], []
    for t in treatments:
        if t.moa not in index:
            raise ValueError(f"treatment {t.compound} {t.concentration:g}: MoA {t.moa!r} is not a class "
                             f"({', '.join(classes)})")
        guess = int(np.argmax(t.vector))
        true.append(index[t.moa])
        predicted.append(guess)
        pairs.append((t, classes[guess]))
    cm = confusion_matrix(true, predicted, len(classes))
    per_class = per_class_accuracy(cm)
    per_moa = {name: float(per_class[i]) for i, name in enumerate(classes) if cm[i].sum() > 0}
    return MoaResult(classes=classes, confusion=cm, per_moa=per_moa, treatment_accuracy=accuracy(cm),
                     table1=summarize(list(per_moa.values())), predictions=pairs)
