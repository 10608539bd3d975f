"""The layer types pycaffe scripts rely on, against Caffe's semantics (src/caffe/layers/*_layer.cpp).

Forward values come from NumPy references written from Caffe's rules; gradients are compared
with Caffe's Backward formulas or finite differences (float64 gradcheck), never with the
engine's own code.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.layers import make_layer
from mcnn.engine.net import Net
from mcnn.errors import ConfigError, McnnError, ShapeError


def layer_param(text: str) -> pb.LayerParameter:
    return parse_prototxt(text, pb.LayerParameter)


def run(text: str, bottoms, params=(), train: bool = False) -> list[np.ndarray]:
    """One engine layer's tops as float64 arrays."""
    layer = make_layer(layer_param(text))
    with torch.no_grad():
        tops = layer.forward([torch.as_tensor(np.asarray(b, dtype=np.float32)) for b in bottoms],
                             [torch.as_tensor(np.asarray(p, dtype=np.float32)) for p in params], train)
    return [t.numpy().astype(np.float64) for t in tops]


def grads(text: str, bottoms, params=(), top_diffs=None, train: bool = False) -> list[np.ndarray]:
    """Gradients of sum(top_i * top_diff_i) w.r.t. bottoms then params (float64 inputs, for finite differences)."""
    layer = make_layer(layer_param(text))
    tb = [torch.tensor(np.asarray(b, dtype=np.float64), requires_grad=True) for b in bottoms]
    tp = [torch.tensor(np.asarray(p, dtype=np.float64), requires_grad=True) for p in params]
    tops = layer.forward(tb, tp, train)
    diffs = top_diffs or [np.ones(t.shape) for t in tops]
    total = sum((t * torch.as_tensor(d)).sum() for t, d in zip(tops, diffs, strict=True))
    total.backward()
    return [None if t.grad is None else t.grad.numpy() for t in [*tb, *tp]]


def gradcheck(text: str, bottoms, params=(), train: bool = False) -> None:
    """Finite differences agree with autograd through the layer w.r.t. the bottoms (float64; params held fixed)."""
    layer = make_layer(layer_param(text))
    inputs = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in bottoms]
    fixed = [torch.tensor(np.asarray(a, dtype=np.float64)) for a in params]

    def fn(*xs):
        return tuple(layer.forward(list(xs), fixed, train))

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# -- Sigmoid, TanH ---------------------------------------------------------------------------

def test_sigmoid_and_tanh_forward_and_caffe_backward() -> None:
    x = rand(2, 3, 4)
    (s,) = run('name: "s" type: "Sigmoid"', [x])
    np.testing.assert_allclose(s, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    (t,) = run('name: "t" type: "TanH"', [x])
    np.testing.assert_allclose(t, np.tanh(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    dy = rand(2, 3, 4, seed=1)
    # Caffe: sigmoid bottom_diff = top_diff * y * (1 - y); tanh: top_diff * (1 - y^2)
    (gs,) = grads('name: "s" type: "Sigmoid"', [x], top_diffs=[dy])
    np.testing.assert_allclose(gs, dy * s * (1 - s), rtol=1e-5, atol=1e-7)
    (gt,) = grads('name: "t" type: "TanH"', [x], top_diffs=[dy])
    np.testing.assert_allclose(gt, dy * (1 - t * t), rtol=1e-5, atol=1e-7)


# -- Eltwise ---------------------------------------------------------------------------------

def test_eltwise_sum_with_coeff_and_its_gradients() -> None:
    a, b, c = rand(2, 3, seed=1), rand(2, 3, seed=2), rand(2, 3, seed=3)
    text = 'name: "e" type: "Eltwise" eltwise_param { operation: SUM coeff: 0.5 coeff: -2 coeff: 1 }'
    (y,) = run(text, [a, b, c])
    np.testing.assert_allclose(y, 0.5 * a - 2.0 * b + c, rtol=1e-6, atol=1e-6)
    ga, gb, gc = grads(text, [a, b, c], top_diffs=[np.full((2, 3), 3.0)])
    np.testing.assert_allclose([ga, gb, gc], [np.full((2, 3), 1.5), np.full((2, 3), -6.0), np.full((2, 3), 3.0)])
    (plain,) = run('name: "e" type: "Eltwise"', [a, b])  # SUM is the default, coefficients 1
    np.testing.assert_allclose(plain, a + b, rtol=1e-6)


def test_eltwise_prod_and_its_gradient_is_the_product_of_the_others() -> None:
    a, b, c = rand(3, 2, seed=4), rand(3, 2, seed=5), rand(3, 2, seed=6)
    text = 'name: "e" type: "Eltwise" eltwise_param { operation: PROD }'
    (y,) = run(text, [a, b, c])
    np.testing.assert_allclose(y, a.astype(np.float64) * b * c, rtol=1e-5)
    ga, gb, gc = grads(text, [a, b, c])
    np.testing.assert_allclose(ga, b.astype(np.float64) * c, rtol=1e-6)
    np.testing.assert_allclose(gb, a.astype(np.float64) * c, rtol=1e-6)
    np.testing.assert_allclose(gc, a.astype(np.float64) * b, rtol=1e-6)


def test_eltwise_max_follows_caffes_mask_on_ties() -> None:
    a = np.array([[1.0, 2.0, 5.0, 0.0]])
    b = np.array([[1.0, 3.0, 4.0, 0.0]])
    c = np.array([[1.0, 3.0, 5.0, -1.0]])
    text = 'name: "m" type: "Eltwise" eltwise_param { operation: MAX }'
    (y,) = run(text, [a, b, c])
    np.testing.assert_array_equal(y, [[1.0, 3.0, 5.0, 0.0]])
    # mask: a vs b -> b wins ties (a > b is false); c wins only if strictly larger -> [1, 1, 0, 1]
    ga, gb, gc = grads(text, [a, b, c], top_diffs=[np.array([[10.0, 20.0, 30.0, 40.0]])])
    np.testing.assert_array_equal(ga, [[0, 0, 30, 0]])
    np.testing.assert_array_equal(gb, [[10, 20, 0, 40]])
    np.testing.assert_array_equal(gc, [[0, 0, 0, 0]])


@pytest.mark.parametrize(("fields", "bottoms", "message"), [
    ("operation: PROD coeff: 1 coeff: 2", ((2,), (2,)), "coeff only for operation SUM"),
    ("coeff: 1", ((2,), (2,)), "1 coeff values for 2 bottoms"),
    ("", ((2,), (3,)), "differ in shape"),
    ("", ((2,),), "at least 2 bottom"),
])
def test_eltwise_checks_name_the_layer(fields: str, bottoms, message: str) -> None:
    from mcnn.caffe.infer import infer_layer

    with pytest.raises(ShapeError, match=f"'e'.*{message}"):
        infer_layer(layer_param(f'name: "e" type: "Eltwise" eltwise_param {{ {fields} }}'), list(bottoms))


# -- Silence, Split --------------------------------------------------------------------------

NET_HEAD = 'name: "t" layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }\n'


def net(text: str, phase: int = pb.TRAIN) -> Net:
    return Net(parse_prototxt(NET_HEAD + text, pb.NetParameter), phase, generator=torch.Generator().manual_seed(0))


def test_silence_consumes_its_bottom_and_split_sums_the_diffs() -> None:
    n = net('layer { name: "split" type: "Split" bottom: "x" top: "x1" top: "x2" }'
            'layer { name: "sig" type: "Sigmoid" bottom: "x2" top: "s" }'
            'layer { name: "quiet" type: "Silence" bottom: "s" }')
    assert n.outputs == ["x1"]  # x2 feeds Sigmoid, s is silenced
    x = torch.from_numpy(rand(2, 3, seed=7)).requires_grad_()
    blobs = n.forward({"x": x}, train=True)
    np.testing.assert_array_equal(blobs["x1"].detach().numpy(), x.detach().numpy())
    g1 = torch.from_numpy(rand(2, 3, seed=8))
    g2 = torch.from_numpy(rand(2, 3, seed=9))
    ((blobs["x1"] * g1).sum() + (blobs["x2"] * g2).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), (g1 + g2).numpy(), rtol=1e-6)  # Caffe's Split backward: the sum


# -- Reshape ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "expected"), [
    ("shape { dim: 0 dim: -1 }", (2, 60)),
    ("shape { dim: 0 dim: 3 dim: 2 dim: -1 }", (2, 3, 2, 10)),
    ("axis: 1 num_axes: 2 shape { dim: -1 }", (2, 12, 5)),
    ("axis: -1 num_axes: 0 shape { dim: 1 }", (2, 3, 4, 5, 1)),  # Caffe's doc example: a trailing singleton
    ("axis: 2 shape { dim: 0 dim: 0 }", (2, 3, 4, 5)),
    ("axis: 1 num_axes: 1 shape { dim: 3 dim: 1 }", (2, 3, 1, 4, 5)),
])
def test_reshape_follows_caffes_rule(fields: str, expected: tuple[int, ...]) -> None:
    x = np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5)
    (y,) = run(f'name: "r" type: "Reshape" reshape_param {{ {fields} }}', [x])
    assert y.shape == expected
    np.testing.assert_array_equal(y.ravel(), x.ravel())


@pytest.mark.parametrize(("fields", "message"), [
    ("shape { dim: -1 dim: -1 }", "one -1"),
    ("shape { dim: 0 dim: 7 }", "changes the count"),
    ("shape { dim: 0 dim: 7 dim: -1 }", "cannot infer the -1"),
    ("shape { dim: -1 }", "changes the batch axis"),
    ("axis: 5 shape { dim: 1 }", "out of range"),
])
def test_bad_reshapes_are_refused_naming_the_layer(fields: str, message: str) -> None:
    with pytest.raises(ShapeError, match=f"'r'.*{message}"):
        net(f'layer {{ name: "r" type: "Reshape" bottom: "x" top: "y" reshape_param {{ {fields} }} }}')


# -- Scale -----------------------------------------------------------------------------------

def test_scale_learned_per_channel_with_bias() -> None:
    x, s, b = rand(2, 3, 4, 4, seed=1), rand(3, seed=2), rand(3, seed=3)
    text = 'name: "sc" type: "Scale" scale_param { bias_term: true }'
    (y,) = run(text, [x], [s, b])
    np.testing.assert_allclose(y, x * s[None, :, None, None] + b[None, :, None, None], rtol=1e-6, atol=1e-6)
    dy = rand(2, 3, 4, 4, seed=4).astype(np.float64)
    gx, gs, gb = grads(text, [x], [s, b], top_diffs=[dy])
    # Caffe: bottom_diff = top_diff * scale; scale_diff = sum over outer/inner of top_diff * x; bias_diff = sum top_diff
    np.testing.assert_allclose(gx, dy * s[None, :, None, None], rtol=1e-6)
    np.testing.assert_allclose(gs, (dy * x).sum(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(gb, dy.sum(axis=(0, 2, 3)), rtol=1e-6)


def test_scale_axes_a_scalar_and_a_second_bottom() -> None:
    x = rand(2, 3, 4, seed=5)
    whole = rand(3, 4, seed=6)
    (y,) = run('name: "sc" type: "Scale" scale_param { num_axes: -1 }', [x], [whole])
    np.testing.assert_allclose(y, x * whole[None], rtol=1e-6)
    (y,) = run('name: "sc" type: "Scale" scale_param { num_axes: 0 }', [x], [np.array(2.5)])
    np.testing.assert_allclose(y, 2.5 * x, rtol=1e-6)
    per_sample = rand(2, 3, seed=7)
    (y,) = run('name: "sc" type: "Scale" scale_param { axis: 0 }', [x, per_sample])
    np.testing.assert_allclose(y, x * per_sample[:, :, None], rtol=1e-6)
    gradcheck('name: "sc" type: "Scale" scale_param { axis: 0 }', [x, per_sample])


def test_scale_blobs_default_to_the_identity_and_zero_bias() -> None:
    n = net('layer { name: "sc" type: "Scale" bottom: "x" top: "y" scale_param { bias_term: true } }')
    scale, bias = n.layer_blobs("sc")
    assert scale.tensor.shape == (3,) and torch.all(scale.tensor == 1) and torch.all(bias.tensor == 0)
    with pytest.raises(ShapeError, match=r"'sc'.*axis 0"):
        net('layer { name: "sc" type: "Scale" bottom: "x" top: "y" scale_param { axis: 0 } }')


# -- BatchNorm -------------------------------------------------------------------------------

def test_batch_norm_training_uses_batch_statistics_and_updates_the_blobs() -> None:
    x = rand(4, 3, 2, 2, seed=11).astype(np.float64) * 3 + 1
    text = 'name: "bn" type: "BatchNorm" batch_norm_param { moving_average_fraction: 0.9 eps: 0.001 }'
    layer = make_layer(layer_param(text))
    blobs = [torch.zeros(3), torch.zeros(3), torch.zeros(1)]
    with torch.no_grad():
        (y,) = layer.forward([torch.tensor(x, dtype=torch.float32)], blobs, True)
        layer.forward([torch.tensor(2 * x, dtype=torch.float32)], blobs, True)
    mean = x.mean(axis=(0, 2, 3))
    var = ((x - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 0.001)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-4, atol=1e-5)
    m = 4 * 2 * 2  # values per channel; Caffe's unbiased variance factor m / (m - 1)
    # After two passes: factor = 0.9 * 1 + 1; mean = 0.9 * mean1 + mean2; var = 0.9 * c var1 + c var2
    np.testing.assert_allclose(blobs[2].numpy(), [1.9], rtol=1e-6)
    np.testing.assert_allclose(blobs[0].numpy(), 0.9 * mean + 2 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(blobs[1].numpy(), (0.9 + 4) * var * m / (m - 1), rtol=1e-5)


def test_batch_norm_global_stats_in_test_and_caffes_backward_in_train() -> None:
    x = rand(4, 3, 2, 2, seed=12).astype(np.float64)
    stats = [np.array([1.0, -2.0, 4.0]), np.array([2.0, 8.0, 0.5]), np.array([2.0])]
    (y,) = run('name: "bn" type: "BatchNorm"', [x], stats, train=False)  # TEST: global statistics by default
    mean, var = stats[0] / 2.0, stats[1] / 2.0
    np.testing.assert_allclose(y, (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5),
                               rtol=1e-5)
    (zero,) = run('name: "bn" type: "BatchNorm"', [x], [stats[0], stats[1], np.zeros(1)], train=False)
    np.testing.assert_allclose(zero, x / np.sqrt(1e-5), rtol=1e-5)  # factor 0: Caffe scales the stats by 0
    dy = rand(4, 3, 2, 2, seed=13).astype(np.float64)
    gx = grads('name: "bn" type: "BatchNorm"', [x], stats, top_diffs=[dy], train=True)[0]
    # Caffe's Backward: dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps), means per channel
    bm = x.mean(axis=(0, 2, 3), keepdims=True)
    bv = ((x - bm) ** 2).mean(axis=(0, 2, 3), keepdims=True)
    yy = (x - bm) / np.sqrt(bv + 1e-5)
    expected = (dy - dy.mean(axis=(0, 2, 3), keepdims=True)
                - yy * (dy * yy).mean(axis=(0, 2, 3), keepdims=True)) / np.sqrt(bv + 1e-5)
    np.testing.assert_allclose(gx, expected, rtol=1e-6, atol=1e-8)
    gradcheck('name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: true }', [x], stats)
    assert grads('name: "bn" type: "BatchNorm"', [x], stats, train=True)[1:] == [None, None, None]


def test_batch_norm_statistics_are_not_learned() -> None:
    n = net('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" }')
    assert [b.lr_mult for b in n.layer_blobs("bn")] == [0.0, 0.0, 0.0]
    assert [tuple(b.tensor.shape) for b in n.layer_blobs("bn")] == [(3,), (3,), (1,)]
    with pytest.raises(ConfigError, match=r"'bn'.*lr_mult: 0"):
        net('layer { name: "bn" type: "BatchNorm" bottom: "x" top: "y" param { lr_mult: 1 } }')


# -- EuclideanLoss ---------------------------------------------------------------------------

def test_euclidean_loss_is_half_the_mean_squared_distance_per_image() -> None:
    a, b = rand(4, 3, seed=21).astype(np.float64), rand(4, 3, seed=22).astype(np.float64)
    text = 'name: "l" type: "EuclideanLoss"'
    (loss,) = run(text, [a, b])
    assert loss.shape == ()
    np.testing.assert_allclose(loss, ((a - b) ** 2).sum() / (2 * 4), rtol=1e-6)
    ga, gb = grads(text, [a, b], top_diffs=[np.array(2.0)])
    np.testing.assert_allclose(ga, 2.0 * (a - b) / 4, rtol=1e-6)  # Caffe: loss_weight * diff / N
    np.testing.assert_allclose(gb, -2.0 * (a - b) / 4, rtol=1e-6)
    n = net('layer { name: "in2" type: "Input" top: "t" input_param { shape { dim: 2 dim: 3 } } }'
            'layer { name: "l" type: "EuclideanLoss" bottom: "x" bottom: "t" top: "loss" }')
    assert n.output_weights() == {"loss": 1.0}


# -- DummyData -------------------------------------------------------------------------------

def test_dummy_data_constant_gaussian_and_legacy_shapes() -> None:
    n = Net(parse_prototxt(
        'name: "d" layer { name: "dummy" type: "DummyData" top: "a" top: "b" top: "c" dummy_data_param { '
        'shape { dim: 2 dim: 3 } shape { dim: 2 dim: 5 } shape { dim: 2 dim: 1 } '
        'data_filler { type: "constant" value: 3 } data_filler { type: "gaussian" std: 2 } data_filler { } } }'
        'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "a" top: "aa" }', pb.NetParameter), pb.TEST)
    assert n.feeds == [] and n.blob_shapes["a"] == (3,) and n.blob_shapes["b"] == (5,)
    first = n.forward({})
    second = n.forward({})
    np.testing.assert_array_equal(first["a"].numpy(), np.full((2, 3), 3.0))
    np.testing.assert_array_equal(first["aa"].numpy(), np.full((2, 3), 6.0))
    np.testing.assert_array_equal(first["c"].numpy(), np.zeros((2, 1)))  # an empty filler is constant 0
    assert first["b"].shape == (2, 5) and not torch.equal(first["b"], second["b"])  # refilled every forward
    (legacy,) = run('name: "d" type: "DummyData" top: "x" dummy_data_param { num: 2 channels: 3 height: 4 width: 5 }',
                    [])
    np.testing.assert_array_equal(legacy, np.zeros((2, 3, 4, 5)))


@pytest.mark.parametrize(("fields", "message"), [
    ("", "needs dummy_data_param.shape"),
    ("shape { dim: 2 } shape { dim: 2 } shape { dim: 2 }", "3 shapes for 2 tops"),
    ("num: 2 channels: 3", "needs num, channels, height and width"),
    ("shape { dim: 2 } data_filler { } data_filler { } data_filler { }", "3 data_filler for 2 tops"),
])
def test_bad_dummy_data_is_refused_naming_the_layer(fields: str, message: str) -> None:
    with pytest.raises(McnnError, match=f"'d'.*{message}"):
        Net(parse_prototxt(f'layer {{ name: "d" type: "DummyData" top: "x" top: "y" dummy_data_param {{ {fields} }} }}',
                           pb.NetParameter), pb.TEST)


# -- finite differences ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "shapes", "params"), [
    ('name: "s" type: "Sigmoid"', [(2, 3)], []),
    ('name: "t" type: "TanH"', [(2, 3)], []),
    ('name: "e" type: "Eltwise" eltwise_param { operation: PROD }', [(2, 3), (2, 3), (2, 3)], []),
    ('name: "e" type: "Eltwise" eltwise_param { operation: MAX }', [(2, 3), (2, 3)], []),
    ('name: "r" type: "Reshape" reshape_param { shape { dim: 0 dim: -1 } }', [(2, 3, 2)], []),
    ('name: "sc" type: "Scale" scale_param { bias_term: true }', [(2, 3, 2)], [(3,), (3,)]),
    ('name: "bn" type: "BatchNorm"', [(4, 3, 2)], [(3,), (3,), (1,)]),
    ('name: "l" type: "EuclideanLoss"', [(3, 2), (3, 2)], []),
])
def test_gradients_match_finite_differences(text: str, shapes, params) -> None:
    bottoms = [rand(*s, seed=30 + i) for i, s in enumerate(shapes)]
    gradcheck(text, bottoms, [np.abs(rand(*s, seed=40 + i)) + 0.5 for i, s in enumerate(params)], train=True)
