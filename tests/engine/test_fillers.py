"""Weight fillers against Caffe's FillerParameter semantics (include/caffe/filler.hpp, src/caffe/proto/caffe.proto).

Caffe facts used here:
- for a blob of shape (N, C, H, W): fan_in = count / N = C*H*W, fan_out = count / C = N*H*W;
  an InnerProduct weight (N, K) therefore has fan_in K and fan_out N;
- xavier: uniform(-sqrt(3/n), sqrt(3/n)); msra: gaussian(0, sqrt(2/n)); n = fan_in (FAN_IN, the
  default), fan_out (FAN_OUT) or (fan_in + fan_out)/2 (AVERAGE);
- gaussian(mean, std); with sparse >= 0 each weight is kept with probability sparse / N;
- uniform(min, max); constant(value); positive_unitball: uniform [0, 1], then each of the N rows
  (C*H*W values) divided by its sum;
- bilinear (square 4-D kernel of size k): f = ceil(k/2), c = (k - 1) / (2f),
  w[.., y, x] = (1 - |x/f - c|) * (1 - |y/f - c|) (final BVLC master, after PR #5713);
- a layer without a filler gets Caffe's default FillerParameter: constant 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.fillers import fill
from mcnn.engine.net import Net
from mcnn.errors import McnnError


def filler(text: str) -> pb.FillerParameter:
    return parse_prototxt(text, pb.FillerParameter)


def draw(shape: tuple[int, ...], text: str, seed: int = 0) -> np.ndarray:
    out = fill(shape, filler(text), torch.Generator().manual_seed(seed), "layer_x")
    assert isinstance(out, torch.Tensor)
    assert tuple(out.shape) == shape
    assert out.dtype == torch.float32
    return out.numpy().astype(np.float64)


def test_constant_value() -> None:
    np.testing.assert_array_equal(draw((3, 2, 2, 2), 'type: "constant" value: 2.5'), 2.5)


def test_default_filler_is_constant_zero() -> None:
    """An empty FillerParameter is type 'constant', value 0."""
    np.testing.assert_array_equal(draw((4, 3), ""), 0.0)


def test_uniform_bounds_and_moments() -> None:
    """uniform(min, max): all values in [min, max], mean (min+max)/2, variance (max-min)^2/12."""
    x = draw((64, 32, 3, 3), 'type: "uniform" min: -0.3 max: 0.7')
    assert x.min() >= -0.3 and x.max() <= 0.7
    assert x.min() < -0.29 and x.max() > 0.69          # 18432 draws reach both ends
    assert x.mean() == pytest.approx(0.2, abs=0.01)    # standard error 0.002
    assert x.var() == pytest.approx(1 / 12, rel=0.05)


def test_uniform_default_range() -> None:
    """Defaults min 0, max 1."""
    x = draw((100, 100), 'type: "uniform"')
    assert x.min() >= 0 and x.max() <= 1 and x.mean() == pytest.approx(0.5, abs=0.01)


def test_gaussian_moments() -> None:
    x = draw((128, 128), 'type: "gaussian" mean: 0.5 std: 0.2')
    assert x.mean() == pytest.approx(0.5, abs=0.01)    # standard error 0.0016
    assert x.std() == pytest.approx(0.2, rel=0.03)


def test_gaussian_default_std_is_one() -> None:
    x = draw((128, 128), 'type: "gaussian"')
    assert x.mean() == pytest.approx(0.0, abs=0.03) and x.std() == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize(("shape", "sparse"), [((10, 2000), 3), ((20, 16, 5, 5), 5)])
def test_sparse_gaussian_zero_fraction(shape: tuple[int, ...], sparse: int) -> None:
    """sparse: each weight is kept with probability sparse / N (N = shape[0] = num_output)."""
    x = draw(shape, f'type: "gaussian" std: 1.0 sparse: {sparse}')
    keep = sparse / shape[0]
    assert (x != 0).mean() == pytest.approx(keep, abs=0.02)
    # the kept values are still N(0, 1)
    assert x[x != 0].std() == pytest.approx(1.0, rel=0.05)


def test_sparse_minus_one_keeps_everything() -> None:
    x = draw((10, 500), 'type: "gaussian" sparse: -1')
    assert (x != 0).all()


CONV = (32, 16, 3, 3)  # fan_in = 16*9 = 144, fan_out = 32*9 = 288, average 216
IP = (50, 200)         # fan_in = K = 200, fan_out = N = 50, average 125


@pytest.mark.parametrize(("shape", "norm", "n"), [
    (CONV, "", 144), (CONV, "variance_norm: FAN_IN", 144), (CONV, "variance_norm: FAN_OUT", 288),
    (CONV, "variance_norm: AVERAGE", 216),
    (IP, "", 200), (IP, "variance_norm: FAN_OUT", 50), (IP, "variance_norm: AVERAGE", 125),
])
def test_xavier_bound(shape: tuple[int, ...], norm: str, n: int) -> None:
    """xavier: uniform in [-sqrt(3/n), sqrt(3/n)]; the largest |w| of ~5-10k draws reaches 99% of it."""
    bound = math.sqrt(3 / n)
    x = draw(shape, f'type: "xavier" {norm}')
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert np.abs(x).max() > 0.99 * bound
    assert x.var() == pytest.approx(1 / n, rel=0.06)   # uniform variance bound^2 / 3 = 1/n


@pytest.mark.parametrize(("shape", "norm", "n"), [
    ((64, 16, 3, 3), "", 144), ((64, 16, 3, 3), "variance_norm: FAN_OUT", 576),
    ((64, 16, 3, 3), "variance_norm: AVERAGE", 360),
    ((256, 64), "", 64), ((256, 64), "variance_norm: FAN_OUT", 256), ((256, 64), "variance_norm: AVERAGE", 160),
])
def test_msra_std(shape: tuple[int, ...], norm: str, n: int) -> None:
    """msra: gaussian(0, sqrt(2/n)) with n from variance_norm."""
    x = draw(shape, f'type: "msra" {norm}')
    assert x.std() == pytest.approx(math.sqrt(2 / n), rel=0.04)
    assert x.mean() == pytest.approx(0.0, abs=0.05 * math.sqrt(2 / n))


@pytest.mark.parametrize("shape", [(6, 4, 3, 3), (5, 10), (3, 1, 1, 1)])
def test_positive_unitball_rows_sum_to_one(shape: tuple[int, ...]) -> None:
    """positive_unitball: values in [0, 1]; each of the N rows (over C*H*W) sums to 1."""
    x = draw(shape, 'type: "positive_unitball"')
    rows = x.reshape(shape[0], -1)
    assert (rows >= 0).all() and (rows <= 1).all()
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
    if rows.shape[1] > 1:
        assert np.ptp(rows, axis=1).min() > 0   # random, not a constant 1/dim


def bilinear_kernel(k: int) -> np.ndarray:
    """Caffe's BilinearFiller at the final BVLC master: f = ceil(k/2), c = (k - 1) / (2f)."""
    f = math.ceil(k / 2)
    c = (k - 1) / (2 * f)
    profile = 1 - np.abs(np.arange(k) / f - c)
    return profile[:, None] * profile[None, :]


def test_bilinear_k4_by_hand() -> None:
    """k=4: f = 2, c = 3/4; x/f = 0, .5, 1, 1.5 -> 1 - |x/f - c| = .25, .75, .75, .25 (outer product)."""
    x = draw((2, 1, 4, 4), 'type: "bilinear"')
    profile = np.array([0.25, 0.75, 0.75, 0.25])
    for ch in range(2):
        np.testing.assert_allclose(x[ch, 0], np.outer(profile, profile), rtol=1e-6)


def test_bilinear_k3_by_hand() -> None:
    """k=3: f = 2, c = (3-1)/4 = 1/2; x/f = 0, .5, 1 -> .5, 1, .5: the symmetric kernel
    [[.25, .5, .25], [.5, 1, .5], [.25, .5, .25]] (PR #5713 fixed the asymmetric .0625/.1875/.5625 kernel)."""
    x = draw((1, 1, 3, 3), 'type: "bilinear"')
    np.testing.assert_allclose(x[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], rtol=1e-6)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6, 8])
def test_bilinear_kernel(k: int) -> None:
    """Every output/input channel pair gets the same k x k kernel, which is symmetric."""
    x = draw((3, 2, k, k), 'type: "bilinear"')
    want = bilinear_kernel(k)
    np.testing.assert_allclose(want, want[::-1, ::-1])
    for o in range(3):
        for i in range(2):
            np.testing.assert_allclose(x[o, i], want, rtol=1e-6, atol=1e-7)


def test_bilinear_needs_square_kernel() -> None:
    """Caffe: CHECK 'Filter must be square' (and 4 axes); the error names the layer."""
    with pytest.raises(McnnError, match="layer_x"):
        draw((1, 1, 3, 4), 'type: "bilinear"')


def test_unknown_filler_type_names_layer() -> None:
    with pytest.raises(McnnError, match="layer_x"):
        draw((2, 2), 'type: "orthogonal"')


@pytest.mark.parametrize("kind", ['type: "gaussian" std: 0.1', 'type: "uniform"', 'type: "xavier"', 'type: "msra"',
                                  'type: "positive_unitball"', 'type: "gaussian" sparse: 2'])
def test_fixed_seed_is_deterministic(kind: str) -> None:
    a, b = draw((8, 4, 3, 3), kind, seed=7), draw((8, 4, 3, 3), kind, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw((8, 4, 3, 3), kind, seed=8))


NET = """
name: "fill"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 8 dim: 8 } } }
layer { name: "conv_nofill" type: "Convolution" bottom: "data" top: "c1"
        convolution_param { num_output: 6 kernel_size: 3 } }
layer { name: "conv_bias" type: "Convolution" bottom: "c1" top: "c2"
        convolution_param { num_output: 4 kernel_size: 3 bias_filler { type: "constant" value: 0.1 } } }
layer { name: "conv_group" type: "Convolution" bottom: "c2" top: "c3"
        convolution_param { num_output: 8 kernel_size: 3 group: 2 weight_filler { type: "xavier" } } }
layer { name: "fc_nofill" type: "InnerProduct" bottom: "c3" top: "f1" inner_product_param { num_output: 5 } }
layer { name: "fc_xavier" type: "InnerProduct" bottom: "f1" top: "f2"
        inner_product_param { num_output: 300 weight_filler { type: "xavier" variance_norm: FAN_OUT } } }
"""


def build(seed: int) -> dict[str, list[np.ndarray]]:
    net = Net(parse_prototxt(NET, pb.NetParameter), pb.TRAIN, generator=torch.Generator().manual_seed(seed))
    out: dict[str, list[np.ndarray]] = {}
    for blob in net.learnable():
        out.setdefault(blob.layer, []).append(blob.tensor.detach().numpy().astype(np.float64))
    return out


def test_net_without_fillers_gets_constant_zero() -> None:
    """Convolution / InnerProduct without weight_filler or bias_filler are filled with 0."""
    w = build(0)
    assert [a.shape for a in w["conv_nofill"]] == [(6, 4, 3, 3), (6,)]
    np.testing.assert_array_equal(w["conv_nofill"][0], 0.0)
    np.testing.assert_array_equal(w["conv_nofill"][1], 0.0)
    np.testing.assert_array_equal(w["conv_bias"][0], 0.0)
    np.testing.assert_allclose(w["conv_bias"][1], 0.1, rtol=1e-6)
    assert [a.shape for a in w["fc_nofill"]] == [(5, 8 * 2 * 2), (5,)]
    np.testing.assert_array_equal(w["fc_nofill"][0], 0.0)
    np.testing.assert_array_equal(w["fc_xavier"][1], 0.0)


def test_net_filler_fans_use_blob_shape() -> None:
    """Grouped conv blob (8, 4/2, 3, 3): fan_in = 2*9 = 18, bound sqrt(3/18); InnerProduct (300, 5) with
    FAN_OUT: fan_out = N = 300, bound sqrt(3/300) = 0.1."""
    w = build(1)
    conv = w["conv_group"][0]
    assert conv.shape == (8, 2, 3, 3)
    bound = math.sqrt(3 / 18)
    assert np.abs(conv).max() <= bound * (1 + 1e-6) and np.abs(conv).max() > 0.9 * bound
    fc = w["fc_xavier"][0]
    assert fc.shape == (300, 5)
    assert np.abs(fc).max() <= 0.1 * (1 + 1e-6) and np.abs(fc).max() > 0.99 * 0.1


def test_net_fill_is_deterministic_for_a_seed() -> None:
    a, b, c = build(5), build(5), build(6)
    np.testing.assert_array_equal(a["conv_group"][0], b["conv_group"][0])
    np.testing.assert_array_equal(a["fc_xavier"][0], b["fc_xavier"][0])
    assert not np.array_equal(a["conv_group"][0], c["conv_group"][0])
