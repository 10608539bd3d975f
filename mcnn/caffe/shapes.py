"""Caffe's output-size rules: the one place the toolkit does Caffe's rounding.

Convolution rounds down; pooling rounds up (Caffe's default CEIL, the only mode OpenCV's
importer knows) and keeps a partial window at the border, except that a window starting
entirely inside the padding is dropped. The net summary, the engine and the builders all
call these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError


@dataclass(frozen=True)
class Window2d:
    """Resolved 2-D window geometry of a Convolution or Pooling layer (pixels)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


def conv_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis: floor((n + 2p - d(k-1) - 1) / s) + 1."""
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * pad - extent) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int = 1, pad: int = 0, ceil_mode: bool = True) -> int:
    """Output length of a pooling layer along one axis, with Caffe's rounding.

    CEIL: ceil((n + 2p - k) / s) + 1; FLOOR: floor(...) + 1. With padding, a last window
    that would start in the bottom/right padding is removed (Caffe's pooling_layer.cpp).
    """
    span = size + 2 * pad - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if pad > 0 and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pair(repeated: list[int], single_h: int, single_w: int, has_h: bool, default: int,
          what: str, layer: str) -> tuple[int, int]:
    if has_h:
        return (single_h, single_w)
    values = list(repeated)
    if not values:
        return (default, default)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise ShapeError(f"layer {layer!r}: {what} has {len(values)} values; 1 or 2 expected for 2-D")


def conv_window(param: pb.ConvolutionParameter, layer: str = "?") -> Window2d:
    """Kernel/stride/pad/dilation of a ConvolutionParameter (square or _h/_w forms)."""
    if param.HasField("kernel_h") != param.HasField("kernel_w"):
        raise ShapeError(f"layer {layer!r}: kernel_h and kernel_w must be given together")
    if param.HasField("kernel_h") and len(param.kernel_size):
        raise ShapeError(f"layer {layer!r}: give kernel_size or kernel_h/kernel_w, not both")
    kernel = _pair(param.kernel_size, param.kernel_h, param.kernel_w,
                   param.HasField("kernel_h"), 0, "kernel_size", layer)
    if min(kernel) <= 0:
        raise ShapeError(f"layer {layer!r}: convolution needs a positive kernel_size")
    stride = _pair(param.stride, param.stride_h, param.stride_w,
                   param.HasField("stride_h"), 1, "stride", layer)
    pad = _pair(param.pad, param.pad_h, param.pad_w,
                param.HasField("pad_h") or param.HasField("pad_w"), 0, "pad", layer)
    dilation = _pair(param.dilation, 0, 0, False, 1, "dilation", layer)
    return Window2d(kernel=kernel, stride=stride, pad=pad, dilation=dilation)


def pool_window(param: pb.PoolingParameter, input_hw: tuple[int, int], layer: str = "?") -> Window2d:
    """Kernel/stride/pad of a PoolingParameter; ``global_pooling`` takes the input size."""
    if param.global_pooling:
        if param.HasField("kernel_size") or param.HasField("kernel_h"):
            raise ShapeError(f"layer {layer!r}: global_pooling must not set kernel_size")
        return Window2d(kernel=input_hw, stride=(1, 1), pad=(0, 0))
    if param.HasField("kernel_h") != param.HasField("kernel_w"):
        raise ShapeError(f"layer {layer!r}: kernel_h and kernel_w must be given together")
    if param.HasField("kernel_h"):
        kernel = (param.kernel_h, param.kernel_w)
    elif param.HasField("kernel_size"):
        kernel = (param.kernel_size, param.kernel_size)
    else:
        raise ShapeError(f"layer {layer!r}: pooling needs kernel_size (or global_pooling)")
    if param.HasField("stride_h") or param.HasField("stride_w"):
        stride = (param.stride_h or 1, param.stride_w or 1)
    else:
        stride = (param.stride, param.stride)
    pad = (param.pad_h, param.pad_w) if param.HasField("pad_h") or param.HasField("pad_w") else (param.pad, param.pad)
    if min(kernel) <= 0 or min(stride) <= 0:
        raise ShapeError(f"layer {layer!r}: pooling kernel and stride must be positive")
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise ShapeError(f"layer {layer!r}: pooling pad must be smaller than the kernel")
    return Window2d(kernel=kernel, stride=stride, pad=pad)


def conv_output_hw(window: Window2d, input_hw: tuple[int, int], layer: str = "?") -> tuple[int, int]:
    """Output (H, W) of a convolution; :class:`ShapeError` if the kernel exceeds the padded input."""
    out = []
    for axis in range(2):
        size, k, s, p, d = (input_hw[axis], window.kernel[axis], window.stride[axis],
                            window.pad[axis], window.dilation[axis])
        extent = d * (k - 1) + 1
        if extent > size + 2 * p:
            raise ShapeError(
                f"layer {layer!r}: convolution kernel {extent} is larger than its padded input "
                f"{size + 2 * p} (input {input_hw[0]}x{input_hw[1]}); use a larger image"
            )
        out.append(conv_output_size(size, k, s, p, d))
    return (out[0], out[1])


def pool_output_hw(window: Window2d, input_hw: tuple[int, int], layer: str = "?",
                   ceil_mode: bool = True) -> tuple[int, int]:
    """Output (H, W) of a pooling layer; :class:`ShapeError` if the kernel exceeds the input.

    Caffe itself would clip such a window to the image; the toolkit refuses it because it
    means the image is smaller than the net was designed for (e.g. below the M-CNN's
    coarsest scale).
    """
    out = []
    for axis in range(2):
        size, k, s, p = input_hw[axis], window.kernel[axis], window.stride[axis], window.pad[axis]
        if k > size + 2 * p:
            raise ShapeError(
                f"layer {layer!r}: pooling kernel {k} is larger than its input "
                f"{input_hw[0]}x{input_hw[1]}; the image is too small for this net"
            )
        n = pool_output_size(size, k, s, p, ceil_mode)
        if (n - 1) * s >= size + p:
            # Caffe only drops such a window when pad > 0; without padding it computes an empty
            # window (MAX gives -FLT_MAX, AVE divides by zero). Refuse the geometry instead.
            raise ShapeError(
                f"layer {layer!r}: with kernel {k} and stride {s}, the last pooling window starts outside "
                f"the {input_hw[0]}x{input_hw[1]} input (Caffe would fill it with an empty window)"
            )
        out.append(n)
    return (out[0], out[1])
