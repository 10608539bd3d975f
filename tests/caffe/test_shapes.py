"""Caffe's rounding rules for convolution and pooling output sizes."""

from __future__ import annotations

import pytest

from mcnn.caffe import pb, shapes
from mcnn.errors import ShapeError


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pad", "expected"),
    [
        (224, 7, 2, 3, 112),   # GoogLeNet conv1
        (227, 11, 4, 0, 55),   # AlexNet conv1
        (13, 3, 1, 1, 13),
        (10, 3, 2, 0, 4),      # floor
    ],
)
def test_conv_output_rounds_down(size: int, kernel: int, stride: int, pad: int, expected: int) -> None:
    assert shapes.conv_output_size(size, kernel, stride, pad) == expected


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pad", "expected"),
    [
        (112, 3, 2, 0, 56),    # GoogLeNet pool1: ceil((112-3)/2)+1 = 56 (floor would give 55)
        (55, 3, 2, 0, 27),     # AlexNet pool1
        (7, 2, 2, 0, 4),       # partial border window kept
        (250, 64, 64, 0, 4),   # M-CNN coarsest scale on a 250-pixel image
        (330, 64, 64, 0, 6),
        (7, 3, 2, 1, 4),       # padding
        (5, 2, 2, 1, 3),       # last window would start in the padding: removed (ceil gives 4)
    ],
)
def test_pool_output_rounds_up_with_caffe_clip(size: int, kernel: int, stride: int, pad: int, expected: int) -> None:
    assert shapes.pool_output_size(size, kernel, stride, pad) == expected


def test_pool_floor_mode() -> None:
    assert shapes.pool_output_size(112, 3, 2, 0, ceil_mode=False) == 55


def test_pool_chain_meets_at_coarsest_scale() -> None:
    """ceil(ceil(H/a)/b) = ceil(H/(ab)): every M-CNN pathway ends at ceil(H/64)."""
    for h in (250, 382, 640, 1000, 1024, 1360):
        for s in (1, 2, 4, 8, 16, 32):
            inner = shapes.pool_output_size(h, s, s) if s > 1 else h
            assert shapes.pool_output_size(inner, 64 // s, 64 // s) == -(-h // 64)


def test_window_parsing_and_errors() -> None:
    conv = pb.ConvolutionParameter(num_output=4, kernel_h=3, kernel_w=5, pad_h=1, pad_w=2)
    win = shapes.conv_window(conv, "c")
    assert win.kernel == (3, 5) and win.pad == (1, 2) and win.stride == (1, 1)
    assert shapes.conv_output_hw(win, (10, 10), "c") == (10, 10)
    with pytest.raises(ShapeError, match="layer 'c': convolution kernel 5 is larger"):
        shapes.conv_output_hw(shapes.conv_window(pb.ConvolutionParameter(kernel_size=[5]), "c"), (3, 3), "c")
    pool = pb.PoolingParameter(kernel_size=64, stride=64)
    with pytest.raises(ShapeError, match="layer 'p': pooling kernel 64 is larger than its input 32x40"):
        shapes.pool_output_hw(shapes.pool_window(pool, (32, 40), "p"), (32, 40), "p")
    with pytest.raises(ShapeError, match="needs kernel_size"):
        shapes.pool_window(pb.PoolingParameter(), (8, 8), "p")
    with pytest.raises(ShapeError, match="starts outside the 6x6 input"):
        shapes.pool_output_hw(shapes.pool_window(pb.PoolingParameter(kernel_size=2, stride=3), (6, 6), "q"),
                              (6, 6), "q")
    glob = shapes.pool_window(pb.PoolingParameter(global_pooling=True), (7, 9), "g")
    assert shapes.pool_output_hw(glob, (7, 9), "g") == (1, 1)
