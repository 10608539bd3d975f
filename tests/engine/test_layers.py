"""Engine layers against Caffe's forward semantics (src/caffe/layers/*_layer.cpp, src/caffe/proto/caffe.proto).

Every expected value comes from the Caffe rules quoted in the docstrings, either computed by
hand (with the derivation in a comment) or by a small numpy reference written from the rule,
never from the engine's own code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.layers import make_layer
from mcnn.engine.net import Net
from mcnn.errors import LabelError, McnnError, ShapeError

FLT_MIN = float(np.finfo(np.float32).tiny)  # 1.17549435e-38, C's FLT_MIN


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def layer_param(text: str) -> pb.LayerParameter:
    return parse_prototxt(text, pb.LayerParameter)


def forward(param: pb.LayerParameter | str, bottoms, params=(), train: bool = False) -> list[np.ndarray]:
    """Run one engine layer on numpy/float inputs; returns numpy float64 tops."""
    if isinstance(param, str):
        param = layer_param(param)
    layer = make_layer(param)
    tb = [torch.as_tensor(np.asarray(b), dtype=torch.float32) for b in bottoms]
    tp = [torch.as_tensor(np.asarray(p), dtype=torch.float32) for p in params]
    with torch.no_grad():
        tops = layer.forward(tb, tp, train)
    return [t.detach().cpu().numpy().astype(np.float64) for t in tops]


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------

def caffe_pool_out(size: int, k: int, s: int, p: int) -> int:
    """Caffe CEIL rule: ceil((H + 2p - k)/s) + 1, then drop a last window starting at/after H + p (if p > 0)."""
    out = -(-(size + 2 * p - k) // s) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def caffe_pool_ref(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int],
                   method: str) -> np.ndarray:
    """Straight loop over Caffe's pooling windows.

    MAX: window [h*s - p, h*s - p + k) clipped to [0, H).
    AVE: divisor = (min(hstart + k, H + p) - hstart) * (same along w), hstart = h*s - p taken
    before clipping (padding cells count, cells beyond H + p do not); the sum runs over the
    clipped window (padding contributes zeros).
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = caffe_pool_out(h, kh, sh, ph), caffe_pool_out(w, kw, sw, pw)
    out = np.zeros((n, c, oh, ow))
    xd = x.astype(np.float64)
    for i in range(oh):
        hs = i * sh - ph
        he = min(hs + kh, h + ph)
        for j in range(ow):
            ws = j * sw - pw
            we = min(ws + kw, w + pw)
            window = xd[:, :, max(hs, 0):min(he, h), max(ws, 0):min(we, w)]
            if method == "MAX":
                out[:, :, i, j] = window.max(axis=(2, 3))
            else:
                out[:, :, i, j] = window.sum(axis=(2, 3)) / ((he - hs) * (we - ws))
    return out


def pool_param(method: str, kernel: tuple[int, int], stride: tuple[int, int],
               pad: tuple[int, int]) -> pb.LayerParameter:
    pp = pb.PoolingParameter(pool=getattr(pb.PoolingParameter, method))
    if kernel[0] == kernel[1] and stride[0] == stride[1] and pad[0] == pad[1]:
        pp.kernel_size, pp.stride, pp.pad = kernel[0], stride[0], pad[0]
    else:  # rectangular forms: kernel_h/kernel_w, stride_h/stride_w, pad_h/pad_w
        pp.kernel_h, pp.kernel_w = kernel
        pp.stride_h, pp.stride_w = stride
        pp.pad_h, pp.pad_w = pad
    return pb.LayerParameter(name="pool", type="Pooling", bottom=["x"], top=["y"], pooling_param=pp)


POOL_CASES = [
    # (H, W), kernel, stride, pad                          why
    pytest.param((7, 7), (3, 3), (2, 2), (1, 1), id="k3s2p1-partial"),
    pytest.param((7, 7), (2, 2), (2, 2), (0, 0), id="7x7-k2s2-to-4x4"),
    pytest.param((5, 5), (2, 2), (2, 2), (1, 1), id="last-window-in-padding-dropped"),  # ceil -> 4, Caffe 3
    pytest.param((7, 9), (2, 2), (2, 2), (1, 1), id="last-window-in-padding-dropped-7x9"),
    pytest.param((8, 5), (3, 3), (2, 2), (0, 0), id="partial-bottom-row"),
    pytest.param((9, 9), (3, 3), (3, 3), (0, 0), id="exact-tiling"),
    pytest.param((7, 10), (3, 2), (2, 3), (1, 0), id="rect-kernel-stride-pad"),
    pytest.param((5, 9), (4, 2), (1, 4), (1, 1), id="rect-w-last-window-dropped"),
    pytest.param((5, 5), (3, 3), (1, 1), (2, 2), id="pad-gt-half-kernel"),
    pytest.param((6, 7), (3, 3), (2, 2), (2, 2), id="pad-gt-half-kernel-stride2"),
    pytest.param((10, 10), (4, 4), (3, 3), (3, 3), id="pad3-kernel4"),
    pytest.param((7, 7), (2, 2), (3, 3), (0, 0), id="stride-gt-kernel"),
]


@pytest.mark.parametrize("method", ["MAX", "AVE"])
@pytest.mark.parametrize(("hw", "kernel", "stride", "pad"), POOL_CASES)
def test_pooling_matches_caffe_loop(method: str, hw, kernel, stride, pad) -> None:
    """MAX/AVE pooling equals a numpy loop over Caffe's windows (CEIL size, clipping, AVE divisor)."""
    x = rand(2, 3, *hw, seed=sum(hw) + kernel[0])
    expected = caffe_pool_ref(x, kernel, stride, pad, method)
    (got,) = forward(pool_param(method, kernel, stride, pad), [x])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("hw", "kernel", "stride", "pad", "out_hw"), [
    ((7, 7), (3, 3), (2, 2), (1, 1), (4, 4)),          # ceil((7+2-3)/2)+1 = 4; (4-1)*2 = 6 < 7+1 keeps it
    ((6, 6), (3, 3), (2, 2), (1, 1), (4, 4)),          # ceil(5/2)+1 = 4; 6 >= 6+1 is false
    ((5, 5), (2, 2), (2, 2), (1, 1), (3, 3)),          # ceil(5/2)+1 = 4; 6 >= 5+1 -> 3
    ((7, 9), (2, 2), (2, 2), (1, 1), (4, 5)),          # H: ceil(7/2)+1 = 5, 8 >= 8 -> 4; W: 6, 10 >= 10 -> 5
    ((7, 7), (2, 2), (2, 2), (0, 0), (4, 4)),          # §4: 7x7 k2 s2 -> 4x4 (floor would give 3)
    ((112, 112), (3, 3), (2, 2), (0, 0), (56, 56)),    # GoogLeNet pool1: ceil(109/2)+1 = 56 (floor: 55)
    ((250, 330), (64, 64), (64, 64), (0, 0), (4, 6)),  # §1.4: ceil(186/64)+1 = 4, ceil(266/64)+1 = 6
])
def test_pool_output_size_formula(hw, kernel, stride, pad, out_hw) -> None:
    """Output size follows Caffe's CEIL rule with the drop of a last window starting in the padding."""
    assert (caffe_pool_out(hw[0], kernel[0], stride[0], pad[0]),
            caffe_pool_out(hw[1], kernel[1], stride[1], pad[1])) == out_hw
    x = np.zeros((1, 1, *hw), np.float32)
    for method in ("MAX", "AVE"):
        (got,) = forward(pool_param(method, kernel, stride, pad), [x])
        assert got.shape[2:] == out_hw


def test_pool_last_window_start_in_padding_is_dropped() -> None:
    """H=W=5, k=2, s=2, pad=1: ceil((5+2-2)/2)+1 = 4, but (4-1)*2 = 6 >= 5+1, i.e. the last window
    would start at 6-1 = 5 = H (pure padding), so Caffe outputs 3; windows [-1,1), [1,3), [3,5)."""
    x = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)  # x[r, c] = 5r + c
    (got,) = forward(pool_param("MAX", (2, 2), (2, 2), (1, 1)), [x])
    assert got.shape == (1, 1, 3, 3)
    # MAX of each clipped window is its bottom-right image cell.
    np.testing.assert_array_equal(got[0, 0], [[0, 2, 4], [10, 12, 14], [20, 22, 24]])
    (ave,) = forward(pool_param("AVE", (2, 2), (2, 2), (1, 1)), [x])
    # every window lies inside [-1, 6): divisor 2*2 = 4 even where it holds padding.
    assert ave[0, 0, 0, 0] == pytest.approx(0.0)         # only x[0,0] = 0
    assert ave[0, 0, 0, 1] == pytest.approx(0.75)        # (x[0,1] + x[0,2]) / 4 = 3/4
    assert ave[0, 0, 2, 2] == pytest.approx(21.0)        # (18 + 19 + 23 + 24) / 4


def test_pool_window_starting_outside_the_input_is_refused() -> None:
    """Caffe only drops the last window when pad > 0. H=W=6, k=2, s=3, pad=0: ceil((6-2)/3)+1 = 3
    windows per axis start at 0, 3, 6; the third starts at H and is empty in Caffe (MAX -FLT_MAX,
    AVE 0/0). The toolkit refuses this geometry with an error naming the layer."""
    x = rand(1, 1, 6, 6, seed=3)
    with pytest.raises(ShapeError, match=r"layer 'pool'.*starts outside the 6x6 input"):
        forward(pool_param("MAX", (2, 2), (3, 3), (0, 0)), [x])


def test_ave_divisor_corner_four_ninths() -> None:
    """§4: 7x7 ones, AVE k3 s2 pad1: corner window [-1,2)x[-1,2) has 4 image cells, divisor 3*3 -> 4/9."""
    x = np.ones((1, 1, 7, 7), np.float32)
    (got,) = forward(pool_param("AVE", (3, 3), (2, 2), (1, 1)), [x])
    assert got.shape == (1, 1, 4, 4)
    assert got[0, 0, 0, 0] == pytest.approx(4 / 9, abs=1e-6)
    # last row/col: hstart = 3*2-1 = 5, hend = min(8, 7+1) = 8 -> divisor 3, image rows 5,6 -> 4/9 again
    assert got[0, 0, 3, 3] == pytest.approx(4 / 9, abs=1e-6)
    # top edge, interior column: 2 real rows x 3 cols / 9 = 6/9
    assert got[0, 0, 0, 1] == pytest.approx(6 / 9, abs=1e-6)
    assert got[0, 0, 1, 1] == pytest.approx(1.0, abs=1e-6)


def test_ave_partial_window_without_pad_is_one() -> None:
    """§4: 7x7 ones, AVE k2 s2: 4x4 output; the border window [6,8) has hend = min(8, 7+0) = 7,
    so its divisor is 1*2 and the edge value is 2/2 = 1.0 (not 2/4)."""
    x = np.ones((1, 1, 7, 7), np.float32)
    (got,) = forward(pool_param("AVE", (2, 2), (2, 2), (0, 0)), [x])
    assert got.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(got, 1.0, atol=1e-6)


def test_pad_larger_than_half_kernel_values() -> None:
    """k=3, pad=2 (allowed: pad < kernel), stride 1, 5x5 ones: out = ceil((5+4-3)/1)+1 = 7;
    corner window [-2,1) has divisor min(1, 5+2) - (-2) = 3 per axis and 1 image cell -> 1/9."""
    x = np.ones((1, 1, 5, 5), np.float32)
    (ave,) = forward(pool_param("AVE", (3, 3), (1, 1), (2, 2)), [x])
    assert ave.shape == (1, 1, 7, 7)
    assert ave[0, 0, 0, 0] == pytest.approx(1 / 9, abs=1e-6)
    assert ave[0, 0, 0, 1] == pytest.approx(2 / 9, abs=1e-6)   # cols [-1,2): 2 image cols
    assert ave[0, 0, 3, 3] == pytest.approx(1.0, abs=1e-6)
    (mx,) = forward(pool_param("MAX", (3, 3), (1, 1), (2, 2)), [-x])
    np.testing.assert_array_equal(mx, -1.0)  # every window holds at least one image cell; padding is not 0


@pytest.mark.parametrize("method", ["MAX", "AVE"])
def test_global_pooling(method: str) -> None:
    """global_pooling: the kernel is the whole H x W, output 1x1 per channel."""
    x = rand(2, 3, 5, 4, seed=11)
    param = pb.LayerParameter(name="gp", type="Pooling", pooling_param=pb.PoolingParameter(
        pool=getattr(pb.PoolingParameter, method), global_pooling=True))
    (got,) = forward(param, [x])
    assert got.shape == (2, 3, 1, 1)
    want = x.max(axis=(2, 3)) if method == "MAX" else x.astype(np.float64).mean(axis=(2, 3))
    np.testing.assert_allclose(got[:, :, 0, 0], want, rtol=1e-5, atol=1e-6)


def test_max_pool_ignores_padding_for_negative_inputs() -> None:
    """MAX windows are clipped to the image, so padding never contributes (all-negative input)."""
    x = -1.0 - np.abs(rand(1, 2, 4, 4, seed=5))
    (got,) = forward(pool_param("MAX", (3, 3), (2, 2), (1, 1)), [x])
    assert (got < 0).all()
    np.testing.assert_allclose(got, caffe_pool_ref(x, (3, 3), (2, 2), (1, 1), "MAX"), rtol=1e-6)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------

def conv_ref(x, w, b, stride, pad, dilation, group):
    """Caffe convolution (cross-correlation), out = (in + 2p - (d(k-1)+1)) // s + 1, grouped channels."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    out = np.zeros((n, o, oh, ow))
    per_group = o // group
    for oc in range(o):
        g = oc // per_group
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg,
                           i * sh: i * sh + dh * (kh - 1) + 1: dh,
                           j * sw: j * sw + dw * (kw - 1) + 1: dw]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
        if b is not None:
            out[:, oc] += b[oc]
    return out


CONV_CASES = [
    # prototxt fields, input shape, out channels, kernel, stride, pad, dilation, group
    pytest.param("kernel_size: 3", (2, 3, 6, 7), 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, id="plain"),
    pytest.param("kernel_size: 5 pad: 2", (1, 2, 8, 8), 3, (5, 5), (1, 1), (2, 2), (1, 1), 1, id="same-pad"),
    pytest.param("kernel_size: 3 stride: 2 pad: 1", (2, 2, 9, 8), 4, (3, 3), (2, 2), (1, 1), (1, 1), 1,
                 id="stride2-floor"),
    pytest.param("kernel_size: 3 dilation: 2", (1, 2, 9, 9), 2, (3, 3), (1, 1), (0, 0), (2, 2), 1, id="dilation"),
    pytest.param("kernel_size: 3 pad: 1 group: 2", (2, 4, 5, 6), 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, id="group"),
    pytest.param("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 2 dilation: 2 group: 2",
                 (2, 4, 7, 9), 6, (3, 2), (2, 1), (1, 2), (2, 2), 2, id="rect-everything"),
]


@pytest.mark.parametrize(("fields", "shape", "out", "kernel", "stride", "pad", "dilation", "group"), CONV_CASES)
def test_convolution_matches_numpy(fields, shape, out, kernel, stride, pad, dilation, group) -> None:
    """Convolution output (shape and values) equals a numpy cross-correlation with Caffe's floor rule."""
    param = layer_param(f'name: "conv" type: "Convolution" convolution_param {{ num_output: {out} {fields} }}')
    x = rand(*shape, seed=1)
    w = rand(out, shape[1] // group, *kernel, seed=2)
    b = rand(out, seed=3)
    (got,) = forward(param, [x], [w, b])
    want = conv_ref(x.astype(np.float64), w.astype(np.float64), b, stride, pad, dilation, group)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_convolution_without_bias() -> None:
    """bias_term: false -> only blobs[0]; output is the bare correlation."""
    param = layer_param('name: "c" type: "Convolution" '
                        'convolution_param { num_output: 2 kernel_size: 2 bias_term: false }')
    x = rand(1, 1, 3, 3, seed=4)
    w = np.ones((2, 1, 2, 2), np.float32)
    w[1] *= -2
    (got,) = forward(param, [x], [w])
    box = np.array([[x[0, 0, i:i + 2, j:j + 2].sum() for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(got[0, 0], box, rtol=1e-5)
    np.testing.assert_allclose(got[0, 1], -2 * box, rtol=1e-5)


# ---------------------------------------------------------------------------
# InnerProduct, Concat, Flatten, ReLU
# ---------------------------------------------------------------------------

def test_inner_product_default_axis_flattens_chw() -> None:
    """axis 1: K = C*H*W in c*H*W + h*W + w order; y = x_flat W^T + b with W of shape (N, K)."""
    x = rand(2, 3, 2, 2, seed=5)
    w = rand(4, 12, seed=6)
    b = rand(4, seed=7)
    (got,) = forward('name: "ip" type: "InnerProduct" inner_product_param { num_output: 4 }', [x], [w, b])
    want = x.reshape(2, 12).astype(np.float64) @ w.T.astype(np.float64) + b
    assert got.shape == (2, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inner_product_axis_2() -> None:
    """axis 2 on (N, M, H, W): axes >= 2 are flattened (K = H*W); output (N, M, num_output)."""
    x = rand(2, 3, 4, 5, seed=8)
    w = rand(6, 20, seed=9)
    b = rand(6, seed=10)
    (got,) = forward('name: "ip" type: "InnerProduct" inner_product_param { num_output: 6 axis: 2 }', [x], [w, b])
    want = np.einsum("nmk,ok->nmo", x.reshape(2, 3, 20).astype(np.float64), w.astype(np.float64)) + b
    assert got.shape == (2, 3, 6)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inner_product_transpose() -> None:
    """transpose: true stores blobs[0] as (K, N) and computes y = x W (no transpose) + b."""
    x = rand(3, 2, 5, seed=11)
    w = rand(10, 4, seed=12)
    b = rand(4, seed=13)
    (got,) = forward('name: "ip" type: "InnerProduct" inner_product_param { num_output: 4 transpose: true }',
                     [x], [w, b])
    want = x.reshape(3, 10).astype(np.float64) @ w.astype(np.float64) + b
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_inner_product_without_bias() -> None:
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    w = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]], np.float32)
    (got,) = forward('name: "ip" type: "InnerProduct" inner_product_param { num_output: 2 bias_term: false }', [x], [w])
    np.testing.assert_allclose(got, [[1 - 3, 3.0]])  # [1*1 + 3*(-1), 0.5*(1+2+3)]


@pytest.mark.parametrize(("fields", "axis"), [("", 1), ("axis: 2", 2), ("axis: -1", 3), ("concat_dim: 0", 0)])
def test_concat(fields: str, axis: int) -> None:
    """Concat joins along `axis` (default 1; negative counts from the end; deprecated concat_dim)."""
    shape_a = [2, 3, 4, 5]
    shape_b = list(shape_a)
    shape_b[axis] = 2
    a, b = rand(*shape_a, seed=1), rand(*shape_b, seed=2)
    (got,) = forward(f'name: "cat" type: "Concat" concat_param {{ {fields} }}', [a, b])
    np.testing.assert_array_equal(got, np.concatenate([a, b], axis=axis))


def test_concat_three_bottoms_channel_order() -> None:
    a, b, c = (np.full((1, n, 2, 2), v, np.float32) for n, v in ((1, 1.0), (2, 2.0), (3, 3.0)))
    (got,) = forward('name: "cat" type: "Concat"', [a, b, c])
    assert got.shape == (1, 6, 2, 2)
    np.testing.assert_array_equal(got[0, :, 0, 0], [1, 2, 2, 3, 3, 3])


@pytest.mark.parametrize(("fields", "shape"), [
    ("", (2, 60)),                          # axis 1 .. -1
    ("axis: 2", (2, 3, 20)),
    ("axis: 1 end_axis: 2", (2, 12, 5)),
    ("axis: -2 end_axis: -1", (2, 3, 20)),
    ("axis: 0 end_axis: 1", (6, 4, 5)),
])
def test_flatten(fields: str, shape: tuple[int, ...]) -> None:
    """Flatten merges axes axis..end_axis (inclusive), keeping row-major element order."""
    x = rand(2, 3, 4, 5, seed=3)
    (got,) = forward(f'name: "f" type: "Flatten" flatten_param {{ {fields} }}', [x])
    assert got.shape == shape
    np.testing.assert_array_equal(got.ravel(), x.ravel())


@pytest.mark.parametrize("slope", [0.0, 0.1, -0.5])
def test_relu_negative_slope(slope: float) -> None:
    """ReLU: y = max(x, 0) + negative_slope * min(x, 0)."""
    x = np.array([[-3.0, -0.5, 0.0, 0.25, 2.0]], np.float32)
    fields = f"relu_param {{ negative_slope: {slope} }}" if slope else ""
    (got,) = forward(f'name: "r" type: "ReLU" {fields}', [x])
    np.testing.assert_allclose(got, np.maximum(x, 0) + slope * np.minimum(x, 0), rtol=1e-6)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("ratio", [0.5, 0.3, 0.8])
def test_dropout_test_phase_is_identity(ratio: float) -> None:
    x = rand(4, 5, 3, seed=1)
    (got,) = forward(f'name: "d" type: "Dropout" dropout_param {{ dropout_ratio: {ratio} }}', [x], train=False)
    np.testing.assert_array_equal(got, x)


@pytest.mark.parametrize(("fields", "ratio"), [("", 0.5), ("dropout_param { dropout_ratio: 0.3 }", 0.3),
                                               ("dropout_param { dropout_ratio: 0.8 }", 0.8)])
def test_dropout_train_is_inverted(fields: str, ratio: float) -> None:
    """TRAIN: each value is kept with probability 1-p and scaled by 1/(1-p), else 0 (default p 0.5)."""
    torch.manual_seed(1234)
    x = np.full((200, 1000), 2.0, np.float32)
    (got,) = forward(f'name: "d" type: "Dropout" {fields}', [x], train=True)
    kept = got != 0
    np.testing.assert_allclose(got[kept], 2.0 / (1 - ratio), rtol=1e-6)
    # 200k Bernoulli draws: standard error of the kept fraction <= 0.0012
    assert abs(kept.mean() - (1 - ratio)) < 0.01
    # expectation preserved: mean of the output close to the input value
    assert abs(got.mean() - 2.0) < 0.05


# ---------------------------------------------------------------------------
# LRN
# ---------------------------------------------------------------------------

def lrn_across_ref(x, n, alpha, beta, k):
    """y = x / (k + alpha/n * sum_{c' in [c-(n-1)/2, c+(n-1)/2], zero padded} x_{c'}^2)^beta."""
    x = x.astype(np.float64)
    c = x.shape[1]
    half = (n - 1) // 2
    out = np.empty_like(x)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        s = (x[:, lo:hi] ** 2).sum(axis=1)
        out[:, ch] = x[:, ch] / (k + alpha / n * s) ** beta
    return out


def lrn_within_ref(x, n, alpha, beta):
    """y = x * (1 + alpha/n^2 * sum over the n x n window centred on the pixel (zero padded) of x^2)^(-beta)."""
    x = x.astype(np.float64)
    _, _, h, w = x.shape
    half = (n - 1) // 2
    sq = np.pad(x ** 2, ((0, 0), (0, 0), (half, half), (half, half)))
    s = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            s[:, :, i, j] = sq[:, :, i:i + n, j:j + n].sum(axis=(2, 3))
    return x * (1 + alpha / n ** 2 * s) ** (-beta)


@pytest.mark.parametrize(("fields", "n", "alpha", "beta", "k"), [
    ("", 5, 1.0, 0.75, 1.0),                                            # defaults
    ("local_size: 3 alpha: 0.5 beta: 0.6 k: 2.0", 3, 0.5, 0.6, 2.0),
    ("local_size: 5 alpha: 0.0001 beta: 0.75", 5, 1e-4, 0.75, 1.0),   # AlexNet norm1
])
def test_lrn_across_channels(fields, n, alpha, beta, k) -> None:
    x = 3 * rand(2, 7, 3, 4, seed=21)
    (got,) = forward(f'name: "n" type: "LRN" lrn_param {{ {fields} }}', [x])
    np.testing.assert_allclose(got, lrn_across_ref(x, n, alpha, beta, k), rtol=1e-5, atol=1e-6)


def test_lrn_across_channels_hand_value() -> None:
    """One pixel, channels [1, 2, 3], n=3, alpha=3, beta=1, k=1: channel 0 sums 1+4 (channel -1 is
    padding) -> y0 = 1 / (1 + 3/3*5) = 1/6; channel 1 sums 1+4+9 -> y1 = 2/15; channel 2: 3/(1+13) = 3/14."""
    x = np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3, 1, 1)
    (got,) = forward('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 3 beta: 1 }', [x])
    np.testing.assert_allclose(got.ravel(), [1 / 6, 2 / 15, 3 / 14], rtol=1e-6)


@pytest.mark.parametrize(("n", "alpha", "beta", "k"), [(3, 0.5, 0.75, 1.0), (5, 2.0, 0.6, 7.0)])
def test_lrn_within_channel(n, alpha, beta, k) -> None:
    """WITHIN_CHANNEL (AVE pooling + Power with shift 1): k is not used; divisor n^2 everywhere."""
    x = 2 * rand(2, 3, 6, 5, seed=22)
    fields = f"local_size: {n} alpha: {alpha} beta: {beta} k: {k} norm_region: WITHIN_CHANNEL"
    (got,) = forward(f'name: "n" type: "LRN" lrn_param {{ {fields} }}', [x])
    np.testing.assert_allclose(got, lrn_within_ref(x, n, alpha, beta), rtol=1e-5, atol=1e-6)


def test_lrn_within_channel_corner_hand_value() -> None:
    """2x2 ones, n=3, alpha=9, beta=1: every 3x3 window (zero padded) holds the 4 ones ->
    y = 1 * (1 + 9/9 * 4)^-1 = 0.2 (the padded cells count in the divisor n^2 = 9)."""
    x = np.ones((1, 1, 2, 2), np.float32)
    (got,) = forward('name: "n" type: "LRN" lrn_param { local_size: 3 alpha: 9 beta: 1 norm_region: WITHIN_CHANNEL }',
                     [x])
    np.testing.assert_allclose(got, 0.2, rtol=1e-6)


# ---------------------------------------------------------------------------
# Softmax / SoftmaxWithLoss / Accuracy
# ---------------------------------------------------------------------------

def softmax_ref(x, axis):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize(("fields", "axis"), [("", 1), ("softmax_param { axis: 2 }", 2),
                                               ("softmax_param { axis: -1 }", 3)])
def test_softmax_axis(fields: str, axis: int) -> None:
    x = 4 * rand(2, 3, 4, 5, seed=31)
    (got,) = forward(f'name: "p" type: "Softmax" {fields}', [x])
    np.testing.assert_allclose(got, softmax_ref(x, axis), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.sum(axis=axis), 1.0, rtol=1e-5)


SCORES = np.array([[2.0, 1.0, 0.1, -1.0, 0.5],
                   [0.0, 3.0, -2.0, 1.0, 1.0],
                   [1.5, 1.5, 1.5, 0.0, -0.5],
                   [-1.0, 0.0, 2.5, 0.3, 4.0]], np.float32)
LABELS = np.array([0, 3, 2, 4], np.float32)


def nll(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """-log softmax(scores)[label] per sample (float64 reference)."""
    p = softmax_ref(scores, 1)
    return -np.log(np.maximum(p[np.arange(len(labels)), labels.astype(int)], FLT_MIN))


def loss_layer(fields: str) -> str:
    return f'name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "l" top: "loss" {fields}'


@pytest.mark.parametrize(("fields", "keep", "divisor"), [
    ("", [1, 1, 1, 1], 4),                                                         # default VALID, no ignore
    ("loss_param { normalization: VALID }", [1, 1, 1, 1], 4),
    ("loss_param { ignore_label: 3 }", [1, 0, 1, 1], 3),                            # VALID: 3 non-ignored
    ("loss_param { ignore_label: 3 normalization: VALID }", [1, 0, 1, 1], 3),
    ("loss_param { ignore_label: 3 normalization: FULL }", [1, 0, 1, 1], 4),       # FULL: all labels
    ("loss_param { ignore_label: 3 normalization: BATCH_SIZE }", [1, 0, 1, 1], 4),  # N = 4
    ("loss_param { ignore_label: 3 normalization: NONE }", [1, 0, 1, 1], 1),
    ("loss_param { normalization: NONE }", [1, 1, 1, 1], 1),
    ("loss_param { ignore_label: 3 normalize: false }", [1, 0, 1, 1], 4),   # deprecated false -> BATCH_SIZE
    ("loss_param { ignore_label: 3 normalize: true }", [1, 0, 1, 1], 3),    # deprecated true -> VALID
])
def test_softmax_loss_normalization(fields: str, keep: list[int], divisor: float) -> None:
    """loss = -sum over non-ignored samples of log p_label / normalizer (VALID/FULL/BATCH_SIZE/NONE)."""
    (got,) = forward(loss_layer(fields), [SCORES, LABELS])
    want = (nll(SCORES, LABELS) * np.array(keep)).sum() / divisor
    assert float(got) == pytest.approx(want, rel=1e-5)


def test_softmax_loss_hand_value() -> None:
    """Two classes with equal scores: p = 1/2, loss = log 2 per sample, VALID mean = log 2."""
    (got,) = forward(loss_layer(""), [np.zeros((3, 2), np.float32), np.array([0, 1, 1], np.float32)])
    assert float(got) == pytest.approx(math.log(2), rel=1e-6)


def test_softmax_loss_all_ignored_is_zero() -> None:
    """Caffe's get_normalizer returns max(1, normalizer): with every label ignored the loss is 0, not NaN."""
    (got,) = forward(loss_layer("loss_param { ignore_label: 1 }"), [SCORES[:2], np.array([1, 1], np.float32)])
    assert float(got) == 0.0


def test_softmax_loss_flt_min_clamp() -> None:
    """p_label underflows to 0 in float32 (exp(-200)); Caffe takes log(max(p, FLT_MIN)) -> -log(FLT_MIN) = 87.3365."""
    scores = np.array([[0.0, -200.0], [0.0, 0.0]], np.float32)
    labels = np.array([1, 0], np.float32)
    (got,) = forward(loss_layer("loss_param { normalization: NONE }"), [scores, labels])
    want = -math.log(FLT_MIN) + math.log(2)
    assert math.isfinite(float(got))
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert -math.log(FLT_MIN) == pytest.approx(87.3365, abs=1e-4)


def test_softmax_loss_spatial() -> None:
    """Scores (N, C, H, W) with labels (N, 1, H, W): one prediction per pixel; VALID divides by the
    number of non-ignored pixels, BATCH_SIZE by N (outer_num = N for axis 1)."""
    s = 2 * rand(2, 4, 2, 3, seed=41)
    lab = np.random.default_rng(42).integers(0, 4, (2, 1, 2, 3)).astype(np.float32)
    lab[0, 0, 0, 0] = 255
    flat_s = s.transpose(0, 2, 3, 1).reshape(-1, 4)
    flat_l = lab.reshape(-1)
    keep = flat_l != 255
    total = nll(flat_s[keep], flat_l[keep]).sum()
    (valid,) = forward(loss_layer("loss_param { ignore_label: 255 }"), [s, lab])
    assert float(valid) == pytest.approx(total / keep.sum(), rel=1e-5)
    (batch,) = forward(loss_layer("loss_param { ignore_label: 255 normalization: BATCH_SIZE }"), [s, lab])
    assert float(batch) == pytest.approx(total / 2, rel=1e-5)
    (full,) = forward(loss_layer("loss_param { ignore_label: 255 normalization: FULL }"), [s, lab])
    assert float(full) == pytest.approx(total / 12, rel=1e-5)


def test_softmax_loss_batch_size_normalizer_is_outer_num() -> None:
    """Caffe (softmax_loss_layer.cpp get_normalizer): BATCH_SIZE -> outer_num_ = count(0, axis).
    Scores (2, 3, 4) with softmax axis 2 and labels (2, 3): 6 predictions, outer_num = 2*3 = 6."""
    s = 2 * rand(2, 3, 4, seed=43)
    lab = np.array([[0, 1, 2], [3, 0, 1]], np.float32)
    total = nll(s.reshape(6, 4), lab.reshape(6)).sum()
    (full,) = forward(loss_layer("softmax_param { axis: 2 } loss_param { normalization: FULL }"), [s, lab])
    assert float(full) == pytest.approx(total / 6, rel=1e-5)   # FULL = outer*inner = 6
    (batch,) = forward(loss_layer("softmax_param { axis: 2 } loss_param { normalization: BATCH_SIZE }"), [s, lab])
    assert float(batch) == pytest.approx(total / 6, rel=1e-5)


@pytest.mark.parametrize("bad", [5.0, -1.0, 7.0])
def test_softmax_loss_label_out_of_range(bad: float) -> None:
    """A label outside 0..C-1 that is not the ignore_label is an error naming the layer."""
    labels = LABELS.copy()
    labels[2] = bad
    with pytest.raises(LabelError, match="loss"):
        forward(loss_layer(""), [SCORES, labels])


def test_ignored_label_may_be_out_of_range() -> None:
    labels = np.array([0, 255, 2, 4], np.float32)
    (got,) = forward(loss_layer("loss_param { ignore_label: 255 }"), [SCORES, labels])
    keep = labels != 255
    assert float(got) == pytest.approx(nll(SCORES[keep], labels[keep]).mean(), rel=1e-5)


ACC_SCORES = np.array([[0.1, 0.5, 0.4],    # label 1: no other >= 0.5              -> top1 hit
                       [0.3, 0.3, 0.4],    # label 0: class 1 ties, class 2 higher -> 2 others, top3 only
                       [0.6, 0.2, 0.2],    # label 2: class 0 higher, class 1 ties -> 2 others, top3 only
                       [0.2, 0.7, 0.1],    # label 0: class 1 higher               -> 1 other, top2
                       [0.5, 0.5, 0.0]],   # label 1: class 0 ties                 -> 1 other, top2
                      np.float32)
ACC_LABELS = np.array([1, 0, 2, 0, 1], np.float32)


def acc_layer(fields: str, tops: int = 1) -> str:
    top = ' top: "acc"' + (' top: "per_class"' if tops > 1 else "")
    return f'name: "accuracy" type: "Accuracy" bottom: "s" bottom: "l"{top} accuracy_param {{ {fields} }}'


@pytest.mark.parametrize(("fields", "want"), [
    ("", 1 / 5),
    ("top_k: 1", 1 / 5),
    ("top_k: 2", 3 / 5),          # rows 0, 3, 4
    ("top_k: 3", 5 / 5),
    ("ignore_label: 0", 1 / 3),   # rows 0, 2, 4 counted; row 0 hits
    ("top_k: 2 ignore_label: 0", 2 / 3),
    ("top_k: 2 ignore_label: 1", 1 / 3),  # rows 1, 2, 3 counted; row 3 hits
])
def test_accuracy_top_k_ties_and_ignore(fields: str, want: float) -> None:
    """Correct iff fewer than top_k OTHER classes score >= the true class (ties count against)."""
    (got,) = forward(acc_layer(fields), [ACC_SCORES, ACC_LABELS])
    assert float(got) == pytest.approx(want, abs=1e-6)


def test_accuracy_per_class_second_top() -> None:
    """A second top holds per-class accuracy (hits of class c / samples of class c; 0 if none)."""
    _, per_class = forward(acc_layer("top_k: 2", tops=2), [ACC_SCORES, ACC_LABELS])
    # class 0: rows 1 (miss), 3 (hit) -> 1/2; class 1: rows 0, 4 hit -> 1; class 2: row 2 miss -> 0
    np.testing.assert_allclose(per_class, [0.5, 1.0, 0.0], atol=1e-6)


def test_accuracy_label_out_of_range() -> None:
    labels = ACC_LABELS.copy()
    labels[0] = 3
    with pytest.raises(LabelError, match="accuracy"):
        forward(acc_layer(""), [ACC_SCORES, labels])


# ---------------------------------------------------------------------------
# Unsupported layers
# ---------------------------------------------------------------------------

NET_HEAD = ('name: "t" layer { name: "in" type: "Input" top: "data" '
            'input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }\n')


def test_unsupported_layer_type_in_net_names_layer() -> None:
    net = parse_prototxt(NET_HEAD + 'layer { name: "squash" type: "PReLU" bottom: "data" top: "s" }', pb.NetParameter)
    with pytest.raises(McnnError, match="squash"):
        Net(net, pb.TEST)


def test_unsupported_layer_type_make_layer_names_layer() -> None:
    with pytest.raises(McnnError, match="squash"):
        make_layer(layer_param('name: "squash" type: "Threshold"'))


def test_stochastic_pooling_is_refused_naming_layer() -> None:
    net = parse_prototxt(NET_HEAD + 'layer { name: "sto" type: "Pooling" bottom: "data" top: "p" '
                                    'pooling_param { pool: STOCHASTIC kernel_size: 2 stride: 2 } }', pb.NetParameter)
    with pytest.raises(McnnError, match="sto"):
        Net(net, pb.TEST)


@pytest.mark.parametrize(("pool_fields", "name"), [
    ("kernel_size: 2 pad: 2", "pad_eq_kernel"),              # Caffe: CHECK_LT(pad, kernel)
    ("kernel_size: 3 pad: 4", "pad_gt_kernel"),
    ("global_pooling: true kernel_size: 2", "global_with_kernel"),  # kernel size cannot be given with global
])
def test_invalid_pooling_geometry_is_refused_naming_layer(pool_fields: str, name: str) -> None:
    net = parse_prototxt(NET_HEAD + f'layer {{ name: "{name}" type: "Pooling" bottom: "data" top: "p" '
                                    f'pooling_param {{ {pool_fields} }} }}', pb.NetParameter)
    with pytest.raises(McnnError, match=name):
        Net(net, pb.TEST)


def test_net_forward_chain_matches_reference() -> None:
    """A small Input -> Convolution -> ReLU -> Pooling(AVE, pad) -> InnerProduct net equals the composed references."""
    text = NET_HEAD + """
    layer { name: "conv" type: "Convolution" bottom: "data" top: "c"
            convolution_param { num_output: 3 kernel_size: 3 pad: 1 weight_filler { type: "gaussian" std: 0.5 }
                                bias_filler { type: "constant" value: 0.1 } } }
    layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }
    layer { name: "pool" type: "Pooling" bottom: "c" top: "p"
            pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
    layer { name: "fc" type: "InnerProduct" bottom: "p" top: "fc" inner_product_param { num_output: 2
            weight_filler { type: "gaussian" std: 0.5 } } }
    """
    net = Net(parse_prototxt(text, pb.NetParameter), pb.TEST, generator=torch.Generator().manual_seed(3))
    w = {b.layer + str(b.index): b.tensor.detach().numpy().astype(np.float64) for b in net.learnable()}
    x = rand(2, 2, 6, 6, seed=50)
    with torch.no_grad():
        blobs = net.forward({"data": torch.from_numpy(x)})
    c = np.maximum(conv_ref(x.astype(np.float64), w["conv0"], w["conv1"], (1, 1), (1, 1), (1, 1), 1), 0)
    p = caffe_pool_ref(c, (3, 3), (2, 2), (1, 1), "AVE")
    assert p.shape == (2, 3, 4, 4)  # ceil((6+2-3)/2)+1 = 4; (4-1)*2 = 6 < 6+1 keeps the last window
    fc = p.reshape(2, -1) @ w["fc0"].T + w["fc1"]
    np.testing.assert_allclose(blobs["fc"].numpy(), fc, rtol=1e-4, atol=1e-5)
    assert net.outputs == ["fc"]
