"""Shape inference for one Caffe layer: top shapes, learnable blob shapes and multiply-adds.

Shapes are per image (no batch axis), so ``axis`` fields are shifted by one. This is the
only implementation of Caffe's per-layer shape rules; the net summary and the PyTorch
engine both call :func:`infer_layer` (which calls :mod:`mcnn.caffe.shapes` for rounding).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mcnn.caffe import shapes
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError

Shape = tuple[int, ...]

#: Layer types whose shapes :func:`infer_layer` knows (the types the engine runs).
SUPPORTED_TYPES = (
    "Input", "Data", "Convolution", "Pooling", "ReLU", "Concat", "InnerProduct", "Dropout", "LRN",
    "Flatten", "Softmax", "SoftmaxWithLoss", "Accuracy",
)


@dataclass
class LayerShapes:
    """Per-image shapes of a layer's tops and its learnable blobs (Caffe order), and its mult-adds."""

    tops: list[Shape]
    params: list[Shape] = field(default_factory=list)
    macs: int = 0


def _spatial(layer: pb.LayerParameter, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs a C x H x W input, got {shape}")
    return shape[0], shape[1], shape[2]


def _axis(layer: pb.LayerParameter, axis: int, ndim: int) -> int:
    """Caffe axis (with batch) -> index into a per-image shape of ``ndim`` axes."""
    full = axis if axis >= 0 else axis + ndim + 1
    if not 1 <= full <= ndim:
        raise ShapeError(f"layer {layer.name!r}: axis {axis} must address a non-batch axis")
    return full - 1


def _one(layer: pb.LayerParameter, bottoms: Sequence[Shape]) -> Shape:
    if not bottoms:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs a bottom blob")
    return bottoms[0]


def infer_layer(layer: pb.LayerParameter, bottoms: Sequence[Shape],
                data_shapes: dict[str, Shape] | None = None) -> LayerShapes:
    """Shapes for ``layer`` given its bottoms' per-image shapes.

    ``data_shapes`` gives the image shape of each Data layer top (``label`` defaults to a scalar).
    Raises :class:`ShapeError` naming the layer for unsupported types or shapes that don't fit.
    """
    t, name = layer.type, layer.name
    if t == "Input":
        dims = layer.input_param.shape
        if not dims:
            raise ShapeError(f"layer {name!r}: Input layer without input_param.shape")
        return LayerShapes([tuple(int(d) for d in (dims[i] if len(dims) > 1 else dims[0]).dim[1:])
                            for i in range(len(layer.top))])
    if t == "Data":
        given = data_shapes or {}
        tops = []
        for top in layer.top:
            if top in given:
                tops.append(tuple(given[top]))
            elif top != layer.top[0]:
                tops.append(())
            else:
                raise ShapeError(f"layer {name!r}: the shape of data blob {top!r} must be given")
        return LayerShapes(tops)
    if t == "Convolution":
        c, h, w = _spatial(layer, _one(layer, bottoms))
        p = layer.convolution_param
        if p.axis != 1 or p.force_nd_im2col:
            raise ShapeError(f"layer {name!r}: only 2-D convolution over axis 1 is supported")
        win = shapes.conv_window(p, name)
        oh, ow = shapes.conv_output_hw(win, (h, w), name)
        group = p.group or 1
        if p.num_output < 1:
            raise ShapeError(f"layer {name!r}: convolution needs num_output")
        if c % group or p.num_output % group:
            raise ShapeError(f"layer {name!r}: group {group} must divide {c} input and {p.num_output} output channels")
        per_out = (c // group) * win.kernel[0] * win.kernel[1]
        params = [(p.num_output, c // group, *win.kernel)] + ([(p.num_output,)] if p.bias_term else [])
        return LayerShapes([(p.num_output, oh, ow)], params, p.num_output * oh * ow * per_out)
    if t == "Pooling":
        c, h, w = _spatial(layer, _one(layer, bottoms))
        p = layer.pooling_param
        if p.pool == pb.PoolingParameter.STOCHASTIC:
            raise ShapeError(f"layer {name!r}: STOCHASTIC pooling is not supported (MAX and AVE are)")
        win = shapes.pool_window(p, (h, w), name)
        ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
        return LayerShapes([(c, *shapes.pool_output_hw(win, (h, w), name, ceil_mode))])
    if t == "InnerProduct":
        shape = _one(layer, bottoms)
        p = layer.inner_product_param
        if p.num_output < 1:
            raise ShapeError(f"layer {name!r}: InnerProduct needs num_output")
        axis = _axis(layer, p.axis, len(shape))
        k = math.prod(shape[axis:])
        weight = (k, p.num_output) if p.transpose else (p.num_output, k)
        params = [weight] + ([(p.num_output,)] if p.bias_term else [])
        return LayerShapes([(*shape[:axis], p.num_output)], params, k * p.num_output)
    if t == "Concat":
        if not bottoms:
            raise ShapeError(f"layer {name!r}: Concat needs bottoms")
        p = layer.concat_param
        axis = _axis(layer, p.axis if p.HasField("axis") or not p.HasField("concat_dim") else p.concat_dim,
                     len(bottoms[0]))
        rest = {b[:axis] + b[axis + 1:] for b in bottoms}
        if len(rest) != 1 or len({len(b) for b in bottoms}) != 1:
            raise ShapeError(f"layer {name!r}: Concat inputs differ outside axis {axis + 1}: "
                             + ", ".join("x".join(map(str, b)) for b in bottoms))
        first = bottoms[0]
        return LayerShapes([(*first[:axis], sum(b[axis] for b in bottoms), *first[axis + 1:])])
    if t == "Flatten":
        shape = _one(layer, bottoms)
        p = layer.flatten_param
        start = _axis(layer, p.axis, len(shape))
        end = _axis(layer, p.end_axis, len(shape))
        return LayerShapes([(*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])])
    if t in ("ReLU", "Dropout", "Softmax"):
        return LayerShapes([_one(layer, bottoms)])
    if t == "LRN":
        shape = _one(layer, bottoms)
        _spatial(layer, shape)
        if layer.lrn_param.local_size % 2 == 0:
            raise ShapeError(f"layer {name!r}: LRN local_size must be odd, got {layer.lrn_param.local_size}")
        return LayerShapes([shape])
    if t in ("SoftmaxWithLoss", "Accuracy"):
        if len(bottoms) < 2:
            raise ShapeError(f"layer {name!r} ({t}) needs predictions and labels as bottoms")
        tops: list[Shape] = [()]
        if t == "Accuracy" and len(layer.top) > 1:
            tops.append((bottoms[0][0],))
        return LayerShapes(tops)
    raise ShapeError(f"layer {name!r}: layer type {t!r} is not supported; supported: {', '.join(SUPPORTED_TYPES)}")
