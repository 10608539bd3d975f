"""Whole-screen prediction: streamed Parquet parts, resume after an interruption, stale parts discarded."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mcnn.caffe import io as cio
from mcnn.errors import ConfigError, TableError
from mcnn.evaluate import screen
from mcnn.evaluate.predict import run_model
from mcnn.evaluate.screen import predict_screen
from mcnn.tables import read_table
from tests.support.crosscheck import write_random_caffemodel
from tests.support.tiny import make_setup

CLASSES = ["control", "blob", "stripe"]
WELLS = [("B02", "DMSO", "0"), ("B03", "cmpdA", "1.0"), ("B04", "cmpdA", "3.0")]
FIELDS = 24  # 2 plates x 3 wells x 4 sites


def write_index(path: Path, keys: list[str]) -> Path:
    """An index CSV as data_prep writes it: 2 plates x 3 wells x 4 sites, in key order (labels as the
    tiny LMDB's records: i % 3)."""
    with open(path, "w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                    "Metadata_Compound", "Metadata_Concentration", "Image_FileName_DNA", "Metadata_Augmentation"])
        for i, key in enumerate(keys):
            plate, well, site = f"P{i // 12 + 1}", WELLS[(i // 4) % 3], i % 4 + 1
            w.writerow([key, i % 3, CLASSES[i % 3], plate, well[0], site, well[1], well[2],
                        f"{plate}_{well[0]}_s{site}.tif", "none"])
    return path


@pytest.fixture
def screen_setup(tmp_path: Path) -> dict[str, Path]:
    setup = make_setup(tmp_path / "ds", train_count=3, test_count=FIELDS)
    (tmp_path / "ds" / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    weights = tmp_path / "w.caffemodel"
    write_random_caffemodel(cio.read_net(setup.deploy), weights, seed=3)
    keys = [f"{i:08d}_img{i}" for i in range(FIELDS)]
    index = write_index(tmp_path / "ds" / "test_index.csv", keys)
    return {"deploy": setup.deploy, "weights": weights, "lmdb": setup.root / "test_lmdb", "index": index}


def predict(s: dict[str, Path], out: Path, **kw: object) -> screen.ScreenPrediction:
    return predict_screen(s["deploy"], s["weights"], s["lmdb"], s["index"], out, **kw)  # type: ignore[arg-type]


def test_fields_parquet_holds_run_models_probabilities_and_features(screen_setup: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    s = screen_setup
    result = predict(s, tmp_path / "out", chunk=5, batch_size=4)
    assert (result.fields, result.parts, result.reused_parts) == (FIELDS, 5, 0)
    assert not (tmp_path / "out" / ".parts").exists()
    reference = run_model(s["deploy"], s["weights"], s["lmdb"], index=s["index"], batch_size=4, with_features=True)
    file = pq.ParquetFile(result.fields_parquet)
    assert [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)] == [5, 5, 5, 5, 4]
    table = file.read()
    assert table.column("key").to_pylist() == reference.predictions.keys
    assert str(table.schema.field("Metadata_Well").type) == "string"
    assert str(table.schema.field("Metadata_Concentration").type) == "string"
    assert table.column("label").to_pylist() == [i % 3 for i in range(FIELDS)]
    probs = np.column_stack([table.column(f"prob_{c}").to_numpy() for c in CLASSES])
    np.testing.assert_allclose(probs, reference.predictions.probabilities, atol=1e-6)
    assert result.feature_columns[0] == "MCNN_fc1_0000" and len(result.feature_columns) == 32
    assert str(table.schema.field("MCNN_fc1_0031").type) == "float"
    feats = np.column_stack([table.column(c).to_numpy() for c in result.feature_columns])
    np.testing.assert_allclose(feats, reference.predictions.features, atol=1e-5)
    assert np.abs(feats).max() > 1e-3  # real activations, not zeros
    assert table.column("predicted_label").to_pylist() == probs.argmax(axis=1).tolist()
    csv_table = read_table(result.predictions_csv)
    assert list(csv_table.columns) == [c for c in table.column_names if not c.startswith("MCNN_")]
    assert csv_table.columns[-3:] == tuple(f"prob_{c}" for c in CLASSES)
    assert [float(r["prob_blob"]) for r in csv_table.rows] == table.column("prob_blob").to_pylist()
    assert csv_table.rows[17]["Metadata_Well"] == "B03" and csv_table.rows[17]["Metadata_Plate"] == "P2"


def test_an_interrupted_run_resumes_from_its_finished_parts(screen_setup: dict[str, Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    s = screen_setup
    whole = predict(s, tmp_path / "whole", chunk=5)
    write_part = screen._write_part
    written: list[Path] = []

    def dies_after_two(path: Path, table: object) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt("killed")
        write_part(path, table)  # type: ignore[arg-type]
        written.append(path)

    monkeypatch.setattr(screen, "_write_part", dies_after_two)
    with pytest.raises(KeyboardInterrupt):
        predict(s, tmp_path / "out", chunk=5)
    parts = sorted(p.name for p in (tmp_path / "out" / ".parts").iterdir())
    assert parts == ["manifest.json", "part-00000.parquet", "part-00001.parquet"]
    assert not (tmp_path / "out" / "fields.parquet").exists()
    monkeypatch.setattr(screen, "_write_part", write_part)
    resumed = predict(s, tmp_path / "out", chunk=5)
    assert (resumed.reused_parts, resumed.parts) == (2, 5)
    assert pq.read_table(resumed.fields_parquet).equals(pq.read_table(whole.fields_parquet))
    assert (tmp_path / "out" / "predictions.csv").read_text() == (tmp_path / "whole" / "predictions.csv").read_text()

    # a finished run is not redone: the net is not even loaded
    monkeypatch.setattr(screen, "make_backend", lambda *a: (_ for _ in ()).throw(AssertionError("ran again")))
    again = predict(s, tmp_path / "out", chunk=5)
    assert again.complete and again.fields == FIELDS and again.feature_columns == whole.feature_columns


def test_changed_weights_or_chunk_start_over(screen_setup: dict[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    s = screen_setup
    write_part = screen._write_part
    calls = {"n": 0}

    def dies_after_three(path: Path, table: object) -> None:
        if calls["n"] == 3:
            raise RuntimeError("killed")
        calls["n"] += 1
        write_part(path, table)  # type: ignore[arg-type]

    monkeypatch.setattr(screen, "_write_part", dies_after_three)
    with pytest.raises(RuntimeError):
        predict(s, tmp_path / "out", chunk=4)
    monkeypatch.setattr(screen, "_write_part", write_part)
    old = pq.read_table(tmp_path / "out" / ".parts" / "part-00000.parquet")
    write_random_caffemodel(cio.read_net(s["deploy"]), s["weights"], seed=4)  # new weights, same path
    os.utime(s["weights"], ns=(1, 1))  # an mtime the first run did not see, whatever the clock's resolution
    fresh = predict(s, tmp_path / "out", chunk=4)
    assert fresh.reused_parts == 0
    new = pq.read_table(fresh.fields_parquet)
    reference = predict(s, tmp_path / "reference", chunk=4)
    assert new.equals(pq.read_table(reference.fields_parquet))
    assert not np.allclose(new.column("prob_blob").to_numpy()[:4], old.column("prob_blob").to_numpy())
    # the finished output of other settings is not reused either
    other = predict(s, tmp_path / "out", chunk=6)
    assert (other.complete, other.reused_parts, other.parts) == (False, 0, 4)
    assert pq.read_table(other.fields_parquet).equals(new)


def test_an_index_out_of_key_order_is_refused_before_any_output(screen_setup: dict[str, Path], tmp_path: Path) -> None:
    s = screen_setup
    keys = [f"{i:08d}_img{i}" for i in range(FIELDS)]
    keys[6], keys[7] = keys[7], keys[6]
    write_index(s["index"], keys)
    with pytest.raises(TableError, match=r"test_index.csv: line 8: key '00000007_img7', but record 6 .* key order"):
        predict(s, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    write_index(s["index"], sorted(keys)[:-1])
    with pytest.raises(TableError, match=r"23 rows for the 24 records"):
        predict(s, tmp_path / "out")
    with pytest.raises(ConfigError, match="chunk must be at least 1"):
        predict(s, tmp_path / "out", chunk=0)
    (s["lmdb"].parent / "labels.txt").write_text("a\nb\n")
    with pytest.raises(ConfigError, match="gives 3 probabilities, the labels name 2 classes"):
        predict(s, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pycytominer_aggregates_the_screens_fields_to_our_wells(screen_setup: dict[str, Path], tmp_path: Path) -> None:
    import pycytominer

    from mcnn.evaluate.profiles import probability_columns, well_profiles

    result = predict(screen_setup, tmp_path / "out", chunk=7)
    wells = well_profiles(result.fields_parquet, tmp_path / "out" / "wells.parquet")
    assert (wells.plates, wells.wells, wells.fields) == (2, 6, FIELDS)
    # Metadata_Augmentation is constant per well and kept; the site is not
    assert wells.metadata == ("Metadata_Compound", "Metadata_Concentration", "Metadata_Augmentation")
    fields = pq.read_table(result.fields_parquet).to_pandas()
    columns = list(result.feature_columns) + probability_columns(fields.columns)
    theirs = pycytominer.aggregate(fields, strata=["Metadata_Plate", "Metadata_Well"], features=columns)
    ours = pq.read_table(wells.path).to_pandas()
    keys = ["Metadata_Plate", "Metadata_Well"]
    assert theirs[keys].values.tolist() == ours[keys].values.tolist()
    np.testing.assert_allclose(ours[columns].to_numpy(), theirs[columns].to_numpy(), rtol=0, atol=1e-6)
    treatments = read_table(wells.treatments).rows
    assert [(r["compound"], r["concentration"], r["wells"], r["fields"]) for r in treatments] == [
        ("cmpdA", "1.0", "2", "8"), ("cmpdA", "3.0", "2", "8"), ("DMSO", "0.0", "2", "8")]
