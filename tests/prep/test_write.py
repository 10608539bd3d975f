"""One LMDB unit with its index CSV, list file and mean (mcnn.prep.write)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe.io import read_binaryproto
from mcnn.datasets.base import Field
from mcnn.prep.write import Record, UnitWriter
from tests.support.prepared import read_index, read_lmdb

CHANNELS = ("DNA", "actin")


def _record(name: str, label: int, value: int, transform: str = "none") -> Record:
    meta = {"Metadata_Plate": "P1", "Metadata_Compound": "taxol, 0.3 uM"}  # a comma: quoted in the CSV
    field = Field(name, (f"{name}_d0.tif", f"{name}_d1.tif"), meta, plate="P1")
    return Record(name if transform == "none" else f"{name}/{transform}", label, field, transform,
                  np.full((2, 3, 4), value, np.uint8))


def _writer(tmp_path: Path, **sidecars: Path) -> UnitWriter:
    return UnitWriter(tmp_path / "train_lmdb", tmp_path / "train_index.csv", ("neg", "pos"),
                      ("Metadata_Plate", "Metadata_Compound"), CHANNELS, 2 * 3 * 4 + 64, **sidecars)


def test_unit_holds_records_index_list_and_mean(tmp_path: Path) -> None:
    with _writer(tmp_path, listfile=tmp_path / "train.txt", mean=tmp_path / "mean.binaryproto") as writer:
        writer.add(_record("a", 1, 10))
        writer.add(_record("a", 1, 20, "rot90"))
        writer.add(_record("b", 0, 60))
    records = read_lmdb(tmp_path / "train_lmdb")
    assert [(k, label) for k, label, _ in records] == [("00000000_a", 1), ("00000001_a/rot90", 1), ("00000002_b", 0)]
    text = (tmp_path / "train_index.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ("key,label,class_name,Metadata_Plate,Metadata_Compound,Image_FileName_DNA,"
                                    "Image_FileName_actin,Metadata_Augmentation")
    assert text.splitlines()[1] == '00000000_a,1,pos,P1,"taxol, 0.3 uM",a_d0.tif,a_d1.tif,none'
    assert "\r" not in text
    rows = read_index(tmp_path / "train_index.csv")
    assert [(r["class_name"], r["Metadata_Augmentation"]) for r in rows] == [("pos", "none"), ("pos", "rot90"),
                                                                            ("neg", "none")]
    assert (tmp_path / "train.txt").read_text().splitlines() == ["a_d0.tif 1", "b_d0.tif 0"]
    mean = read_binaryproto(tmp_path / "mean.binaryproto")
    assert mean.shape == (1, 2, 3, 4) and np.allclose(mean, 30.0)


def test_unlabelled_records_have_no_class_name(tmp_path: Path) -> None:
    with _writer(tmp_path) as writer:
        writer.add(_record("d", -1, 5))
    assert [(r["label"], r["class_name"]) for r in read_index(tmp_path / "train_index.csv")] == [("-1", "")]


def test_a_failed_unit_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="stop"), _writer(tmp_path, listfile=tmp_path / "train.txt") as writer:
        writer.add(_record("a", 0, 1))
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_lmdb_leaves_no_sidecar_under_its_final_name(tmp_path, monkeypatch) -> None:
    from mcnn.caffe.datum import LmdbWriter

    def disk_full(self: LmdbWriter) -> None:
        raise OSError(28, "No space left on device", str(self.partial))

    monkeypatch.setattr(LmdbWriter, "close", disk_full)
    writer = UnitWriter(tmp_path / "dose_lmdb", tmp_path / "dose_index.csv", ["a"], ["Metadata_Plate"], ["DNA"],
                        64, listfile=tmp_path / "dose.txt", mean=tmp_path / "mean.binaryproto")
    field = Field("P1/A01/s1", ("P1/a.tif",), {"Metadata_Plate": "P1"})
    writer.add(Record("P1/A01/s1", 0, field, "none", np.zeros((1, 4, 4), np.uint8)))
    try:
        writer.finish()
    except OSError as exc:
        assert exc.errno == 28
    else:
        raise AssertionError("finish() did not raise")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no index, list, mean or partial LMDB left
