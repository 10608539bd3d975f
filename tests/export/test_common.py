"""The shared parts of the exporters: the input-shape override, the difference measure, the weights check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.errors import ConfigError, WeightsError
from mcnn.export import load_export_net, with_input_shape
from mcnn.export.common import difference
from tests.support.export_nets import deploy_path, fresh_net

INPUT_LAYER = 'layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 5 dim: 1 dim: 8 dim: 8 } } }'
LEGACY_DIM = 'input: "data" input_dim: 5 input_dim: 1 input_dim: 8 input_dim: 8'
LEGACY_SHAPE = 'input: "data" input_shape { dim: 5 dim: 1 dim: 8 dim: 8 }'
TWO_INPUTS = 'layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 1 dim: 8 } } }'
BODY = 'layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }'


def test_input_shape_replaces_the_per_image_shape_and_keeps_the_batch() -> None:
    param = cio.parse_prototxt(f"{INPUT_LAYER}\n{BODY}", pb.NetParameter)
    net = fresh_net(with_input_shape(param, (3, 6, 7)))
    assert net.blob_shapes["data"] == (3, 6, 7) and net.blob_shapes["relu"] == (3, 6, 7)
    assert list(with_input_shape(param, (3, 6, 7)).layer[0].input_param.shape[0].dim) == [5, 3, 6, 7]
    assert list(param.layer[0].input_param.shape[0].dim) == [5, 1, 8, 8]  # the original is not modified


def test_input_shape_of_the_deprecated_net_level_inputs() -> None:
    dims = with_input_shape(cio.parse_prototxt(f"{LEGACY_DIM}\n{BODY}", pb.NetParameter), (3, 6, 7)).input_dim
    assert list(dims) == [5, 3, 6, 7]
    shaped = with_input_shape(cio.parse_prototxt(f"{LEGACY_SHAPE}\n{BODY}", pb.NetParameter), (3, 6, 7))
    assert list(shaped.input_shape[0].dim) == [5, 3, 6, 7]
    with pytest.raises(ConfigError, match="input_dim takes C,H,W; --input-shape has 2 sizes"):
        with_input_shape(cio.parse_prototxt(LEGACY_DIM, pb.NetParameter), (6, 7))


def test_input_shape_needs_one_input_and_positive_sizes() -> None:
    two = cio.parse_prototxt(TWO_INPUTS, pb.NetParameter)
    with pytest.raises(ConfigError, match="exactly one input blob, this one has 2"):
        with_input_shape(two, (1, 4, 4), "two.prototxt")
    with pytest.raises(ConfigError, match=r"--input-shape 1,0,4: expected positive sizes"):
        with_input_shape(cio.parse_prototxt(INPUT_LAYER, pb.NetParameter), (1, 0, 4))


def test_difference_is_absolute_up_to_1_then_relative() -> None:
    a = np.array([[0.5, 0.25]], np.float32)
    assert difference(a, a + np.float32(1e-3)) == pytest.approx(1e-3, rel=1e-3)
    big = np.array([[100.0, -200.0]], np.float32)
    assert difference(big, big + np.float32(0.5)) == pytest.approx(0.5 / 200)
    assert difference(a, a[:, :1]) == float("inf")
    assert difference(a, np.array([[np.nan, 0.25]], np.float32)) == float("inf")


def test_a_caffemodel_without_a_learnable_layer_is_refused(tmp_path: Path) -> None:
    """Caffe would keep the layer's random initial weights; an export of them is refused, naming the layer."""
    deploy = deploy_path("demo", "mcnn")
    model = fresh_net(deploy).to_caffemodel()
    kept = [layer for layer in model.layer if layer.name != "fc2"]
    del model.layer[:]
    model.layer.extend(kept)
    cio.write_caffemodel(tmp_path / "partial.caffemodel", model)
    with pytest.raises(WeightsError, match=r"partial.caffemodel: no weights for layer 'fc2' of .*mcnn_deploy"):
        load_export_net(deploy, tmp_path / "partial.caffemodel")
