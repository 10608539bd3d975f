"""Python layers on the engine: setup/reshape/forward/backward, param_str, phase, blobs, errors, training.

The layers are in tests/engine/python_layers.py, loaded through ``python_param`` as Caffe does.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net
from mcnn.engine.trainer import Trainer
from mcnn.errors import ConfigError, McnnError
from tests.engine import python_layers
from tests.support.tiny import write_lmdb

MODULE = "tests.engine.python_layers"


def python_layer(name: str, cls: str, bottoms=(), tops=(), param_str: str = "", extra: str = "") -> str:
    """A prototxt layer of type Python."""
    wires = "".join(f' bottom: "{b}"' for b in bottoms) + "".join(f' top: "{t}"' for t in tops)
    return (f'layer {{ name: "{name}" type: "Python"{wires} python_param {{ module: "{MODULE}" layer: "{cls}" '
            f'param_str: {json.dumps(param_str)} }} {extra} }}\n')


INPUT = 'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 2 dim: 2 } } }\n'


def build(text: str, phase: int = pb.TRAIN) -> Net:
    return Net(parse_prototxt(text, pb.NetParameter), phase, generator=torch.Generator().manual_seed(0))


def test_param_str_and_phase_reach_setup_once_per_net() -> None:
    python_layers.PhaseProbe.seen.clear()
    text = INPUT + python_layer("probe", "PhaseProbe", ["x"], ["y"], param_str="abc")
    train, test = build(text, pb.TRAIN), build(text, pb.TEST)
    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2)
    for _ in range(3):
        out = test.forward({"x": x})["y"]
    train.forward({"x": x})
    assert python_layers.PhaseProbe.seen == [(pb.TRAIN, "abc"), (pb.TEST, "abc")]
    assert torch.equal(out, x)
    assert train.blob_shapes["y"] == (3, 2, 2)


def test_backward_and_blob_gradients_equal_autograd() -> None:
    text = INPUT + python_layer("cs", "ChannelScale", ["x"], ["y"], param_str='{"init": 0.5}')
    net = build(text)
    (w,) = net.layer_blobs("cs")
    assert w.tensor.shape == (3,) and torch.all(w.tensor == 0.5)  # setup's values, not a filler's
    with torch.no_grad():
        w.tensor.copy_(torch.tensor([1.0, -2.0, 3.0]))
    x = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(1), requires_grad=True)
    dy = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(2))
    y = net.forward({"x": x}, train=True)["y"]
    (y * dy).sum().backward()
    ref_x = x.detach().clone().requires_grad_()
    ref_w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    ref_y = ref_x * ref_w[None, :, None, None]
    (ref_y * dy).sum().backward()
    torch.testing.assert_close(y.detach(), ref_y.detach())
    torch.testing.assert_close(x.grad, ref_x.grad)
    torch.testing.assert_close(w.tensor.grad, ref_w.grad)


def test_a_python_loss_layer_shapes_and_gradients() -> None:
    text = (INPUT + 'layer { name: "t" type: "Input" top: "t" input_param { shape { dim: 2 dim: 12 } } }\n'
            + python_layer("loss", "SquaredErrorLoss", ["x", "t"], ["loss"], extra="loss_weight: 2"))
    net = build(text)
    assert net.blob_shapes["loss"] == (1,)  # pycaffe's loss layers reshape their top to (1,)
    assert net.output_weights() == {"loss": 2.0}
    x = torch.randn(2, 3, 2, 2, generator=torch.Generator().manual_seed(3), requires_grad=True)
    t = torch.randn(2, 12, generator=torch.Generator().manual_seed(4))
    blobs = net.forward({"x": x, "t": t}, train=True)
    diff = x.detach().reshape(2, 12) - t
    np.testing.assert_allclose(float(blobs["loss"].detach()), float((diff ** 2).sum() / 4), rtol=1e-6)
    net.loss(blobs).backward()
    # Caffe: the loss top's diff is its loss weight; the layer's backward gives w * diff / N
    torch.testing.assert_close(x.grad.reshape(2, 12), 2.0 * diff / 2)


def test_setup_exception_is_one_error_naming_layer_and_module() -> None:
    text = INPUT + python_layer("broken", "BrokenSetup", ["x"], ["y"], param_str="seven")
    with pytest.raises(McnnError) as info:
        build(text)
    message = str(info.value)
    assert "\n" not in message
    assert message == ("layer 'broken' (Python layer tests.engine.python_layers.BrokenSetup): setup failed: "
                       "ValueError: bad param_str 'seven': expected a number")
    assert isinstance(info.value.__cause__, ValueError)


def test_missing_modules_and_classes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"layer 'p': cannot import python_param.module 'no_such_module_xyz'"):
        build(INPUT + 'layer { name: "p" type: "Python" bottom: "x" top: "y" '
                      'python_param { module: "no_such_module_xyz" layer: "L" } }')
    with pytest.raises(ConfigError, match=r"layer 'p': module 'tests.engine.python_layers' has no class 'Nope'"):
        build(INPUT + python_layer("p", "Nope", ["x"], ["y"]))
    with pytest.raises(ConfigError, match=r"needs python_param\.module and python_param\.layer"):
        build(INPUT + 'layer { name: "p" type: "Python" bottom: "x" top: "y" }')


def solver(net_text: str, **fields: object) -> pb.SolverParameter:
    values = dict(base_lr=0.05, lr_policy="fixed", momentum=0.9, max_iter=200, display=0, snapshot_after_train=False,
                  random_seed=1, solver_mode=pb.SolverParameter.CPU)
    param = pb.SolverParameter(**{**values, **fields})
    param.train_net_param.CopyFrom(parse_prototxt(net_text, pb.NetParameter))
    return param


class PythonFedTrainer(Trainer):
    """A Trainer whose net is fed by a Python data layer instead of Data layers."""

    external_inputs = True


def test_python_data_and_loss_layers_train_a_regression_with_the_trainer() -> None:
    text = (python_layer("data", "RegressionData", [], ["x", "t"], param_str='{"batch": 16, "seed": 5}')
            + 'layer { name: "fc" type: "InnerProduct" bottom: "x" top: "y" inner_product_param { num_output: 1 '
              'weight_filler { type: "gaussian" std: 0.1 } } }\n'
            + python_layer("loss", "SquaredErrorLoss", ["y", "t"], ["loss"], extra="loss_weight: 1"))
    trainer = PythonFedTrainer(solver(text), log=GlogWriter(stream=io.StringIO()))
    with torch.no_grad():
        before = float(trainer.net.loss(trainer.net.forward({}, train=True)))
    trainer.step(150)
    with torch.no_grad():
        after = float(trainer.net.loss(trainer.net.forward({}, train=True)))
    weights = trainer.net.layer_blobs("fc")[0].tensor.detach().numpy().ravel()
    assert before > 1.0 and after < 1e-3 * before
    np.testing.assert_allclose(weights, python_layers.RegressionData.WEIGHTS, atol=0.02)


def test_a_python_loss_layer_trains_an_lmdb_net_with_the_trainer(tmp_path: Path) -> None:
    lmdb = write_lmdb(tmp_path / "train_lmdb", 24, seed=3)
    text = (f'layer {{ name: "data" type: "Data" top: "data" top: "label" transform_param {{ scale: 0.00390625 }} '
            f'data_param {{ source: "{lmdb}" batch_size: 8 backend: LMDB }} }}\n'
            + 'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "y" inner_product_param { num_output: 1 '
              'weight_filler { type: "constant" } } }\n'
            + python_layer("cs", "ChannelScale", ["y"], ["z"], param_str='{"init": 1.0}')
            + python_layer("loss", "SquaredErrorLoss", ["z", "label"], ["loss"], extra="loss_weight: 1"))
    trainer = Trainer(solver(text, base_lr=0.02, max_iter=60), log=GlogWriter(stream=io.StringIO()))
    feeds = trainer.train_feeds[0].batch(0)
    with torch.no_grad():
        before = float(trainer.net.loss(trainer.net.forward(feeds, train=True)))
    trainer.step(60)
    with torch.no_grad():
        after = float(trainer.net.loss(trainer.net.forward(feeds, train=True)))
    # batch 0 holds labels 0 1 2 0 1 2 0 1; the zero-initialised net predicts 0: sum(label^2) / (2 * 8) = 11/16
    np.testing.assert_allclose(before, 11 / 16, rtol=1e-6)
    assert after < 0.5 * before
    (w,) = trainer.net.layer_blobs("cs")
    assert float(w.tensor.detach()) != 1.0  # the Python layer's own blob is learned too
