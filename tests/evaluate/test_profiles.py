"""Per-well profiles: the medians pycytominer computes, plate by plate, readable by pycytominer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mcnn.errors import TableError
from mcnn.evaluate import profiles
from mcnn.evaluate.profiles import feature_columns, feature_names, probability_columns, well_profiles
from mcnn.tables import read_table

CLASSES = ["control", "hit"]
FEATURES = feature_names("fc1", 6)


def fields_table(seed: int = 0) -> pa.Table:
    """Two plates: P1 with wells A01-A03 (2, 3 and 4 fields), P2 with A01, A02 (1 and 5 fields).

    A01 is DMSO, A02 cmpdA 1 uM, A03 cmpdA 3 uM; ``Metadata_Note`` is constant within the wells
    of P1 but not within P2's A02, so it is no well property.
    """
    rng = np.random.default_rng(seed)
    layout = [("P1", "A01", 2), ("P1", "A02", 3), ("P1", "A03", 4), ("P2", "A01", 1), ("P2", "A02", 5)]
    treatment = {"A01": ("DMSO", "0"), "A02": ("cmpdA", "1"), "A03": ("cmpdA", "3")}
    cols: dict[str, list[object]] = {k: [] for k in ("key", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                                                     "Metadata_Compound", "Metadata_Concentration", "Metadata_Note")}
    for plate, well, n in layout:
        for site in range(n):
            cols["key"].append(f"{len(cols['key']):08d}")
            cols["Metadata_Plate"].append(plate)
            cols["Metadata_Well"].append(well)
            cols["Metadata_Site"].append(str(site + 1))
            cols["Metadata_Compound"].append(treatment[well][0])
            cols["Metadata_Concentration"].append(treatment[well][1])
            cols["Metadata_Note"].append(f"n{site}" if (plate, well) == ("P2", "A02") else "same")
    rows = len(cols["key"])
    p = rng.dirichlet([1.0, 1.0], rows)
    arrays = {k: pa.array(v, pa.string()) for k, v in cols.items()}
    arrays.update({f"prob_{c}": pa.array(p[:, j]) for j, c in enumerate(CLASSES)})
    feats = rng.normal(size=(rows, len(FEATURES))).astype(np.float32)
    arrays.update({c: pa.array(feats[:, j], pa.float32()) for j, c in enumerate(FEATURES)})
    return pa.table(arrays)


@pytest.fixture
def fields(tmp_path: Path) -> Path:
    path = tmp_path / "fields.parquet"
    pq.write_table(fields_table(), path, row_group_size=4)
    return path


def test_feature_names_follow_the_blob_and_pad_to_the_size() -> None:
    assert feature_names("fc1", 3) == ["MCNN_fc1_0000", "MCNN_fc1_0001", "MCNN_fc1_0002"]
    assert feature_names("pool5/7x7_s1", 10001)[-1] == "MCNN_pool5_7x7_s1_10000"
    names = ["Metadata_Plate", "prob_a", "MCNN_fc1_0000", "key", "prob_"]
    assert (feature_columns(names), probability_columns(names)) == (["MCNN_fc1_0000"], ["prob_a"])


def test_well_medians_equal_pycytominer_aggregate(fields: Path, tmp_path: Path) -> None:
    import pycytominer

    result = well_profiles(fields, tmp_path / "wells.parquet", write_csv=True)
    assert (result.plates, result.wells, result.fields) == (2, 5, 15)
    assert result.metadata == ("Metadata_Compound", "Metadata_Concentration")  # Site and Note vary within wells
    wells = pq.read_table(result.path)
    assert wells.column_names[:5] == ["Metadata_Plate", "Metadata_Well", "Metadata_Compound",
                                      "Metadata_Concentration", "Metadata_Fields"]
    assert pq.ParquetFile(result.path).metadata.num_row_groups == 2  # one per plate
    assert wells.column("Metadata_Fields").to_pylist() == [2, 3, 4, 1, 5]
    assert wells.column("Metadata_Compound").to_pylist() == ["DMSO", "cmpdA", "cmpdA", "DMSO", "cmpdA"]

    population = pq.read_table(fields).to_pandas()
    columns = feature_columns(population.columns) + probability_columns(population.columns)
    theirs = pycytominer.aggregate(population, strata=["Metadata_Plate", "Metadata_Well"], features=columns,
                                   operation="median")
    ours = wells.to_pandas()
    assert list(theirs["Metadata_Well"]) == list(ours["Metadata_Well"])
    np.testing.assert_allclose(ours[columns].to_numpy(), theirs[columns].to_numpy(), rtol=0, atol=1e-6)
    # and by hand: the P1 A02 median of an odd count is one of its fields
    table = fields_table()
    rows = [i for i in range(table.num_rows) if table["Metadata_Plate"][i].as_py() == "P1"
            and table["Metadata_Well"][i].as_py() == "A02"]
    by_hand = np.median(table["MCNN_fc1_0003"].to_numpy()[rows].astype(np.float64))
    assert ours["MCNN_fc1_0003"][1] == by_hand

    csv_rows = read_table(result.csv).rows
    assert [float(r["MCNN_fc1_0002"]) for r in csv_rows] == list(ours["MCNN_fc1_0002"])
    assert csv_rows[4]["Metadata_Fields"] == "5"


def test_pycytominer_normalizes_the_wells_against_the_negative_controls(fields: Path, tmp_path: Path) -> None:
    import pycytominer

    wells = pq.read_table(well_profiles(fields, tmp_path / "wells.parquet").path).to_pandas()
    features = feature_columns(wells.columns)
    normalized = pycytominer.normalize(wells, features=features, samples="Metadata_Compound == 'DMSO'",
                                       method="standardize")
    assert list(normalized["Metadata_Well"]) == list(wells["Metadata_Well"])
    dmso = normalized[normalized["Metadata_Compound"] == "DMSO"][features].to_numpy()
    np.testing.assert_allclose(dmso.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(dmso.std(axis=0), 1, atol=1e-9)
    raw = wells[features].to_numpy()
    d = wells[wells["Metadata_Compound"] == "DMSO"][features].to_numpy()
    np.testing.assert_allclose(normalized[features].to_numpy(), (raw - d.mean(0)) / d.std(0), atol=1e-9)


def test_treatments_are_the_median_over_wells(fields: Path, tmp_path: Path) -> None:
    result = well_profiles(fields, tmp_path / "wells.parquet")
    assert result.csv is None and result.treatments == tmp_path / "treatments.csv"
    rows = read_table(result.treatments).rows
    assert [(r["compound"], r["concentration"], r["wells"], r["fields"]) for r in rows] == [
        ("cmpdA", "1.0", "2", "8"), ("cmpdA", "3.0", "1", "4"), ("DMSO", "0.0", "2", "3")]
    wells = pq.read_table(result.path).to_pandas()
    a1 = wells[(wells["Metadata_Compound"] == "cmpdA") & (wells["Metadata_Concentration"] == "1")]
    expected = np.median(a1[["prob_control", "prob_hit"]].to_numpy(), axis=0)
    assert [float(rows[0]["prob_control"]), float(rows[0]["prob_hit"])] == pytest.approx(expected, abs=1e-12)
    assert rows[0]["predicted_class"] == CLASSES[int(np.argmax(expected))]


def test_memory_is_bounded_by_a_plate(fields: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read = profiles._plate_table
    sizes: list[int] = []

    def recording(*args: object) -> pa.Table:
        table = read(*args)  # type: ignore[arg-type]
        sizes.append(table.num_rows)
        return table

    monkeypatch.setattr(profiles, "_plate_table", recording)
    well_profiles(fields, tmp_path / "wells.parquet", treatments=False)
    assert sizes == [9, 6, 9, 6]  # P1 then P2 (metadata pass, median pass): never all 15 fields at once


def test_without_a_plate_column_wells_are_grouped_by_well(tmp_path: Path) -> None:
    table = fields_table().drop_columns(["Metadata_Plate"])
    pq.write_table(table, tmp_path / "fields.parquet")
    result = well_profiles(tmp_path / "fields.parquet", tmp_path / "wells.parquet")
    wells = pq.read_table(result.path)
    assert wells.column("Metadata_Well").to_pylist() == ["A01", "A02", "A03"]
    assert wells.column("Metadata_Fields").to_pylist() == [3, 8, 4]


def test_a_table_without_wells_is_refused(tmp_path: Path) -> None:
    pq.write_table(fields_table().drop_columns(["Metadata_Well"]), tmp_path / "fields.parquet")
    with pytest.raises(TableError, match=r"fields.parquet: no column 'Metadata_Well'"):
        well_profiles(tmp_path / "fields.parquet", tmp_path / "wells.parquet")
    assert not (tmp_path / "wells.parquet").exists()
