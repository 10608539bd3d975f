"""Statistics and aggregation on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from mcnn.evaluate.aggregate import Treatment, aggregate_treatments
from mcnn.evaluate.metrics import accuracy, confusion_matrix, per_class_accuracy, summarize
from mcnn.evaluate.moa import classify_treatments
from mcnn.evaluate.profiling import nearest_moa, nn_accuracy


def test_confusion_accuracy_per_class() -> None:
    cm = confusion_matrix([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], 4)
    assert cm.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert accuracy(cm) == pytest.approx(4 / 6)
    per = per_class_accuracy(cm)
    assert per[:3] == pytest.approx([0.5, 2 / 3, 1.0]) and np.isnan(per[3])
    with pytest.raises(ValueError, match=r"0\.\.3"):
        confusion_matrix([4], [0], 4)


def test_repeat_statistics() -> None:
    s = summarize([0.9, 1.0, 0.8, 1.0, float("nan")])
    assert s.n == 4
    assert s.mean == pytest.approx(0.925)
    assert s.sd == pytest.approx(np.sqrt(0.0275 / 4))  # population SD
    assert s.median == pytest.approx(0.95)
    assert s.mad == pytest.approx(0.05)                 # median(|x - 0.95|) = median(.05, .05, .15, .05)


def test_median_over_fields_then_over_wells() -> None:
    rows, values = [], []
    for well, fields in (("A01", [0.1, 0.2, 0.9]), ("A02", [0.8, 0.85]), ("A03", [0.7])):
        for v in fields:
            rows.append({"Metadata_Compound": "X", "Metadata_Concentration": "1.0", "Metadata_Plate": "P1",
                         "Metadata_Well": well, "Metadata_MoA": "m"})
            values.append([v, 1 - v])
    rows.append({"Metadata_Compound": "X", "Metadata_Concentration": "1", "Metadata_Plate": "P2",
                 "Metadata_Well": "A01", "Metadata_MoA": "m"})  # "1" and "1.0" are the same concentration
    values.append([0.75, 0.25])
    (t,) = aggregate_treatments(rows, np.array(values))
    # well medians 0.2, 0.825, 0.7, 0.75 -> median 0.725 (a plain median of all 7 fields would be 0.75)
    assert (t.wells, t.fields) == (4, 7)
    assert t.vector == pytest.approx([0.725, 0.275])


def test_table1_statistic_of_the_paper() -> None:
    """BBBC021: 9 MoAs at 100 %, MD 11/14, MS 8/9, PD 4/7 -> median 100, population SD 12.7, 96/103."""
    counts = {"Actin disruptors": 5, "Aurora kinase inhibitors": 12, "Cholesterol-lowering": 6, "DNA damage": 9,
              "DNA replication": 8, "Eg5 inhibitors": 12, "Epithelial": 8, "Kinase inhibitors": 5,
              "Microtubule destabilizers": 14, "Microtubule stabilizers": 9, "Protein degradation": 7,
              "Protein synthesis": 8}
    wrong = {"Microtubule destabilizers": 3, "Microtubule stabilizers": 1, "Protein degradation": 3}
    classes = list(counts)
    treatments = []
    for k, (moa, n) in enumerate(counts.items()):
        for i in range(n):
            vector = np.full(len(classes), 0.01)
            guess = (k + 1) % len(classes) if i < wrong.get(moa, 0) else k
            vector[guess] = 0.9
            treatments.append(Treatment(f"{moa}-{i}", 1.0, vector, 3, 12, moa=moa))
    result = classify_treatments(treatments, classes)
    assert sum(counts.values()) == 103
    assert result.treatment_accuracy == pytest.approx(96 / 103)
    assert result.per_moa["Microtubule destabilizers"] == pytest.approx(11 / 14)
    assert result.table1.median == pytest.approx(1.0)
    assert round(100 * result.table1.sd) == 13 and result.table1.sd == pytest.approx(0.1267, abs=1e-3)
    assert int(np.trace(result.confusion)) == 96


def _t(compound: str, moa: str, batch: str, vector: list[float]) -> Treatment:
    return Treatment(compound, 1.0, np.array(vector, float), 3, 12, moa=moa, batches=(batch,))


def test_nsc_and_nscb_hold_outs() -> None:
    a = _t("A", "X", "w1", [1.0, 0.0, 0.0])
    a2 = _t("A", "X", "w1", [1.0, 0.05, 0.0])       # same compound: never a neighbour of A
    b = _t("B", "Y", "w1", [0.9, 0.1, 0.0])         # same batch as A, wrong MoA, nearest otherwise
    c = _t("C", "X", "w2", [0.5, 0.5, 0.0])         # other batch, right MoA
    d = _t("D", "Z", "w3", [0.0, 0.0, 1.0])         # MoA Z exists in one batch only
    pool = [a, a2, b, c, d]
    nsc = {r.query.compound: r for r in nearest_moa([a, d], pool, "NSC")}
    assert nsc["A"].neighbour is b and not nsc["A"].correct
    nscb = nearest_moa([a, d], pool, "NSCB")
    assert [r.query.compound for r in nscb] == ["A"]  # D's MoA occurs in no other batch: left out
    assert nscb[0].neighbour is c and nscb[0].correct
    assert nn_accuracy(nscb) == 1.0 and nn_accuracy([]) != nn_accuracy([])  # NaN without queries
