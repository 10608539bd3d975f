"""The HDF5Data feed (order, wrap-around, shuffle, TRAIN and TEST) and the HDF5Output layer."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.data import batches, make_feed
from mcnn.engine.glog import GlogWriter
from mcnn.engine.hdf5data import HDF5Feed
from mcnn.engine.net import Net
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.errors import DataError, ShapeError
from tests.support.hdf5nets import W_TRUE, make_h5_setup, write_rows


def _layer(source: Path, batch: int, shuffle: bool = False,
           tops: tuple[str, ...] = ("data", "target")) -> pb.LayerParameter:
    layer = pb.LayerParameter(name="h5", type="HDF5Data", top=list(tops))
    layer.hdf5_data_param.source = str(source)
    layer.hdf5_data_param.batch_size = batch
    layer.hdf5_data_param.shuffle = shuffle
    return layer


def _rows(batch: dict[str, torch.Tensor]) -> list[int]:
    """The row numbers write_rows put in column 0 of data."""
    return [round(float(v) * 10) for v in batch["data"][:, 0]]


def test_rows_in_order_across_files_wrapping(tmp_path: Path) -> None:
    make_h5_setup(tmp_path)  # a.h5: rows 0-5, b.h5: rows 6-15
    feed = make_feed(_layer(tmp_path / "train.txt", 5), pb.TRAIN, seed=1)
    assert isinstance(feed, HDF5Feed)
    assert feed.top_shapes == {"data": (3,), "target": (2,)} and feed.total == 16
    assert [_rows(feed.batch(b)) for b in range(4)] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14],
                                                        [15, 0, 1, 2, 3]]
    out = feed.batch(1)
    assert out["data"].dtype == torch.float32 and tuple(out["target"].shape) == (5, 2)
    np.testing.assert_allclose(out["target"].numpy(), out["data"].numpy() @ W_TRUE, rtol=1e-6)
    # two processes split the stream row by row (HDF5DataLayer::Skip); together they read what one reads
    ranks = [make_feed(_layer(tmp_path / "train.txt", 2), pb.TRAIN, 1, rank=r, world=2) for r in (0, 1)]
    assert _rows(ranks[0].batch(0)) == [0, 2] and _rows(ranks[1].batch(0)) == [1, 3]
    # the DataLoader path (pickled feed) gives the same batches
    assert [_rows(b) for b in batches([feed], 2, 2, workers=0)] == [[10, 11, 12, 13, 14], [15, 0, 1, 2, 3]]


def test_shuffle_is_seeded_per_pass(tmp_path: Path) -> None:
    make_h5_setup(tmp_path)
    feed = make_feed(_layer(tmp_path / "train.txt", 16, shuffle=True), pb.TRAIN, seed=7)
    first, second = _rows(feed.batch(0)), _rows(feed.batch(1))
    assert sorted(first) == sorted(second) == list(range(16))  # each pass: every row once
    assert first != second and first != list(range(16))
    # files stay contiguous within a pass (Caffe shuffles file order, then rows inside the file)
    assert set(first[:6]) == set(range(6)) or set(first[:10]) == set(range(6, 16))
    again = make_feed(_layer(tmp_path / "train.txt", 16, shuffle=True), pb.TRAIN, seed=7)
    assert _rows(again.batch(1)) == second
    other = make_feed(_layer(tmp_path / "train.txt", 16, shuffle=True), pb.TRAIN, seed=8)
    assert _rows(other.batch(0)) != first


def test_a_net_trained_from_hdf5data_learns(tmp_path: Path) -> None:
    solver = make_h5_setup(tmp_path, fmt="BINARYPROTO", max_iter=60, snapshot=0, test=True)
    trainer = Trainer(str(solver), TrainOptions(), GlogWriter(enabled=False))
    before = trainer.test_all()["loss"]
    trainer.solve()
    after = trainer.last_test["loss"]
    assert before > 0.5 and after < 0.05 * before  # TEST net reads t.h5 through its own HDF5Data layer
    # near the true map (not closer: the lr halves every 6 iterations)
    np.testing.assert_allclose(trainer.net.weights()["fc"][0], W_TRUE.T, atol=0.3)


def test_hdf5output_writes_data_and_label(tmp_path: Path) -> None:
    make_h5_setup(tmp_path)
    out_file = tmp_path / "out" / "pred.h5"
    net_param = cio.parse_prototxt(f"""
layer {{ name: "data" type: "HDF5Data" top: "data" top: "target"
  hdf5_data_param {{ source: "{tmp_path / 'test.txt'}" batch_size: 3 }} }}
layer {{ name: "out" type: "HDF5Output" bottom: "data" bottom: "target"
  hdf5_output_param {{ file_name: "{out_file}" }} }}""", pb.NetParameter)
    feed = make_feed(net_param.layer[0], pb.TEST, seed=0)
    net = Net(net_param, pb.TEST, data_shapes=feed.top_shapes)
    for b in range(2):
        net.forward(feed.batch(b))
    with h5py.File(tmp_path / "t.h5", "r") as f:
        expected = f["data"][:6], f["target"][:6]
    with h5py.File(out_file, "r") as f:
        assert sorted(f.keys()) == ["data", "label"]
        assert f["data"].shape == (6, 3, 1, 1) and f["label"].shape == (6, 2, 1, 1)  # Caffe's n x c x h x w
        np.testing.assert_array_equal(f["data"][:, :, 0, 0], expected[0])
        np.testing.assert_array_equal(f["label"][:, :, 0, 0], expected[1])


def test_bad_hdf5_inputs_name_the_file(tmp_path: Path) -> None:
    make_h5_setup(tmp_path)
    (tmp_path / "missing.txt").write_text("a.h5\nnope.h5\n")
    with pytest.raises(DataError, match=r"missing.txt: entry 2: nope.h5: no such HDF5 file"):
        make_feed(_layer(tmp_path / "missing.txt", 2), pb.TRAIN, 0)
    write_rows(tmp_path / "odd.h5", 0, 4, extra=np.zeros((4, 5), np.float32))
    (tmp_path / "odd.txt").write_text("a.h5\nodd.h5\n")
    with h5py.File(tmp_path / "a.h5", "a") as f:
        f["extra"] = np.zeros((6, 4), np.float32)
    with pytest.raises(DataError, match=r"odd.h5: dataset 'extra' has rows of shape \(5,\), the first file's"):
        make_feed(_layer(tmp_path / "odd.txt", 2, tops=("data", "extra")), pb.TRAIN, 0)
    with pytest.raises(DataError, match=r"a.h5: dataset 'label'"):
        make_feed(_layer(tmp_path / "train.txt", 2, tops=("data", "label")), pb.TRAIN, 0)
    layer = _layer(tmp_path / "train.txt", 2)
    layer.transform_param.scale = 0.5
    with pytest.raises(DataError, match="HDF5Data does not transform data"):
        make_feed(layer, pb.TRAIN, 0)
    with pytest.raises(ShapeError, match="shape of HDF5 dataset"):
        Net(pb.NetParameter(layer=[_layer(tmp_path / "train.txt", 2)]), pb.TRAIN)


def test_pycaffe_net_reads_hdf5data_batches(tmp_path: Path) -> None:
    """caffe.Net on an HDF5Data net: forward() fills the tops from the files, batch after batch, in list order."""
    import mcnn.pycaffe as caffe

    make_h5_setup(tmp_path, batch=4)
    net = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TRAIN)
    assert net.blobs["data"].data.shape == (4, 3) and net.blobs["target"].data.shape == (4, 2)
    rows = []
    for _ in range(2):
        net.forward()
        rows.append(net.blobs["data"].data.copy())
    with h5py.File(tmp_path / "a.h5", "r") as a, h5py.File(tmp_path / "b.h5", "r") as b:
        expected = np.concatenate([a["data"][:], b["data"][:]])[:8]
    np.testing.assert_array_equal(np.concatenate(rows), expected)
    assert np.isfinite(float(net.blobs["loss"].data))
