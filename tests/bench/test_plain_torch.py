"""bench/plain_torch.py: the plain-PyTorch M-CNN computes the engine's forward and SGD update (demo size)."""

from __future__ import annotations

import itertools
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

from mcnn.caffe import shapes
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.layers import Pooling
from mcnn.engine.net import Net
from mcnn.errors import ConfigError
from tests.support.scripts import load_script


def _load_plain() -> ModuleType:
    return load_script("bench/plain_torch.py", "plain_torch")


plain_torch = _load_plain()
measure = plain_torch.m  # bench/measure.py, as plain_torch imported it




def test_plain_forward_equals_the_engine_at_demo_size() -> None:
    deploy, _ = measure.committed_nets("demo")
    shape = measure.deploy_shape(deploy)
    assert shape == (2, 128, 128)
    engine = Net(deploy, pb.TEST, generator=torch.Generator().manual_seed(3))
    model = plain_torch.PlainMCNN(deploy, shape).eval()
    assert len(model.pathways) == 7 and model.logits_blob == "fc2" and model.out_shape == (4,)
    x, _ = measure.batch_of(shape, 3, 4)
    with torch.inference_mode():
        blobs = engine.forward({"data": x})
        before = F.softmax(model(x), 1)
        assert model.load_engine_weights(engine) == engine.param_count()
        logits = model(x)
    assert measure.relative_difference(logits, blobs["fc2"]) < 1e-5
    assert measure.relative_difference(F.softmax(logits, 1), blobs["prob"]) < 1e-5
    # the comparison can fail: the module's own initial weights give other probabilities
    assert measure.relative_difference(before, blobs["prob"]) > 1e-2
    # the weights live where the Caffe names say
    assert torch.equal(model.layer_module("conv2_s8").weight, engine.layer_blobs("conv2_s8")[0].tensor)


def test_one_training_step_makes_the_engine_update() -> None:
    deploy, train_val = measure.committed_nets("demo")
    shape = measure.deploy_shape(deploy)
    engine = measure.EngineTraining(measure.input_train_net(train_val, shape))
    model = plain_torch.PlainMCNN(train_val, shape)
    model.load_engine_weights(engine.net)
    plain = plain_torch.PlainTraining(model)
    groups = {(g["lr"], g["weight_decay"]) for g in plain.optimizer.param_groups}
    assert groups == {(0.001, 0.0005), (0.002, 0.0)}  # weights lr_mult 1 / decay_mult 1, biases 2 / 0
    x, labels = measure.batch_of(shape, 2, 4)
    engine.set_batch(x, labels)
    plain.set_batch(x, labels)
    engine.step()
    loss = plain.step()
    assert loss == pytest.approx(float(torch.log(torch.tensor(4.0))), abs=0.3)  # near chance at the start
    assert plain_torch.update_difference(engine, plain) < 1e-5
    for group in plain.optimizer.param_groups:  # a bias lr_mult of 1 instead of 2 is seen
        if not group["weight_decay"]:
            group["lr"] /= 2
    assert plain_torch.update_difference(engine, plain) > 1e-3


def test_pytorch_pool_sizes_are_computed_as_pytorch_does() -> None:
    for size, kernel, stride, pad in itertools.product(range(1, 12), range(1, 5), range(1, 5), range(0, 3)):
        if pad >= kernel or kernel > size + 2 * pad:
            continue
        for ceil in (True, False):
            ours = plain_torch.torch_pool_size(size, kernel, stride, pad, ceil)
            caffe = shapes.pool_output_size(size, kernel, stride, pad, ceil)
            if pad <= kernel // 2:
                pooled = F.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride, pad, ceil_mode=ceil)
                assert pooled.shape[-1] == ours
            if pad > 0 or (caffe - 1) * stride < size:  # the two rules differ only for Caffe's empty windows
                assert ours == caffe
    # PyTorch drops a window starting past the input even without padding; Caffe keeps it (empty)
    assert (shapes.pool_output_size(5, 1, 3, 0), plain_torch.torch_pool_size(5, 1, 3, 0)) == (3, 2)
    # with padding both drop a last window that would start in it: 4 + 2*1 - 2 = 4, 4/3 rounded up + 1 = 3 -> 2
    assert shapes.pool_output_size(4, 2, 3, 1) == plain_torch.torch_pool_size(4, 2, 3, 1) == 2


def _pooling(kernel: int, stride: int, pad: int) -> pb.LayerParameter:
    layer = pb.LayerParameter(name="pool", type="Pooling", bottom=["x"], top=["y"])
    layer.pooling_param.pool = pb.PoolingParameter.MAX
    layer.pooling_param.kernel_size, layer.pooling_param.stride, layer.pooling_param.pad = kernel, stride, pad
    return layer


def test_pads_over_half_the_kernel_are_padded_like_caffe() -> None:
    layer = _pooling(3, 2, 2)  # PyTorch refuses pad 2 for kernel 3
    x = torch.randn(2, 3, 9, 8)
    module, hw = plain_torch.pool_module(layer, (9, 8))
    assert isinstance(module, torch.nn.Sequential) and hw == (6, 5)
    assert torch.equal(module(x), Pooling(layer).forward([x], [], False)[0])
    with pytest.raises(ConfigError, match="empty window"):
        plain_torch.pool_module(_pooling(1, 3, 0), (5, 5))
