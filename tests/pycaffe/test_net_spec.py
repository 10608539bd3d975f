"""caffe.net_spec on our schema: a NetSpec script rebuilds the committed M-CNN, field by field.

The architecture facts below are those of the committed file's header (scales 1..64, widths
16,16,16,32,32,32,64, 5x5 convolutions with pad 2, MAX pooling to the coarsest scale, a 1x1
fusion of 1024 maps with a 2x2 pool, FC 512, 4 classes), written the way a pycaffe user would.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from google.protobuf import text_format

from mcnn.caffe import pb
from mcnn.caffe.io import read_net
from mcnn.engine.net import Net
from mcnn.errors import ConfigError
from mcnn.pycaffe import net_spec
from mcnn.pycaffe.net_spec import NetSpec, to_proto
from mcnn.pycaffe.net_spec import layers as L
from mcnn.pycaffe.net_spec import params as P
from tests.support import ROOT

SCALES = (1, 2, 4, 8, 16, 32, 64)
WIDTHS = (16, 16, 16, 32, 32, 32, 64)
LEARN = [dict(lr_mult=1, decay_mult=1), dict(lr_mult=2, decay_mult=0)]
FILLERS = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant", value=0))


def data_layer(n: NetSpec, phase: int, split: str) -> None:
    n.data, n.label = L.Data(ntop=2, include=dict(phase=phase), transform_param=dict(scale=1 / 256),
                             data_param=dict(source=f"data/demo/{split}_lmdb", batch_size=16, backend=P.Data.LMDB))


def mcnn_spec() -> pb.NetParameter:
    """The demo M-CNN train_val net as a NetSpec script would write it."""
    n = NetSpec()
    data_layer(n, pb.TRAIN, "train")
    coarsest = SCALES[-1]
    pathway_tops = []
    for scale, width in zip(SCALES, WIDTHS, strict=True):
        x = n.data
        if scale > 1:
            n[f"pool_in_s{scale}"] = L.Pooling(n.data, pool=P.Pooling.MAX, kernel_size=scale, stride=scale)
            x = n[f"pool_in_s{scale}"]
        for i in (1, 2, 3):
            n[f"conv{i}_s{scale}"] = L.Convolution(x, param=LEARN, num_output=width, pad=2, kernel_size=5, **FILLERS)
            n[f"relu{i}_s{scale}"] = L.ReLU(n[f"conv{i}_s{scale}"], in_place=True)
            x = n[f"relu{i}_s{scale}"]
        if scale < coarsest:
            k = coarsest // scale
            n[f"pool_out_s{scale}"] = L.Pooling(x, pool=P.Pooling.MAX, kernel_size=k, stride=k)
            x = n[f"pool_out_s{scale}"]
        pathway_tops.append(x)
    n.concat = L.Concat(*pathway_tops)
    n.conv_fuse = L.Convolution(n.concat, param=LEARN, num_output=1024, kernel_size=1, **FILLERS)
    n.relu_fuse = L.ReLU(n.conv_fuse, in_place=True)
    n.pool_fuse = L.Pooling(n.relu_fuse, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.fc1 = L.InnerProduct(n.pool_fuse, param=LEARN, num_output=512, **FILLERS)
    n.relu_fc1 = L.ReLU(n.fc1, in_place=True)
    n.fc2 = L.InnerProduct(n.relu_fc1, param=LEARN, num_output=4, **FILLERS)
    n.loss = L.SoftmaxWithLoss(n.fc2, n.label)
    n.accuracy = L.Accuracy(n.fc2, n.label, include=dict(phase=pb.TEST))
    net = n.to_proto()
    test = NetSpec()
    data_layer(test, pb.TEST, "test")
    net.layer.insert(1, test.to_proto().layer[0])  # Caffe's usual train/test data pair
    net.name = "M-CNN"
    return net


def test_net_spec_rebuilds_the_committed_mcnn_field_by_field() -> None:
    committed = read_net(ROOT / "prototxt" / "demo" / "mcnn_train_val.prototxt")
    built = mcnn_spec()
    assert [layer.name for layer in built.layer] == [layer.name for layer in committed.layer]
    for ours, theirs in zip(built.layer, committed.layer, strict=True):
        assert text_format.MessageToString(ours) == text_format.MessageToString(theirs), ours.name
    assert built == committed


def test_fields_go_to_the_type_param_or_the_layer() -> None:
    n = NetSpec()
    n.x = L.Input(shape=dict(dim=[2, 3]))
    n.y = L.InnerProduct(n.x, num_output=5, name="custom", loss_weight=0.5, propagate_down=[True],
                         weight_filler=pb.FillerParameter(type="gaussian", std=0.1))
    layer = n.to_proto().layer[1]
    assert layer.name == "custom" and list(layer.top) == ["y"] and list(layer.bottom) == ["x"]
    ip = layer.inner_product_param
    assert ip.num_output == 5 and ip.weight_filler.std == pytest.approx(0.1)
    assert list(layer.loss_weight) == [0.5] and list(layer.propagate_down) == [True]
    assert n.to_proto().layer[0].input_param.shape[0].dim == [2, 3]


def test_autonames_ntop_in_place_and_silence() -> None:
    x = L.DummyData(shape=dict(dim=[2, 4]), data_filler=dict(type="constant", value=1))
    a, b = L.Python(x, ntop=2, python_param=dict(module="m", layer="Two", param_str="{}"))
    s = L.Sigmoid(a, in_place=True)
    silent = L.Silence(b, ntop=0)
    net = to_proto(s, silent)
    assert [(layer.name, layer.type, list(layer.bottom), list(layer.top)) for layer in net.layer] == [
        ("DummyData1", "DummyData", [], ["DummyData1"]),
        ("Python1", "Python", ["DummyData1"], ["Python1", "Python2"]),
        ("Sigmoid1", "Sigmoid", ["Python1"], ["Python1"]),
        ("Silence1", "Silence", ["Python2"], []),
    ]
    assert net.layer[1].python_param.layer == "Two"
    assert net.layer[0].dummy_data_param.data_filler[0].value == 1.0
    assert s.to_proto().layer[-1].name == "Sigmoid1"


def test_param_fields_come_from_the_schema() -> None:
    assert net_spec.PARAM_FIELDS["Convolution"] == "convolution_param"
    assert net_spec.PARAM_FIELDS["InnerProduct"] == "inner_product_param"
    assert net_spec.PARAM_FIELDS["BatchNorm"] == "batch_norm_param"
    assert net_spec.PARAM_FIELDS["TanH"] == "tanh_param"
    assert net_spec.PARAM_FIELDS["Transformation"] == "transform_param"
    assert P.Eltwise.MAX == pb.EltwiseParameter.MAX and P.Pooling.AVE == pb.PoolingParameter.AVE


def test_errors_name_the_layer_and_field() -> None:
    n = NetSpec()
    n.x = L.Input(shape=dict(dim=[1, 2]))
    n.c = L.Convolution(n.x, kernel_sizee=3)
    with pytest.raises(ConfigError, match=r"layer 'c' \(Convolution\): LayerParameter has no field 'kernel_sizee'"):
        n.to_proto()
    with pytest.raises(ConfigError, match=r"layer 'p' \(Pooling\): PoolingParameter has no field 'sizee'"):
        to_proto(L.Pooling(L.Input(), name="p", pooling_param=dict(sizee=2)))
    with pytest.raises(TypeError, match="Convolution input 0 is not a Top"):
        L.Convolution("data")
    with pytest.raises(AttributeError, match="NetSpec has no top 'nope'"):
        _ = n.nope


def test_a_generated_net_runs_on_the_engine() -> None:
    n = NetSpec()
    n.x = L.DummyData(shape=dict(dim=[2, 3, 4, 4]), data_filler=dict(type="constant", value=2))
    n.t = L.DummyData(shape=dict(dim=[2, 3, 4, 4]), data_filler=dict(type="constant", value=0.5))
    n.bn = L.BatchNorm(n.x, param=[dict(lr_mult=0)] * 3)
    n.scaled = L.Scale(n.x, bias_term=True, filler=dict(type="constant", value=0.25), bias_filler=dict(value=0.1))
    n.act = L.TanH(n.scaled)
    n.sum = L.Eltwise(n.act, n.t, operation=P.Eltwise.SUM, coeff=[1, -2])
    n.flat = L.Reshape(n.sum, shape=dict(dim=[0, -1]))
    n.loss = L.EuclideanLoss(n.flat, L.Reshape(n.t, shape=dict(dim=[0, -1])))
    net = Net(n.to_proto(), pb.TRAIN)
    assert net.layer_blobs("scaled")[0].tensor.detach().tolist() == [0.25, 0.25, 0.25]
    with torch.no_grad():
        blobs = net.forward({}, train=True)
    value = np.tanh(2 * 0.25 + np.float32(0.1)) - 2 * 0.5
    np.testing.assert_allclose(blobs["sum"].numpy(), np.full((2, 3, 4, 4), value), rtol=1e-6)
    # EuclideanLoss: sum over 2 x 48 values of (value - 0.5)^2 / (2 * 2)
    np.testing.assert_allclose(float(blobs["loss"]), 96 * (value - 0.5) ** 2 / 4, rtol=1e-5)
    assert torch.all(blobs["bn"] == 0)  # a constant batch normalises to 0
