"""pycaffe's Net and Blob on the engine: shared memory, forward/backward by hand and by autograd, surgery."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mcnn.pycaffe as caffe
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError, PrototxtError, ShapeError
from tests.support.tiny import TinySetup

INPUT = 'layer {{ name: "data" type: "Input" top: "data" input_param {{ shape {{ {dims} }} }} }}\n'
CONV = ('layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 2 '
        'kernel_size: 3 weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.1 } } }\n'
        'layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }\n')
HEAD = ('layer { name: "ip" type: "InnerProduct" bottom: "conv" top: "ip" inner_product_param { num_output: 3 '
        'weight_filler { type: "gaussian" std: 0.5 } bias_filler { type: "constant" value: 0.2 } } }\n'
        'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }\n')


def dims(*shape: int) -> str:
    """Prototxt ``dim:`` entries."""
    return " ".join(f"dim: {d}" for d in shape)


def write_net(tmp_path: Path, body: str, name: str = "net.prototxt") -> Path:
    """A prototxt holding ``body`` under a net name."""
    path = tmp_path / name
    path.write_text(f'name: "tiny"\n{body}')
    return path


@pytest.fixture
def tiny_net(tmp_path: Path) -> Path:
    """Input 2x1x4x4 -> conv 3x3 (2) -> ReLU in place -> InnerProduct (3) -> Softmax."""
    return write_net(tmp_path, INPUT.format(dims=dims(2, 1, 4, 4)) + CONV + HEAD)


def by_hand(x: np.ndarray, conv_w: np.ndarray, conv_b: np.ndarray, ip_w: np.ndarray, ip_b: np.ndarray) -> np.ndarray:
    """The tiny net's probabilities with explicit loops (valid 3x3 convolution, ReLU, affine, softmax)."""
    n = x.shape[0]
    conv = np.zeros((n, 2, 2, 2))
    for b in range(n):
        for o in range(2):
            for i in range(2):
                for j in range(2):
                    conv[b, o, i, j] = (x[b, 0, i:i + 3, j:j + 3] * conv_w[o, 0]).sum() + conv_b[o]
    scores = np.maximum(conv, 0).reshape(n, -1) @ ip_w.T + ip_b
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_layout_follows_caffe(tiny_net: Path) -> None:
    net = caffe.Net(str(tiny_net), caffe.TEST)
    assert [(k, v.data.shape) for k, v in net.blobs.items()] == [
        ("data", (2, 1, 4, 4)), ("conv", (2, 2, 2, 2)), ("ip", (2, 3)), ("prob", (2, 3))]
    assert [(k, [b.data.shape for b in v]) for k, v in net.params.items()] == [
        ("conv", [(2, 1, 3, 3), (2,)]), ("ip", [(3, 8), (3,)])]
    assert net.inputs == ["data"] and net.outputs == ["prob"]
    assert net._layer_names == ["data", "conv", "relu", "ip", "prob"]
    assert [layer.type for layer in net.layers] == ["Input", "Convolution", "ReLU", "InnerProduct", "Softmax"]
    assert net.layer_dict["ip"].blobs[1] is net.params["ip"][1]
    assert net.top_names["relu"] == ["conv"] and net.bottom_names["ip"] == ["conv"]
    assert dict(net.blob_loss_weights) == {"data": 0, "conv": 0, "ip": 0, "prob": 0}
    np.testing.assert_allclose(net.params["ip"][1].data, [0.2, 0.2, 0.2])
    blob = net.blobs["data"]
    assert (blob.num, blob.channels, blob.height, blob.width, blob.count) == (2, 1, 4, 4, 32)
    assert (net.blobs["ip"].height, net.blobs["ip"].width) == (1, 1)


def test_in_place_writes_and_surgery_change_the_next_forward(tiny_net: Path) -> None:
    caffe.set_random_seed(3)
    net = caffe.Net(str(tiny_net), caffe.TEST)
    x = np.random.default_rng(0).random((2, 1, 4, 4)).astype(np.float32)
    held = net.blobs["data"].data
    held[...] = x  # an array held from before stays the blob's memory
    out = net.forward()
    p = [b.data.copy() for b in net.params["conv"] + net.params["ip"]]
    np.testing.assert_allclose(out["prob"], by_hand(x, *p), rtol=1e-5)
    assert out["prob"] is not None and np.shares_memory(out["prob"], net.blobs["prob"].data)
    # Surgery: conv weights zero, biases +1/-1 -> features [1,1,1,1,0,0,0,0] for every image.
    net.params["conv"][0].data[...] = 0
    net.params["conv"][1].data[...] = [1.0, -1.0]
    w = np.arange(24, dtype=np.float32).reshape(3, 8) / 10
    net.params["ip"][0].data[...] = w
    net.params["ip"][1].data[...] = [0.0, 1.0, -1.0]
    scores = w[:, :4].sum(axis=1) + np.array([0.0, 1.0, -1.0])
    expected = np.exp(scores) / np.exp(scores).sum()
    prob = net.forward()["prob"]
    np.testing.assert_allclose(prob, np.stack([expected, expected]), rtol=1e-5)
    np.testing.assert_allclose(net.blobs["conv"].data[:, 0], 1.0)
    np.testing.assert_allclose(net.blobs["conv"].data[:, 1], 0.0)  # ReLU in place: the blob holds its output


def test_forward_keywords_start_end_and_batch_checks(tiny_net: Path) -> None:
    net = caffe.Net(str(tiny_net), caffe.TEST)
    x = np.ones((2, 1, 4, 4), np.float32)
    assert set(net.forward(data=x, end="relu")) == {"conv"}
    np.testing.assert_array_equal(net.blobs["data"].data, x)
    net.blobs["conv"].data[...] = 0  # start at ip: reads the blob as it is now
    net.params["ip"][1].data[...] = [2.0, 0.0, 0.0]
    prob = net.forward(start="ip", blobs=["ip"])
    np.testing.assert_allclose(prob["ip"], [[2.0, 0, 0]] * 2)
    np.testing.assert_allclose(prob["prob"][0], np.exp([2.0, 0, 0]) / np.exp([2.0, 0, 0]).sum(), rtol=1e-6)
    with pytest.raises(ShapeError, match=r"'data'.*not batch sized"):
        net.forward(data=np.ones((3, 1, 4, 4)))
    with pytest.raises(ConfigError, match=r"inputs are \['data'\]"):
        net.forward(image=x)
    with pytest.raises(KeyError, match="no layer 'nope'"):
        net.forward(end="nope")


def reference_grads(net: caffe.Net, x: np.ndarray, top: str, diff: np.ndarray) -> list[np.ndarray]:
    """Gradients w.r.t. the input and every learnable blob by autograd over the engine's whole-net forward."""
    engine = net._engine
    xt = torch.tensor(x, requires_grad=True)
    value = engine.forward({"data": xt})[top]
    params = list(engine.parameters())
    grads = torch.autograd.grad(value, [xt, *params], torch.tensor(diff))
    return [g.numpy() for g in grads]


def test_backward_matches_autograd_on_a_multi_scale_net(tiny: TinySetup) -> None:
    """The tiny M-CNN deploy net: pooled copies of the input (fan-out), in-place ReLUs, concat."""
    caffe.set_random_seed(5)
    net = caffe.Net(str(tiny.deploy), caffe.TEST)
    rng = np.random.default_rng(1)
    x = rng.random(net.blobs["data"].shape).astype(np.float32)
    net.forward(data=x)
    diff = rng.standard_normal(net.blobs["prob"].shape).astype(np.float32)
    got = net.backward(prob=diff)
    want = reference_grads(net, x, "prob", diff)
    np.testing.assert_allclose(got["data"], want[0], rtol=1e-4, atol=1e-7)
    mine = [b.diff for blobs in net.params.values() for b in blobs]
    assert len(mine) == len(want) - 1 == 30
    for a, b in zip(mine, want[1:], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    first = net.params["conv1_s1"][0].diff.copy()
    net.backward(prob=diff)  # param diffs add up, as in Caffe, until cleared
    np.testing.assert_allclose(net.params["conv1_s1"][0].diff, 2 * first, rtol=1e-6)
    net.clear_param_diffs()
    assert not net.params["conv1_s1"][0].diff.any()


def test_loss_backward_is_seeded_with_the_loss_weight(tmp_path: Path) -> None:
    body = ('layer { name: "in" type: "Input" top: "data" top: "label" '
            'input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "data" bottom: "label" top: "loss" '
            'loss_weight: 2 }\n')
    net = caffe.Net(str(write_net(tmp_path, body)), caffe.TRAIN)
    assert net.blobs["label"].shape == (4,) and net.blobs["loss"].shape == ()
    assert net.blob_loss_weights["loss"] == 2 and net.blobs["loss"].diff == 2
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 2], np.float32)
    out = net.forward(data=x, label=labels)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert out["loss"] == pytest.approx(-np.log(p[np.arange(4), labels.astype(int)]).mean(), rel=1e-5)
    grad = net.backward()["data"]
    want = p.copy()
    want[np.arange(4), labels.astype(int)] -= 1
    np.testing.assert_allclose(grad, 2 * want / 4, rtol=1e-5, atol=1e-7)
    assert not net.blobs["label"].diff.any()  # no gradient flows to labels


def test_reshape_forward_all_and_batches(tmp_path: Path) -> None:
    caffe.set_random_seed(7)
    conv_only = write_net(tmp_path, INPUT.format(dims=dims(2, 1, 4, 4)) + CONV)
    net = caffe.Net(str(conv_only), caffe.TEST)
    net.blobs["data"].reshape(3, 1, 6, 5)
    net.reshape()
    assert net.blobs["conv"].shape == (3, 2, 4, 3)
    x = np.random.default_rng(3).random((3, 1, 6, 5)).astype(np.float32)
    w, b = net.params["conv"][0].data, net.params["conv"][1].data
    want = np.maximum(F.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy(), 0)
    np.testing.assert_allclose(net.forward(data=x)["conv"], want, rtol=1e-5, atol=1e-6)
    full = caffe.Net(str(write_net(tmp_path, INPUT.format(dims=dims(2, 1, 4, 4)) + CONV + HEAD, "f.prototxt")),
                     caffe.TEST)
    items = np.random.default_rng(4).random((5, 1, 4, 4)).astype(np.float32)
    every = full.forward_all(data=items)["prob"]
    assert every.shape == (5, 3)
    single = [full.forward(data=np.stack([items[i], items[i]]))["prob"][0].copy() for i in range(5)]
    np.testing.assert_allclose(every, np.stack(single), rtol=1e-6)
    outs, diffs = full.forward_backward_all(data=items, prob=np.ones((5, 3), np.float32))
    assert outs["prob"].shape == (5, 3) and diffs["data"].shape == (5, 1, 4, 4)
    np.testing.assert_allclose(diffs["data"], 0, atol=1e-6)  # softmax sums to 1: a constant top diff has no gradient
    full.blobs["data"].reshape(2, 1, 5, 5)
    with pytest.raises(ShapeError, match=r"layer 'ip'.*blob 0 would need shape \(3, 18\)"):
        full.reshape()


def test_save_copy_from_and_share_with(tiny_net: Path, tmp_path: Path) -> None:
    caffe.set_random_seed(11)
    a = caffe.Net(str(tiny_net), caffe.TEST)
    b = caffe.Net(str(tiny_net), caffe.TEST)
    assert not np.array_equal(a.params["conv"][0].data, b.params["conv"][0].data)
    x = np.random.default_rng(5).random((2, 1, 4, 4)).astype(np.float32)
    model = tmp_path / "a.caffemodel"
    a.save(str(model))
    c = caffe.Net(str(tiny_net), str(model), caffe.TEST)  # the deprecated (weights, phase) form
    d = caffe.Net(str(tiny_net), caffe.TEST, weights=str(model))
    want = a.forward(data=x)["prob"].copy()
    for net in (c, d):
        np.testing.assert_array_equal(net.forward(data=x)["prob"], want)
    b.copy_from(str(model))
    np.testing.assert_array_equal(b.params["ip"][0].data, a.params["ip"][0].data)
    e = caffe.Net(str(tiny_net), phase=caffe.TEST)
    e.share_with(a)
    assert np.shares_memory(e.params["conv"][0].data, a.params["conv"][0].data)
    a.params["ip"][1].data[...] = [5.0, 0.0, 0.0]
    np.testing.assert_allclose(e.forward(data=x)["prob"], a.forward(data=x)["prob"], rtol=1e-6)


def test_errors_are_one_line_and_name_the_place(tiny_net: Path, tmp_path: Path) -> None:
    net = caffe.Net(str(tiny_net), caffe.TEST)
    with pytest.raises(KeyError, match="no blob 'nope'; the net's are: data, conv, ip, prob"):
        net.blobs["nope"]
    with pytest.raises(KeyError, match="no layer with learnable blobs 'relu'"):
        net.params["relu"]
    bad = write_net(tmp_path, 'layer { name: "x" type: "Input" top: "x"\n  bogus_field: 3 }\n', "bad.prototxt")
    with pytest.raises(PrototxtError, match=r"bad\.prototxt: 3:.*bogus_field"):
        caffe.Net(str(bad), caffe.TEST)
    orphan = write_net(tmp_path, 'layer { name: "r" type: "ReLU" bottom: "x" top: "y" }\n', "orphan.prototxt")
    with pytest.raises(ShapeError, match="layer 'r': bottom blob 'x' is not produced"):
        caffe.Net(str(orphan), caffe.TEST)
    with pytest.raises(ConfigError, match=r"phase must be caffe\.TRAIN"):
        caffe.Net(str(tiny_net))
    net.blobs["data"].reshape(2, 1, 5, 5)
    with pytest.raises(ShapeError, match="layer 'ip'"):
        net.forward()


def test_blobs_outlive_their_net(tiny_net: Path) -> None:
    net = caffe.Net(str(tiny_net), caffe.TEST)
    net.forward(data=np.ones((2, 1, 4, 4), np.float32))
    prob, weights = net.blobs["prob"], net.params["ip"][0]
    values = prob.data.copy()
    del net
    gc.collect()
    np.testing.assert_array_equal(prob.data, values)
    assert weights.data.shape == (3, 8) and np.isfinite(weights.data).all()
    blob = caffe.Blob((2, 3))
    blob.data[...] = 1
    blob.reshape(3, 2)  # same count: values kept
    assert blob.shape == (3, 2) and blob.data.sum() == 6
    blob.reshape(4, 4)
    assert blob.data.sum() == 0 and blob.diff.shape == (4, 4)


def test_data_layers_read_one_batch_per_forward(tiny: TinySetup) -> None:
    net = caffe.Net(str(tiny.train_val), caffe.TEST)
    assert net.inputs == [] and net.outputs == ["accuracy", "loss"]
    assert net.blobs["data"].shape == (4, 2, 32, 32) and net.blobs["label"].shape == (4,)
    labels = []
    for _ in range(3):
        net.forward()
        labels.append(net.blobs["label"].data.tolist())
    assert labels == [[0, 1, 2, 0], [1, 2, 0, 1], [2, 0, 1, 2]]  # the LMDB's records in key order
    assert 0 <= float(net.blobs["accuracy"].data) <= 1 and float(net.blobs["loss"].data) > 0


def test_module_surface() -> None:
    assert (caffe.TRAIN, caffe.TEST) == (0, 1)
    types = caffe.layer_type_list()
    assert types == sorted(types) and {"Convolution", "Data", "Input", "SoftmaxWithLoss"} <= set(types)
    assert caffe.has_nccl() is False
    assert caffe.caffe_pb2 is pb and caffe.caffe_pb2.TEST == 1
    caffe.set_mode_cpu()
    with pytest.raises(ConfigError, match=r"at most 5 positional arguments"):
        caffe.Net("x.prototxt", 1, 0, [], None, "extra")


def test_random_seed_makes_fillers_reproducible(tiny_net: Path) -> None:
    caffe.set_random_seed(21)
    a = caffe.Net(str(tiny_net), caffe.TEST).params["conv"][0].data.copy()
    b = caffe.Net(str(tiny_net), caffe.TEST).params["conv"][0].data.copy()
    caffe.set_random_seed(21)
    c = caffe.Net(str(tiny_net), caffe.TEST).params["conv"][0].data.copy()
    assert not np.array_equal(a, b)  # one stream: the second net draws after the first
    np.testing.assert_array_equal(a, c)
    assert 0.2 < a.std() < 1.0  # the gaussian filler's std 0.5


def test_gpu_mode_needs_cuda() -> None:
    if torch.cuda.is_available():
        pytest.skip("this check is for machines without CUDA")
    with pytest.raises(ConfigError, match="set_mode_gpu: this PyTorch sees no CUDA device"):
        caffe.set_mode_gpu()
    with pytest.raises(ConfigError, match=r"set_device\(0\)"):
        caffe.set_device(0)
    with pytest.raises(AttributeError, match="no attribute 'draw'"):
        caffe.draw  # noqa: B018


def test_backward_through_a_python_layer(tmp_path: Path) -> None:
    """tests/engine/python_layers.ChannelScale: y = w[c] x, its own backward, its blob in ``params``."""
    body = (INPUT.format(dims=dims(2, 3, 2, 2))
            + 'layer { name: "cs" type: "Python" bottom: "data" top: "y" python_param { '
              'module: "tests.engine.python_layers" layer: "ChannelScale" param_str: "{\\"init\\": 0.5}" } }\n')
    net = caffe.Net(str(write_net(tmp_path, body)), caffe.TRAIN)
    assert type(net.layers[1]).__name__ == "ChannelScale" and net.layers[1].param_str == '{"init": 0.5}'
    assert net.blobs["y"].shape == (2, 3, 2, 2)
    np.testing.assert_array_equal(net.params["cs"][0].data, [0.5, 0.5, 0.5])
    net.params["cs"][0].data[...] = [1.0, -2.0, 3.0]
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    dy = rng.standard_normal((2, 3, 2, 2)).astype(np.float32)
    w = np.array([1.0, -2.0, 3.0], np.float32)[None, :, None, None]
    np.testing.assert_allclose(net.forward(data=x)["y"], x * w, rtol=1e-6)
    grads = net.backward(y=dy)
    np.testing.assert_allclose(grads["data"], dy * w, rtol=1e-6)
    np.testing.assert_allclose(net.params["cs"][0].diff, (dy * x).sum(axis=(0, 2, 3)), rtol=1e-5)
