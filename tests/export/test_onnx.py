"""ONNX export: the files compute what the engine and Caffe compute, at any batch size.

What is run in onnxruntime against the engine (batch 1 and 4, within 1e-4):
- the committed demo deploy nets of all three architectures at their own size (2 x 128 x 128);
- the committed M-CNN of every other dataset whose input, reduced to its channels and
  128 + H mod 64 by 128 + W mod 64, differs from the demo's (BBBC014, BBBC015, CHO, HeLa);
- the full-size GoogLeNet (224 x 224) of HeLa, and its full-size AlexNet (227 x 227) up to pool5;
- two hand-made nets for Caffe's pooling/LRN border rules and the remaining layer types.
Checked structurally (every layer type convertible, and layer for layer a net run above but for
the input channels and the class count): the other datasets' AlexNet and GoogLeNet (against
HeLa's), and the M-CNN of BBBC013, BBBC016, BBBC021 and HPA reduced to 128 x 128 (against the demo's).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.export import OnnxRunner, export_onnx, onnx_model, supported_types, with_input_shape
from mcnn.export.common import check_layers, engine_outputs, random_feeds
from tests.support.export_nets import ARCHS, DATASETS, deploy_path, fresh_net, input_shape


def _check_file(path: Path, net, outputs: list[str], batches=(1, 4), atol: float = 1e-4) -> dict[str, np.ndarray]:
    """Run the file (a session of its own) and the engine on the same random batches (other seeds than
    the export's check); returns the last batch's ONNX outputs."""
    got: dict[str, np.ndarray] = {}
    session = OnnxRunner(path)
    for i, batch in enumerate(batches):
        feeds = random_feeds(net, batch, seed=10 + i)
        want = engine_outputs(net, feeds, outputs)
        got = session(feeds)
        for name in outputs:
            assert got[name].shape == want[name].shape
            np.testing.assert_allclose(got[name], want[name], atol=atol, rtol=0, err_msg=name)
    return got


def _reduced(dataset: str) -> tuple[int, int, int]:
    """The M-CNN input the tests run for ``dataset``: its channels, 128 + H mod 64, 128 + W mod 64."""
    c, h, w = input_shape(deploy_path(dataset, "mcnn"))
    return (c, 128 + h % 64, 128 + w % 64)


@pytest.mark.parametrize("arch", ARCHS)
def test_committed_demo_nets_match_the_engine(arch: str, tmp_path: Path) -> None:
    """Each demo deploy net, exported, gives the engine's probabilities at batch 1 and 4 (the export's
    check) and at batch 3 in a session of its own; the batch axis is dynamic."""
    net = fresh_net(deploy_path("demo", arch), seed=3)
    report = export_onnx(net, tmp_path / f"{arch}.onnx", batches=(1, 4))
    assert report.worst <= 1e-4 and report.outputs == ["prob"] and report.batches == (1, 4)
    session = OnnxRunner(tmp_path / f"{arch}.onnx")
    assert session.session.get_inputs()[0].shape == ["N", 2, 128, 128]
    feeds = random_feeds(net, 3, seed=11)
    prob = session(feeds)["prob"]
    np.testing.assert_allclose(prob, engine_outputs(net, feeds, ["prob"])["prob"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    assert prob.shape == (3, 4) and np.ptp(prob) > 1e-3  # not a constant output


#: Datasets whose M-CNN, reduced, has another input size than the demo's 128 x 128 (the others are the demo
#: net but for channels and classes: checked structurally below).
REDUCED_OTHER = [d for d in DATASETS if d != "demo" and _reduced(d)[1:] != (128, 128)]


@pytest.mark.slow
@pytest.mark.parametrize("dataset", REDUCED_OTHER)
def test_committed_mcnn_of_every_dataset_matches_at_a_reduced_input(dataset: str, tmp_path: Path) -> None:
    """The dataset's M-CNN (its channels and classes) at 128 + H mod 64 by 128 + W mod 64: the remainders
    of the full size against the M-CNN's scales 2..64, so the same partial border windows occur."""
    net = fresh_net(deploy_path(dataset, "mcnn"), seed=5, shape=_reduced(dataset))
    report = export_onnx(net, tmp_path / "mcnn.onnx", batches=(1, 4))
    assert report.worst <= 1e-4 and report.batches == (1, 4) and report.inputs == {"data": _reduced(dataset)}


def _layers_but_channels_and_classes(path: Path, shape: tuple[int, ...] | None = None) -> list[pb.LayerParameter]:
    """The layers with the input's channel count and the class count (the last InnerProduct's num_output)
    cleared; ``shape`` replaces the input size first."""
    param = cio.read_net(path)
    layers = list((with_input_shape(param, shape) if shape else param).layer)
    for layer in layers:
        if layer.type == "Input":
            layer.input_param.shape[0].dim[1] = 0
    [layer for layer in layers if layer.type == "InnerProduct"][-1].inner_product_param.ClearField("num_output")
    return layers


#: The dataset whose full-size AlexNet and GoogLeNet are run; the other datasets' equal them but for channels/classes.
FULL_SIZE = "hela"


@pytest.mark.slow
def test_full_size_googlenet_matches_the_engine(tmp_path: Path) -> None:
    """The committed 224x224 GoogLeNet of HeLa (1 channel, 10 classes) at batch 1 and 4."""
    net = fresh_net(deploy_path(FULL_SIZE, "googlenet"), seed=4)
    report = export_onnx(net, tmp_path / "googlenet.onnx", batches=(1, 4))
    assert report.worst <= 1e-4 and net.blob_shapes["data"] == (1, 224, 224)


def test_full_size_alexnet_features_match_the_engine(tmp_path: Path) -> None:
    """The committed 227x227 AlexNet of HeLa up to pool5 (every layer whose geometry depends on the input
    size; the FC layers after it are the demo net's, run above) at batch 1 and 4."""
    param = cio.read_net(deploy_path(FULL_SIZE, "alexnet"))
    names = [layer.name for layer in param.layer]
    del param.layer[names.index("pool5") + 1:]
    net = fresh_net(param, seed=4, source="alexnet up to pool5")
    report = export_onnx(net, tmp_path / "alexnet.onnx", batches=(1, 4))
    assert report.outputs == ["pool5"] and report.worst <= 1e-4
    assert net.blob_shapes["pool5"] == (256, 6, 6)


@pytest.mark.parametrize("dataset", [d for d in DATASETS if d != "demo"])
def test_other_deploy_nets_are_tested_ones_but_for_channels_and_classes(dataset: str) -> None:
    """Structural check: every committed deploy net has only layer types the exporter handles; the
    AlexNet/GoogLeNet of each dataset equal the full-size ones run above except for input channels and
    classes, and the M-CNN reduced to 128 x 128 equals the demo net (run above) but for them."""
    for arch in ARCHS:
        path = deploy_path(dataset, arch)
        check_layers(cio.read_net(path), supported_types(), str(path), "ONNX")
        if arch != "mcnn":
            assert _layers_but_channels_and_classes(path) == _layers_but_channels_and_classes(
                deploy_path(FULL_SIZE, arch))
        elif dataset not in REDUCED_OTHER:
            assert _layers_but_channels_and_classes(path, _reduced(dataset)) == _layers_but_channels_and_classes(
                deploy_path("demo", arch))


BORDERS = """
name: "caffe_borders"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 11 dim: 10 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 5 kernel_size: 3 pad: 1 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "max_p1" type: "Pooling" bottom: "conv1" top: "max_p1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_p1" type: "Pooling" bottom: "conv1" top: "ave_p1"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_p0" type: "Pooling" bottom: "conv1" top: "ave_p0"
        pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ave_p2" type: "Pooling" bottom: "conv1" top: "ave_p2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "max_p2" type: "Pooling" bottom: "conv1" top: "max_p2"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 2 } }
layer { name: "ave_global" type: "Pooling" bottom: "conv1" top: "ave_global"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "lrn_across" type: "LRN" bottom: "conv1" top: "lrn_across"
        lrn_param { local_size: 3 alpha: 2.0 beta: 0.75 k: 1.5 } }
layer { name: "lrn_within" type: "LRN" bottom: "conv1" top: "lrn_within"
        lrn_param { local_size: 3 alpha: 3.0 beta: 0.75 norm_region: WITHIN_CHANNEL } }
"""

#: (blob, MAX/AVE, kernel, stride, pad) of the pooling layers of BORDERS.
POOLS = [("max_p1", "MAX", 3, 2, 1), ("ave_p1", "AVE", 3, 2, 1), ("ave_p0", "AVE", 2, 2, 0),
         ("ave_p2", "AVE", 3, 2, 2), ("max_p2", "MAX", 3, 2, 2)]


def caffe_pool(x: np.ndarray, method: str, k: int, s: int, p: int, divisor: str = "caffe") -> np.ndarray:
    """Pooling as Caffe's pooling_layer.cpp loops it (written out here independently of the toolkit).

    Output size rounds up; a last window starting in the padding is dropped. MAX takes the window
    clipped to the image; AVE sums it and divides by the window clipped at image + pad
    (``divisor="pixels"``: by the image pixels, ``"kernel"``: by k*k, the usual converter mistakes).
    """
    size = x.shape[2:]
    out = []
    for n in size:
        o = math.ceil((n + 2 * p - k) / s) + 1
        out.append(o - 1 if p and (o - 1) * s >= n + p else o)
    y = np.zeros((*x.shape[:2], *out), np.float64)
    for i in range(out[0]):
        for j in range(out[1]):
            h0, w0 = i * s - p, j * s - p
            h1, w1 = min(h0 + k, size[0] + p), min(w0 + k, size[1] + p)
            area = (h1 - h0) * (w1 - w0)
            win = x[:, :, max(h0, 0):min(h1, size[0]), max(w0, 0):min(w1, size[1])]
            if method == "MAX":
                y[:, :, i, j] = win.max(axis=(2, 3))
            else:
                d = {"caffe": area, "pixels": win.shape[2] * win.shape[3], "kernel": k * k}[divisor]
                y[:, :, i, j] = win.sum(axis=(2, 3)) / d
    return y


def caffe_lrn(x: np.ndarray, n: int, alpha: float, beta: float, k: float, within: bool) -> np.ndarray:
    """Caffe's LRN (lrn_layer.cpp): across channels k + alpha/n * sum of x^2 over n channels centred on c;
    within a channel 1 + alpha/n^2 * sum over the n x n window (zero padded); y = x * scale^-beta."""
    half = (n - 1) // 2
    sq = np.pad(x.astype(np.float64) ** 2, [(0, 0), (half, half), (0, 0), (0, 0)] if not within
                else [(0, 0), (0, 0), (half, half), (half, half)])
    if within:
        windows = sum(sq[:, :, i:i + x.shape[2], j:j + x.shape[3]] for i in range(n) for j in range(n))
        return x * (1 + alpha / n**2 * windows) ** -beta
    windows = sum(sq[:, i:i + x.shape[1]] for i in range(n))
    return x * (k + alpha / n * windows) ** -beta


def test_pooling_and_lrn_follow_caffe_at_the_borders(tmp_path: Path) -> None:
    """Partial CEIL windows, Caffe's AVE divisor, the dropped window of a large pad and both LRN forms:
    the ONNX file gives Caffe's values (an independent loop) and the engine's, at batch 1 and 4."""
    net = fresh_net(cio.parse_prototxt(BORDERS, pb.NetParameter), seed=1, source="borders")
    outputs = ["conv1", *[b for b, *_ in POOLS], "ave_global", "lrn_across", "lrn_within"]
    report = export_onnx(net, tmp_path / "borders.onnx", outputs=outputs, batches=(1, 4))
    assert report.worst <= 1e-5
    got = _check_file(tmp_path / "borders.onnx", net, outputs, atol=1e-5)
    x = got["conv1"].astype(np.float64)
    assert (x > 0).mean() > 0.3  # the ReLU'd features are not all zero
    for blob, method, k, s, p in POOLS:
        np.testing.assert_allclose(got[blob], caffe_pool(x, method, k, s, p), atol=1e-5, err_msg=blob)
    # the geometry is one where it matters: ceil > floor, dropped windows, border divisors
    assert got["max_p1"].shape[2:] == (6, 6) and got["ave_p0"].shape[2:] == (6, 5)
    assert got["ave_p2"].shape[2:] == (7, 6)  # W: the 7th window would start in the padding
    # the divisors a converter gets wrong: ave_p1's last column has 2x3 windows (clipped at W + pad),
    # ave_p0's last row a 1x2 one; ave_p2's windows all reach 3x3 into the padding (not the pixel count)
    wrong_divisors = {"ave_p1": ("pixels", "kernel"), "ave_p0": ("kernel",), "ave_p2": ("pixels",)}
    for blob, _, k, s, p in POOLS[1:4]:
        for wrong in wrong_divisors[blob]:
            assert np.abs(caffe_pool(x, "AVE", k, s, p, wrong) - got[blob]).max() > 1e-2, (blob, wrong)
    np.testing.assert_allclose(got["ave_global"][:, :, 0, 0], x.mean(axis=(2, 3)), atol=1e-5)
    np.testing.assert_allclose(got["lrn_across"], caffe_lrn(x, 3, 2.0, 0.75, 1.5, False), atol=1e-5)
    np.testing.assert_allclose(got["lrn_within"], caffe_lrn(x, 3, 3.0, 0.75, 1.0, True), atol=1e-5)
    # ONNX's LRN with Caffe's alpha taken as alpha*size (the other convention) would differ clearly
    assert np.abs(caffe_lrn(x, 3, 6.0, 0.75, 1.5, False) - got["lrn_across"]).max() > 1e-2


EXTRAS = """
name: "extras"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }
layer { name: "split" type: "Split" bottom: "data" top: "a" top: "b" }
layer { name: "conv" type: "Convolution" bottom: "a" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 pad: 2 dilation: 2 group: 2
                            weight_filler { type: "xavier" } } }
layer { name: "leaky" type: "ReLU" bottom: "conv" top: "conv" relu_param { negative_slope: 0.1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv"
        scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 2 } } }
layer { name: "sum" type: "Eltwise" bottom: "conv" bottom: "b" top: "sum" eltwise_param { coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "sum" bottom: "b" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "prod" bottom: "sum" top: "max" eltwise_param { operation: MAX } }
layer { name: "sig" type: "Sigmoid" bottom: "max" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "sum" top: "tanh" }
layer { name: "cat" type: "Concat" bottom: "sig" bottom: "tanh" top: "cat" concat_param { axis: 1 } }
layer { name: "drop" type: "Dropout" bottom: "cat" top: "cat" dropout_param { dropout_ratio: 0.5 } }
layer { name: "reshape" type: "Reshape" bottom: "cat" top: "rows" reshape_param { shape { dim: 0 dim: 8 dim: -1 } } }
layer { name: "fc_rows" type: "InnerProduct" bottom: "rows" top: "fc_rows"
        inner_product_param { num_output: 3 axis: 2 weight_filler { type: "xavier" } } }
layer { name: "flat" type: "Flatten" bottom: "fc_rows" top: "flat" }
layer { name: "fc" type: "InnerProduct" bottom: "flat" top: "fc"
        inner_product_param { num_output: 5 transpose: true weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_every_other_layer_type_matches_the_engine(tmp_path: Path) -> None:
    """Split, dilated grouped conv, leaky ReLU, BatchNorm's stored statistics, Scale with bias, Eltwise
    SUM/PROD/MAX, Sigmoid, TanH, Concat, Dropout, Reshape, InnerProduct on axis 2 and transposed,
    Flatten, Softmax; ONNX opset 21 this time."""
    net = fresh_net(cio.parse_prototxt(EXTRAS, pb.NetParameter), seed=2, source="extras")
    bn = net.layer_blobs("bn")
    assert bn is not None
    rng = np.random.default_rng(0)
    with __import__("torch").no_grad():  # stored statistics as a trained net has them (factor 4)
        bn[0].tensor.copy_(__import__("torch").from_numpy(rng.standard_normal(4, dtype=np.float32) * 4))
        bn[1].tensor.copy_(__import__("torch").from_numpy(rng.random(4, dtype=np.float32) * 8 + 1))
        bn[2].tensor.fill_(4.0)
    outputs = ["prob", "fc_rows", "cat", "conv", "max"]
    report = export_onnx(net, tmp_path / "extras.onnx", outputs=outputs, opset=21, batches=(1, 4))
    assert report.worst <= 1e-5
    assert onnx.load(str(tmp_path / "extras.onnx")).opset_import[0].version == 21
    got = _check_file(tmp_path / "extras.onnx", net, outputs, atol=1e-5)
    assert got["fc_rows"].shape == (4, 8, 3) and got["prob"].shape == (4, 5)
    ops = {node.op_type for node in onnx_model(net, outputs).graph.node}
    assert {"Sum", "Max", "Mul", "LeakyRelu", "Sigmoid", "Tanh", "Gemm", "MatMul", "Reshape", "Div"} <= ops
    # --outputs conv: the graph is cut to the layers conv depends on
    pruned = onnx_model(net, ["conv"])
    assert [o.name for o in pruned.graph.output] == ["conv"]
    assert {node.op_type for node in pruned.graph.node} == {"Identity", "Conv", "LeakyRelu", "Sub", "Div", "Mul", "Add"}
