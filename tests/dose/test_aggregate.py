"""Field -> replicate -> concentration aggregation on a hand-computed example, and input errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mcnn.dose.aggregate import (
    aggregate,
    class_columns,
    mark_training,
    read_table,
    resolve_classes,
    resolve_group_columns,
    training_concentrations,
)
from mcnn.dose.analysis import fit_data
from mcnn.errors import TableError

HEADER = ["key", "Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
          "Metadata_Replicate", "predicted_label", "predicted_class", "prob_neg", "prob_pos"]

# (plate, well, compound, concentration, replicate, prob_pos per field)
EXAMPLE = [
    ("P1", "B02", "A", "1", "1", [0.1, 0.3, 0.2]),  # replicate median 0.2
    ("P2", "B02", "A", "1", "2", [0.5, 0.7]),  # 0.6
    ("P1", "C02", "A", "1", "3", [0.4]),  # 0.4 -> median 0.4, MAD median(0.2, 0.2, 0) = 0.2
    ("P1", "B03", "A", "10", "1", [0.8, 0.9, 1.0, 0.7]),  # 0.85
    ("P2", "B03", "A", "10.0", "2", [0.6]),  # 0.6 -> median 0.725, MAD 0.125
    ("P1", "A01", "DMSO", "0", "1", [0.0, 0.1]),  # control well 0.05
    ("P2", "A01", "DMSO", "0", "1", [0.2]),  # control well 0.2 -> A's controls: median 0.125, MAD 0.075
    ("P3", "A01", "DMSO", "0", "1", [0.9]),  # on B's plate only
    ("P3", "B02", "B", "3", "1", [0.5]),
]


def write_rows(path: Path, rows: list[tuple], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for plate, well, compound, conc, rep, probs in rows:
            for site, p in enumerate(probs, start=1):
                full = {"key": f"{plate}/{well}/s{site}", "Metadata_Plate": plate, "Metadata_Well": well,
                        "Metadata_Site": site, "Metadata_Compound": compound, "Metadata_Concentration": conc,
                        "Metadata_Replicate": rep, "predicted_label": int(p > 0.5),
                        "predicted_class": "pos" if p > 0.5 else "neg", "prob_neg": round(1 - p, 6), "prob_pos": p}
                writer.writerow([full[c] for c in header])
    return path


def test_hand_computed_medians_and_mad(tmp_path: Path) -> None:
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE))
    groups = aggregate(table, ("Metadata_Compound",))
    assert [g.key for g in groups] == [("A",), ("B",)]
    a = groups[0]
    assert a.concentrations.tolist() == [1.0, 10.0]  # "10" and "10.0" are one concentration
    one, ten = a.points
    assert one.replicates == ("1", "2", "3") and one.n_fields == 6
    assert one.replicate_medians[:, 1] == pytest.approx([0.2, 0.6, 0.4])
    assert one.median[1] == pytest.approx(0.4) and one.mad[1] == pytest.approx(0.2)
    assert one.median[0] == pytest.approx(0.6) and one.mad[0] == pytest.approx(0.2)
    assert ten.median[1] == pytest.approx(0.725) and ten.mad[1] == pytest.approx(0.125)
    assert ten.n_replicates == 2 and ten.n_fields == 5
    assert a.control is not None
    assert a.control.median[1] == pytest.approx(0.125) and a.control.mad[1] == pytest.approx(0.075)
    assert a.control.n_replicates == 2  # P1/A01 and P2/A01; P3's well is not on A's plates
    b = groups[1]
    assert b.control is not None and b.control.median[1] == pytest.approx(0.9)
    x, y = fit_data(a, 1, "medians")
    assert x.tolist() == [1.0, 10.0] and y == pytest.approx([0.4, 0.725])
    x, y = fit_data(a, 1, "replicates")
    assert x.tolist() == [1.0, 1.0, 1.0, 10.0, 10.0] and y == pytest.approx([0.2, 0.6, 0.4, 0.85, 0.6])


def test_replicates_fall_back_to_plate_and_well(tmp_path: Path) -> None:
    header = [c for c in HEADER if c != "Metadata_Replicate"]
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE, header))
    one = aggregate(table, ("Metadata_Compound",))[0].points[0]
    assert one.replicates == ("P1/B02", "P1/C02", "P2/B02")
    assert one.median[1] == pytest.approx(0.4) and one.mad[1] == pytest.approx(0.2)


def test_nan_probability_propagates_to_the_median(tmp_path: Path) -> None:
    rows = [*EXAMPLE[:1], ("P2", "B02", "A", "1", "2", [0.5, float("nan")]), *EXAMPLE[2:]]
    path = write_rows(tmp_path / "p.csv", rows)
    assert ",nan,nan\n" in path.read_text()
    one, ten = aggregate(read_table(path), ("Metadata_Compound",))[0].points
    assert np.isnan(one.median[1]) and np.isnan(one.mad[1])
    assert ten.median[1] == pytest.approx(0.725)


def test_training_concentrations_are_marked(tmp_path: Path) -> None:
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE))
    groups = aggregate(table, ("Metadata_Compound",))
    train = read_table(write_rows(tmp_path / "train.csv", [("P9", "B02", "A", "10.0000001", "1", [0.9]),
                                                           ("P9", "B03", "A", "30", "1", [0.9]),
                                                           ("P9", "A01", "DMSO", "0", "1", [0.1])]))
    seen = training_concentrations(train, ("Metadata_Compound",))
    assert seen == {("A",): {10.0000001, 30.0}}
    mark_training(groups, seen)
    assert [p.training for p in groups[0].points] == [False, True]
    assert groups[0].training_concentrations == [10.0000001, 30.0]
    assert groups[1].training_concentrations == []


def test_class_selection(tmp_path: Path) -> None:
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE))
    assert class_columns(table) == [("neg", "prob_neg"), ("pos", "prob_pos")]
    assert resolve_classes(table, []) == ["pos"]  # 2 classes: the positive one
    assert resolve_classes(table, ["prob_neg", "POS", "neg"]) == ["neg", "pos"]
    header = [*HEADER, "prob_third"]
    path = tmp_path / "three.csv"
    path.write_text(",".join(header) + "\n")
    assert resolve_classes(read_table(path), []) == ["neg", "pos", "third"]  # multi-class: every class


def test_group_columns(tmp_path: Path) -> None:
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE))
    assert resolve_group_columns(table, None) == ("Metadata_Compound",)
    assert resolve_group_columns(table, "compound") == ("Metadata_Compound",)
    assert resolve_group_columns(table, "Metadata_Compound,plate") == ("Metadata_Compound", "Metadata_Plate")
    with pytest.raises(TableError, match=r"p\.csv: no column 'cellline' for --group"):
        resolve_group_columns(table, "cellline")
    header = [*HEADER, "Metadata_CellLine"]
    (tmp_path / "cells.csv").write_text(",".join(header) + "\n")
    assert resolve_group_columns(read_table(tmp_path / "cells.csv"), None) == ("Metadata_Compound",
                                                                              "Metadata_CellLine")


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("Metadata_Concentration", r"p\.csv: no column 'Metadata_Concentration'"),
        ("Metadata_Compound", r"p\.csv: no column 'Metadata_Compound' \(--group\)"),
    ],
)
def test_missing_columns_are_named(tmp_path: Path, drop: str, message: str) -> None:
    header = [c for c in HEADER if c != drop]
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE, header))
    with pytest.raises(TableError, match=message):
        aggregate(table, ("Metadata_Compound",))


def test_no_replicate_information(tmp_path: Path) -> None:
    header = [c for c in HEADER if c not in ("Metadata_Replicate", "Metadata_Well")]
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE, header))
    with pytest.raises(TableError, match=r"no column 'Metadata_Replicate' \(or Metadata_Plate and Metadata_Well"):
        aggregate(table, ("Metadata_Compound",))


def test_no_probability_columns(tmp_path: Path) -> None:
    header = [c for c in HEADER if not c.startswith("prob_")]
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE, header))
    with pytest.raises(TableError, match=r"p\.csv: no probability columns"):
        aggregate(table, ("Metadata_Compound",))


def test_unknown_class(tmp_path: Path) -> None:
    table = read_table(write_rows(tmp_path / "p.csv", EXAMPLE))
    with pytest.raises(TableError, match=r"p\.csv: no column 'prob_MD' for --class 'MD' \(classes: neg, pos\)"):
        resolve_classes(table, ["MD"])


@pytest.mark.parametrize(("value", "column"), [("1 uM", "Metadata_Concentration"), ("high", "prob_pos")])
def test_non_numeric_values(tmp_path: Path, value: str, column: str) -> None:
    rows = [*EXAMPLE[:2], ("P1", "C02", "A", "1", "3", [0.4])]
    path = write_rows(tmp_path / "p.csv", rows)
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[HEADER.index(column)] = value
    lines[3] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TableError, match=rf"p\.csv: line 4: column '{column}': '{value}' is not a number"):
        aggregate(read_table(path), ("Metadata_Compound",))


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("")
    with pytest.raises(TableError, match="empty file"):
        read_table(tmp_path / "p.csv")
