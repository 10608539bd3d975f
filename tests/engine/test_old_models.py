"""V1 nets and caffemodels train and evaluate exactly like their current form; weights load as strictly
as Caffe's Net::CopyTrainedLayersFrom and Blob::ShapeEquals / FromProto."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net, load_net
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.errors import WeightsError
from tests.support import oldnets
from tests.support.tiny import write_lmdb

SOLVER = ('net: "{net}" test_iter: 3 test_interval: 3 test_initialization: false base_lr: 0.05 momentum: 0.9 '
          'weight_decay: 0.0005 lr_policy: "step" gamma: 0.5 stepsize: 3 max_iter: 6 display: 0 snapshot: 0 '
          'snapshot_after_train: false random_seed: 7 solver_mode: CPU {kind}\n')


@pytest.fixture(scope="module")
def old_and_new(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """LMDBs, the tiny net as V1 and V2 train_val/deploy files, and a solver for each (V1: solver_type)."""
    root = tmp_path_factory.mktemp("old_models")
    train, test = write_lmdb(root / "train_lmdb", 24, seed=1), write_lmdb(root / "test_lmdb", 12, seed=2)
    paths = {}
    for version, kind in (("v1", "solver_type: NESTEROV"), ("v2", 'type: "Nesterov"')):
        net = root / f"{version}_train_val.prototxt"
        net.write_text(oldnets.train_val(train, test, v1=version == "v1"))
        (root / f"{version}_deploy.prototxt").write_text(oldnets.deploy(v1=version == "v1"))
        (root / f"{version}_solver.prototxt").write_text(SOLVER.format(net=net, kind=kind))
        paths.update({f"{version}_{part}": root / f"{version}_{part}.prototxt" for part in ("deploy", "solver")})
        paths[f"{version}_train_val"] = net
    paths["root"] = root
    return paths


def _trainer(solver: Path, **options: object) -> Trainer:
    return Trainer(solver, TrainOptions(**options), log=GlogWriter(stream=io.StringIO()))  # type: ignore[arg-type]


def _assert_same_weights(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> None:
    assert a.keys() == b.keys() == {"conv1", "fc"}
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)


def test_v1_net_and_caffemodel_train_and_evaluate_like_v2(old_and_new: dict[str, Path]) -> None:
    p = old_and_new
    assert cio.read_net(p["v1_train_val"]) == cio.read_net(p["v2_train_val"])
    # Training from fillers: 6 Nesterov iterations with a step lr, tests at 3 and 6.
    old, new = _trainer(p["v1_solver"]), _trainer(p["v2_solver"])
    assert old.type == new.type == "Nesterov"
    start = new.net.weights()
    old_result, new_result = old.solve(), new.solve()
    trained = new.net.weights()
    _assert_same_weights(old.net.weights(), trained)
    assert old_result.last_test == new_result.last_test and set(new_result.last_test) == {"accuracy", "loss"}
    assert np.abs(trained["fc"][0] - start["fc"][0]).max() > 1e-3  # the run really learned something

    # The trained weights as a V1 caffemodel (V1 layers, legacy 4-D blobs) and as the engine writes them.
    v1_model, v2_model = p["root"] / "v1.caffemodel", p["root"] / "v2.caffemodel"
    v1_model.write_bytes(oldnets.v1_caffemodel(trained).SerializeToString())
    cio.write_caffemodel(v2_model, new.net.to_caffemodel())
    # -weights on the V1 model loads it (upgraded), exactly as the V2 model; fine-tuning then matches too.
    tuned_old = _trainer(p["v1_solver"], weights=[str(v1_model)], iterations=2)
    tuned_new = _trainer(p["v2_solver"], weights=[str(v2_model)], iterations=2)
    _assert_same_weights(tuned_old.net.weights(), trained)
    tuned_old.solve()
    tuned_new.solve()
    _assert_same_weights(tuned_old.net.weights(), tuned_new.net.weights())

    # Evaluation: the V1 deploy net (net-level input fields) with the V1 model gives the V2 probabilities.
    x = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    with torch.no_grad():
        prob_old = load_net(p["v1_deploy"], v1_model).forward({"data": x})["prob"].numpy()
        prob_new = load_net(p["v2_deploy"], v2_model).forward({"data": x})["prob"].numpy()
    assert prob_old.shape == (3, 3)
    np.testing.assert_array_equal(prob_old, prob_new)


# -- strictness ---------------------------------------------------------------------------------------

def _net(old_and_new: dict[str, Path]) -> Net:
    return Net(cio.read_net(old_and_new["v2_deploy"]), pb.TEST, generator=torch.Generator().manual_seed(3))


def _model(**layers: list[pb.BlobProto]) -> pb.NetParameter:
    model = pb.NetParameter()
    for name, blobs in layers.items():
        model.layer.add(name=name).blobs.extend(blobs)
    return model


def _shaped(shape: tuple[int, ...], values: np.ndarray | None = None) -> pb.BlobProto:
    blob = pb.BlobProto()
    blob.shape.dim.extend(shape)
    blob.data.extend((values if values is not None else np.zeros(int(np.prod(shape)))).ravel().tolist())
    return blob


def test_shapes_follow_caffes_shape_equals(old_and_new: dict[str, Path]) -> None:
    """Same size but another rank is refused; a legacy 4-D blob fits only with leading 1s (LegacyShape)."""
    net = _net(old_and_new)
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((3, 196)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    with pytest.raises(WeightsError, match=r"^m: cannot copy blob 0 of layer 'fc': shape \(588,\) in the file, "
                                           r"\(3, 196\) in the net \(rename the layer"):
        net.load_weights(_model(fc=[_shaped((588,), w), _shaped((3,), b)]), "m")
    with pytest.raises(WeightsError, match=r"blob 0 of layer 'fc': shape \(3, 196, 1, 1\) in the file, \(3, 196\)"):
        legacy = oldnets.legacy_blob(w)
        legacy.num, legacy.channels, legacy.height, legacy.width = 3, 196, 1, 1
        net.load_weights(_model(fc=[legacy, oldnets.legacy_blob(b)]), "m")
    assert net.load_weights(_model(fc=[oldnets.legacy_blob(w), oldnets.legacy_blob(b)], extra=[]), "m") == ["extra"]
    np.testing.assert_array_equal(net.weights()["fc"][0], w)
    np.testing.assert_array_equal(net.weights()["fc"][1], b)


def test_blob_counts_values_and_double_data(old_and_new: dict[str, Path]) -> None:
    net = _net(old_and_new)
    with pytest.raises(WeightsError, match=r"^m: layer 'conv1' has 0 blobs, the net expects 2$"):
        net.load_weights(_model(conv1=[]), "m")
    with pytest.raises(WeightsError, match=r"^m: layer 'fc' has 1 blobs, the net expects 2$"):
        net.load_weights(_model(fc=[_shaped((3, 196))]), "m")
    short = _shaped((3,))
    del short.data[1:]
    with pytest.raises(WeightsError, match=r"^m: layer 'fc' blob 1 holds 1 values, its shape \(3,\) needs 3$"):
        net.load_weights(_model(fc=[_shaped((3, 196)), short]), "m")
    both = _shaped((3,), np.array([1.0, 2.0, 3.0]))
    both.double_data.extend([0.25, 0.5, 0.125])  # Blob::FromProto takes double_data when it holds values
    net.load_weights(_model(fc=[_shaped((3, 196)), both]), "m")
    assert net.weights()["fc"][1].tolist() == [0.25, 0.5, 0.125]


def test_a_refused_model_changes_nothing(old_and_new: dict[str, Path]) -> None:
    """Every blob is checked before any is copied: a bad conv1 after a good fc leaves fc as it was."""
    net = _net(old_and_new)
    before = net.weights()
    with pytest.raises(WeightsError, match="layer 'conv1'"):
        net.load_weights(_model(fc=[_shaped((3, 196), np.ones(588)), _shaped((3,))],
                                conv1=[_shaped((4, 2, 3, 3)), _shaped((4,))]), "m")
    _assert_same_weights(net.weights(), before)


def test_a_model_that_loads_nothing_is_an_error(old_and_new: dict[str, Path], tmp_path: Path) -> None:
    net = _net(old_and_new)
    with pytest.raises(WeightsError, match=r"^m: none of its 0 layers is a layer of the net \(an empty model, or "
                                           "one of another net\\); no weights loaded$"):
        net.load_weights(pb.NetParameter(), "m")
    with pytest.raises(WeightsError, match="none of its 2 layers is a layer of the net"):
        net.load_weights(_model(conv9=[_shaped((1,))], fc9=[_shaped((1,))]), "m")
    with pytest.raises(WeightsError, match=r"^m: copied no weights: the layers it shares with the net \(relu1, "
                                           r"prob\) hold no blobs$"):
        net.load_weights(_model(relu1=[], prob=[], other=[_shaped((2,))]), "m")
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match=f"^{empty}: none of its 0 layers"):  # -weights: before any iteration
        _trainer(old_and_new["v2_solver"], weights=[str(empty)])
