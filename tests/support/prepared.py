"""Prepared datasets in tests: run :func:`mcnn.prep.prepare` and check what it wrote.

Reads back LMDBs, index CSVs, list files and means with the low-level readers (``csv``, LMDB,
binaryproto), independently of :func:`mcnn.prep.load_prepared`'s own checks.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np

from mcnn.caffe.datum import LmdbReader, datum_to_array
from mcnn.caffe.io import read_binaryproto
from mcnn.prep import PrepOptions, PrepResult, load_prepared, prepare

KEY = re.compile(r"^(\d{8})_(.+)$")


def run_prepare(dataset: str, raw: Path, out: Path, **kwargs: object) -> PrepResult:
    """prepare() in this process, one worker, no progress bars, 2 repeats unless given."""
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("repeats", 2)
    kwargs.setdefault("quiet", True)
    return prepare(dataset, raw, out, PrepOptions(**kwargs))  # type: ignore[arg-type]


def read_lmdb(path: Path) -> list[tuple[str, int, np.ndarray]]:
    """(key, label, C x H x W image) of every record, in key order."""
    with LmdbReader(path) as r:
        return [(k.decode(), d.label, datum_to_array(d).copy()) for k, d in r.items()]


def read_index(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (an index CSV, the metadata of a download) as dicts, header row as keys."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def check_unit(lmdb: Path, index: Path, classes: list[str], channels: int, hw: tuple[int, int],
               listfile: Path | None = None) -> tuple[list[tuple[str, int, np.ndarray]], list[dict[str, str]]]:
    """Records and index rows agree: one row per record in key order, keys %08d_<name> numbered from 0,
    labels and class names consistent, uint8 C x H x W images; the list file has one line per
    untransformed record."""
    records = read_lmdb(lmdb)
    rows = read_index(index)
    assert [r["key"] for r in rows] == [k for k, _, _ in records]
    for i, (key, label, image) in enumerate(records):
        m = KEY.match(key)
        assert m and int(m.group(1)) == i, key
        assert image.dtype == np.uint8 and image.shape == (channels, *hw)
        assert int(rows[i]["label"]) == label
        assert rows[i]["class_name"] == (classes[label] if label >= 0 else "")
    if listfile is not None:
        lines = listfile.read_text().splitlines()
        plain = [r for r in rows if r["Metadata_Augmentation"] == "none"]
        assert len(lines) == len(plain)
        for line, row in zip(lines, plain, strict=True):
            path, _, label = line.rpartition(" ")
            assert int(label) == int(row["label"]) and path == next(v for k, v in row.items()
                                                                     if k.startswith("Image_FileName_"))
    return records, rows


def check_prepared(out: Path, dataset: str, channels: tuple[str, ...], hw: tuple[int, int], classes: int,
                   splits: dict[str, tuple[int, int]], per_class: list[int] | None = None,
                   unlabelled: dict[str, int] | None = None) -> None:
    """Everything of docs/formats.md for a prepared folder, against expected counts."""
    ds = load_prepared(out)
    assert ds.dataset == dataset and ds.channels == channels and (ds.height, ds.width) == hw
    assert len(ds.class_names) == classes
    assert (out / "labels.txt").read_text().splitlines() == list(ds.class_names)
    assert {s.name: (s.train_size, s.test_size) for s in ds.splits} == splits
    info = json.loads((out / "dataset.json").read_text())
    if per_class is not None:
        assert list(info["labelled_per_class"].values()) == per_class
    for s in ds.splits:
        train, train_rows = check_unit(s.paths.train_lmdb, s.paths.train_index, list(ds.class_names), len(channels),
                                       hw, s.paths.train_list)
        test, _ = check_unit(s.paths.test_lmdb, s.paths.test_index, list(ds.class_names), len(channels), hw,
                             s.paths.test_list)
        assert (len(train), len(test)) == splits[s.name]
        names = [k.split("_", 1)[1] for k, _, _ in train]
        if len(names) > 5:
            assert names != sorted(names), "training records are not shuffled"
        mean = read_binaryproto(s.paths.mean)
        assert mean.shape == (1, len(channels), *hw)
        np.testing.assert_allclose(mean[0], np.mean([im.astype(np.float64) for _, _, im in train], axis=0),
                                   rtol=1e-5)
        split = json.loads(s.paths.split_json.read_text())
        assert split["train"]["images"] == len(train) and split["test"]["images"] == len(test)
        assert split["train"]["keys"] == [k for k, _, _ in train]
        assert not set(split["train"]["field_names"]) & set(split["test"]["field_names"])
        assert sum(split["train"]["per_class"].values()) == len(train)
        assert train_rows and all(c in train_rows[0] for c in info["index_columns"])
    for name, size in (unlabelled or {}).items():
        u = next(x for x in ds.unlabelled if x.name == name)
        records, _ = check_unit(u.lmdb, u.index, list(ds.class_names), len(channels), hw)
        assert len(records) == size == u.size
        assert {label for _, label, _ in records} == {-1}
    assert {x.name for x in ds.unlabelled} == set(unlabelled or {})
    first = ds.splits[0].paths
    assert (out / "train_lmdb").resolve() == first.train_lmdb.resolve()
    assert (out / "mean.binaryproto").resolve() == first.mean.resolve()

