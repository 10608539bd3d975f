"""The engine against a second Caffe implementation (OpenCV) and against hand-built caffemodels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.net import Net, load_net
from mcnn.errors import WeightsError
from tests.support import ROOT


@pytest.mark.parametrize("arch", ["mcnn", "alexnet", "googlenet"])
def test_engine_caffemodel_matches_opencv(arch: str, tmp_path: Path) -> None:
    """A caffemodel written by the engine, read by OpenCV with the committed deploy net: same probabilities."""
    cv2 = pytest.importorskip("cv2")
    deploy = ROOT / "prototxt" / "demo" / f"{arch}_deploy.prototxt"
    net = Net(cio.read_net(deploy), pb.TEST, generator=torch.Generator().manual_seed(7), source=str(deploy))
    with torch.no_grad():  # non-zero biases so every blob matters
        for blob in net.learnable():
            if blob.index == 1:
                blob.tensor.uniform_(-0.1, 0.1)
    model = tmp_path / "engine.caffemodel"
    cio.write_caffemodel(model, net.to_caffemodel())
    x = np.random.default_rng(3).random((2, *net.blob_shapes["data"]), dtype=np.float32)
    with torch.no_grad():
        ours = net.forward({"data": x})["prob"].numpy()
    cv_net = cv2.dnn.readNetFromCaffe(str(deploy), str(model))
    cv_net.setInput(x)
    theirs = cv_net.forward("prob")
    assert ours.shape == theirs.shape == (2, 4)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # the file reloads into a fresh engine net with identical outputs
    again = load_net(deploy, model)
    with torch.no_grad():
        np.testing.assert_array_equal(again.forward({"data": x})["prob"].numpy(), ours)


NET = """
name: "hand"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def _legacy_blob(array: np.ndarray) -> pb.BlobProto:
    """A BlobProto in the old num/channels/height/width form with double_data, as old tools wrote."""
    blob = pb.BlobProto()
    dims = (1,) * (4 - array.ndim) + array.shape
    blob.num, blob.channels, blob.height, blob.width = dims
    blob.double_data.extend(array.astype(np.float64).ravel().tolist())
    return blob


def test_independently_built_caffemodel_loads_by_layer_name(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    conv_w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    conv_b = rng.standard_normal(3).astype(np.float32)
    fc_w = rng.standard_normal((2, 12)).astype(np.float32)
    fc_b = np.array([0.5, -0.5], np.float32)
    model = pb.NetParameter(name="trained elsewhere")
    # Layers in another order, plus a layer the net doesn't have (ignored, as in Caffe).
    fc = model.layer.add(name="fc", type="InnerProduct")
    fc.blobs.extend([_legacy_blob(fc_w), _legacy_blob(fc_b)])
    model.layer.add(name="extra", type="InnerProduct").blobs.append(_legacy_blob(np.ones(3, np.float32)))
    conv = model.layer.add(name="conv", type="Convolution")
    conv.blobs.extend([_legacy_blob(conv_w), _legacy_blob(conv_b)])
    path = tmp_path / "hand.caffemodel"
    path.write_bytes(model.SerializeToString())

    net = Net(cio.parse_prototxt(NET, pb.NetParameter), pb.TEST)
    assert net.load_weights(path) == ["extra"]
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    with torch.no_grad():
        prob = net.forward({"data": x})["prob"].numpy()

    # numpy reference: 3x3 conv with pad 1, ReLU, 2x2 average pooling, fully connected, softmax
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    conv_out = np.zeros((3, 4, 4), np.float64)
    for o in range(3):
        for i in range(4):
            for j in range(4):
                conv_out[o, i, j] = (padded[:, i:i + 3, j:j + 3] * conv_w[o]).sum() + conv_b[o]
    pooled = np.maximum(conv_out, 0).reshape(3, 2, 2, 2, 2).mean(axis=(2, 4))
    logits = fc_w @ pooled.reshape(-1) + fc_b
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(prob[0], expected, rtol=1e-5)


def test_mismatched_caffemodel_names_the_layer(tmp_path: Path) -> None:
    model = pb.NetParameter()
    model.layer.add(name="fc", type="InnerProduct").blobs.extend(
        [cio.array_to_blob(np.zeros((5, 12), np.float32)), cio.array_to_blob(np.zeros(5, np.float32))])
    net = Net(cio.parse_prototxt(NET, pb.NetParameter), pb.TEST)
    with pytest.raises(WeightsError, match=r"cannot copy blob 0 of layer 'fc': shape \(5, 12\) in the file, \(2, 12\)"):
        net.load_weights(model)


def test_frozen_inference_matches_eager() -> None:
    """The traced, frozen model evaluate.py uses gives the eager net's blobs, for every batch shape."""
    from mcnn.engine.inference import InferenceModel

    deploy = ROOT / "prototxt" / "demo" / "mcnn_deploy.prototxt"
    net = Net(cio.read_net(deploy), pb.TEST, generator=torch.Generator().manual_seed(2))
    model = InferenceModel(net, ["prob", "fc1"])
    for n in (3, 1):
        x = np.random.default_rng(n).random((n, *net.blob_shapes["data"]), dtype=np.float32)
        fast = model(x)
        with torch.no_grad():
            eager = net.forward({"data": x})
        for name in ("prob", "fc1"):
            np.testing.assert_allclose(fast[name], eager[name].numpy(), rtol=1e-4, atol=1e-5)
    assert all(m is not None for m in model._traced.values())  # both shapes were compiled, not eager fallbacks
