"""Datum records and LMDB databases in Caffe's layout."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import pb, transform
from mcnn.caffe.datum import LmdbReader, LmdbWriter, array_to_datum, datum_to_array, record_key
from mcnn.caffe.transform import LmdbRecords
from mcnn.errors import CaffeFormatError


def test_uint8_datum_is_chw_bytes() -> None:
    image = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    datum = array_to_datum(image, label=7)
    assert (datum.channels, datum.height, datum.width, datum.label) == (2, 3, 4, 7)
    assert datum.data == image.tobytes()  # offset (c*H + h)*W + w
    assert not datum.float_data
    np.testing.assert_array_equal(datum_to_array(datum), image)


def test_float_datum_uses_float_data() -> None:
    image = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 3, 4)
    datum = array_to_datum(image)
    assert not datum.data and len(datum.float_data) == 12
    np.testing.assert_allclose(datum_to_array(datum), image)


def test_datum_size_mismatch_is_reported() -> None:
    datum = pb.Datum(channels=1, height=2, width=2, data=b"abc")
    with pytest.raises(CaffeFormatError, match="3 data bytes for 1x2x2"):
        datum_to_array(datum, source="rec 5")


def test_encoded_png_datum_decodes() -> None:
    cv2 = pytest.importorskip("cv2")
    image = np.random.default_rng(0).integers(0, 255, (5, 6, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    datum = pb.Datum(data=png.tobytes(), encoded=True, label=1)
    np.testing.assert_array_equal(datum_to_array(datum), image.transpose(2, 0, 1))


def test_lmdb_write_read_in_key_order_with_map_growth(tmp_path: Path) -> None:
    path = tmp_path / "train_lmdb"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (2, 32, 32), dtype=np.uint8) for _ in range(40)]
    # A 64 KiB initial map forces several doublings.
    with LmdbWriter(path, initial_map_size=1 << 16, commit_every=7) as writer:
        for i, image in enumerate(images):
            writer.put(record_key(i, f"plate1/img{i}.tif"), array_to_datum(image, label=i % 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_lmdb"]
    with LmdbReader(path) as reader:
        assert len(reader) == 40
        items = list(reader.items())
    assert items[0][0] == b"00000000_plate1/img0.tif"
    assert [k for k, _ in items] == sorted(k for k, _ in items)
    np.testing.assert_array_equal(datum_to_array(items[13][1]), images[13])
    assert items[13][1].label == 13 % 3


def test_failed_lmdb_build_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "test_lmdb"
    with pytest.raises(RuntimeError), LmdbWriter(path) as writer:
        writer.put(record_key(0, "a"), array_to_datum(np.zeros((1, 2, 2), np.uint8)))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CaffeFormatError, match="not an LMDB folder"):
        LmdbReader(path)


def write_labels(path: Path, label: int, n: int = 3) -> Path:
    """An LMDB of ``n`` 1x2x2 records, each with pixels and label ``label``."""
    with LmdbWriter(path) as writer:
        for i in range(n):
            writer.put(record_key(i, "x"), array_to_datum(np.full((1, 2, 2), label, np.uint8), label))
    return path


def test_a_database_rebuilt_at_the_same_path_is_read_anew(tmp_path: Path) -> None:
    """A notebook that re-prepares a dataset and builds a new feed reads the new records, not the
    deleted file that the first feed's environment still maps."""
    db = write_labels(tmp_path / "db", 1)
    first = LmdbRecords(db)
    assert first.image(0)[1] == 1
    shutil.rmtree(db)
    write_labels(db, 7, n=4)
    second = LmdbRecords(db)
    assert len(second) == 4
    assert second.image(3)[1] == 7
    assert (second.image(0)[0] == 7).all()


def test_environments_of_deleted_databases_are_closed(tmp_path: Path) -> None:
    """Opening a database closes the environments of deleted ones: a long process (a test suite,
    a screen of many plates) does not keep every deleted file mapped."""
    old = LmdbRecords(write_labels(tmp_path / "old", 1))
    old.image(0)
    shutil.rmtree(tmp_path / "old")
    LmdbRecords(write_labels(tmp_path / "new", 2)).image(0)
    assert str((tmp_path / "old").resolve()) not in transform._OPEN_ENVS
    assert str((tmp_path / "new").resolve()) in transform._OPEN_ENVS


def test_two_readers_of_one_database_share_its_environment(tmp_path: Path) -> None:
    db = write_labels(tmp_path / "db", 3)
    a, b = LmdbRecords(db), LmdbRecords(db)
    assert a.image(0)[1] == b.image(2)[1] == 3
    assert a._open() is b._open()
    copy = pickle.loads(pickle.dumps(a))  # what a spawned data-loading worker receives
    assert copy.image(1)[1] == 3 and copy._open() is a._open()
