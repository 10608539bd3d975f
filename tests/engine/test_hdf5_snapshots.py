"""snapshot_format: HDF5: Caffe's .caffemodel.h5 / .solverstate.h5 layout, resume and -weights from them."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from mcnn.caffe import hdf5
from mcnn.engine.glog import GlogWriter
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.errors import CaffeFormatError, ConfigError
from mcnn.training import TrainingRun, check_run, latest_snapshot
from tests.support.hdf5nets import make_h5_setup

QUIET = GlogWriter(enabled=False)


def _train(solver: Path, **options: object) -> Trainer:
    trainer = Trainer(str(solver), TrainOptions(**options), QUIET)  # type: ignore[arg-type]
    trainer.solve()
    return trainer


def test_hdf5_snapshots_have_caffes_layout(tmp_path: Path) -> None:
    solver = make_h5_setup(tmp_path, max_iter=12, snapshot=6)
    trainer = _train(solver)
    snaps = tmp_path / "snaps"
    assert sorted(p.name for p in snaps.iterdir()) == ["h5_iter_12.caffemodel.h5", "h5_iter_12.solverstate.h5",
                                                      "h5_iter_6.caffemodel.h5", "h5_iter_6.solverstate.h5"]
    with h5py.File(snaps / "h5_iter_12.caffemodel.h5", "r") as f:
        assert list(f.keys()) == ["data"]
        # a group for every layer of the net (Net::ToHDF5), datasets named by blob index
        assert sorted(f["data"].keys()) == ["data", "fc", "loss", "relu", "silence"]
        assert sorted(f["data/fc"].keys()) == ["0", "1"] and len(f["data/relu"]) == 0
        assert f["data/fc/0"].shape == (2, 3) and f["data/fc/1"].shape == (2,)
        assert f["data/fc/0"].dtype == np.float32
        np.testing.assert_array_equal(f["data/fc/0"][()], trainer.net.weights()["fc"][0])
    with h5py.File(snaps / "h5_iter_12.solverstate.h5", "r") as f:
        assert sorted(f.keys()) == ["current_step", "history", "iter", "learned_net"]
        assert f["iter"][()].tolist() == [12] and f["iter"].dtype == np.int32
        assert f["current_step"][()].tolist() == [trainer.current_step] and f["current_step"].dtype == np.int32
        assert f["learned_net"][()].rstrip(b"\0").decode() == str(snaps / "h5_iter_12.caffemodel.h5")
        assert sorted(f["history"].keys()) == ["0", "1"]
        assert f["history/0"].shape == (2, 3) and f["history/1"].shape == (2,)
        assert np.abs(f["history/0"][()]).sum() > 0  # momentum history, not zeros
    assert latest_snapshot(str(snaps / "h5")) == (12, snaps / "h5_iter_12.solverstate.h5")
    assert not list(snaps.glob(".*tmp*"))  # nothing left under a temporary name


def test_resume_from_solverstate_h5_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    full = _train(make_h5_setup(tmp_path / "full", max_iter=12, snapshot=6))
    part_solver = make_h5_setup(tmp_path / "part", max_iter=12, snapshot=6)
    _train(part_solver, iterations=6)
    assert not (tmp_path / "part" / "snaps" / "h5_iter_12.caffemodel.h5").exists()
    resumed = _train(part_solver, snapshot=str(tmp_path / "part" / "snaps" / "h5_iter_6.solverstate.h5"))
    assert resumed.iter == 12 and resumed.current_step == full.current_step
    a, b = full.net.weights(), resumed.net.weights()
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(full.updater.history, resumed.updater.history, strict=True):
        assert np.array_equal(x.numpy(), y.numpy())


def test_weights_from_caffemodel_h5(tmp_path: Path) -> None:
    source = _train(make_h5_setup(tmp_path / "src", max_iter=6, snapshot=6))
    model = tmp_path / "src" / "snaps" / "h5_iter_6.caffemodel.h5"
    target = Trainer(str(make_h5_setup(tmp_path / "dst", fmt="BINARYPROTO")), TrainOptions(weights=[str(model)]),
                     QUIET)
    np.testing.assert_array_equal(target.net.weights()["fc"][0], source.net.weights()["fc"][0])
    np.testing.assert_array_equal(target.net.weights()["fc"][1], source.net.weights()["fc"][1])
    # every reader of weights takes it (load_net, evaluation, pycaffe go through mcnn.caffe.io.read_caffemodel)
    from mcnn.caffe import io as cio
    from mcnn.caffe.modelcard import card_path

    assert [layer.name for layer in cio.read_caffemodel(model).layer if layer.blobs] == ["fc"]
    assert card_path(model).name == "h5_iter_6.card.json"
    # a caffemodel.h5 is weights, not a state to resume
    run = TrainingRun(solver=str(tmp_path / "dst" / "solver.prototxt"), snapshot=str(model))
    with pytest.raises(ConfigError, match=r"a caffemodel, not a \.solverstate"):
        check_run(run)


def test_bad_caffemodel_h5_names_the_file_and_group(tmp_path: Path) -> None:
    bad = tmp_path / "bad.caffemodel.h5"
    with h5py.File(bad, "w") as f:
        f["data/fc/0"] = np.zeros((2, 3), np.float32)
        f["data/fc/2"] = np.zeros((2,), np.float32)
    with pytest.raises(CaffeFormatError, match=r"bad.caffemodel.h5: data/fc: blob datasets must be named 0..1"):
        hdf5.read_caffemodel_h5(bad)
    with h5py.File(tmp_path / "nodata.h5", "w") as f:
        f["weights"] = np.zeros(3)
    with pytest.raises(CaffeFormatError, match="no group 'data'"):
        hdf5.read_caffemodel_h5(tmp_path / "nodata.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(CaffeFormatError, match=r"text\.h5: not an HDF5 file"):
        hdf5.read_solverstate_h5(tmp_path / "text.h5")


def test_failed_solverstate_h5_removes_its_caffemodel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    solver = make_h5_setup(tmp_path, max_iter=6, snapshot=6)
    trainer = Trainer(str(solver), TrainOptions(), QUIET)

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hdf5, "write_solverstate_h5", full_disk)
    with pytest.raises(OSError, match="No space left"):
        trainer.solve()
    assert not list((tmp_path / "snaps").glob("*.h5"))
