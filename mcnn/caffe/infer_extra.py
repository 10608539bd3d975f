"""Shape rules of the further layer types pycaffe scripts rely on, in the table of :mod:`mcnn.caffe.infer`.

Eltwise, Sigmoid, TanH, Silence, Split, Reshape, Scale, BatchNorm, EuclideanLoss, DummyData, HDF5Data, HDF5Output
and Python layers, each with the checks of its Caffe implementation (src/caffe/layers/*.cpp),
as :class:`~mcnn.errors.ShapeError` naming the layer. Shapes are per image, as everywhere in
the table; the helpers that work on full (batch-first) shapes are shared with the engine's
forwards (:mod:`mcnn.engine.layers_extra`) so both follow one rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mcnn.caffe.infer import LayerShapes, Shape, shape_rule
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError


def _bottoms(layer: pb.LayerParameter, bottoms: Sequence[Shape], least: int) -> None:
    if len(bottoms) < least:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs at least {least} bottom blob(s), "
                         f"got {len(bottoms)}")


def _shape_text(shape: Shape) -> str:
    return "x".join(map(str, shape)) or "scalar"


@shape_rule("Sigmoid")
@shape_rule("TanH")
def _elementwise(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Sigmoid and TanH keep the bottom's shape."""
    _bottoms(layer, bottoms, 1)
    return LayerShapes([bottoms[0]])


@shape_rule("Eltwise")
def _eltwise(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """At least two bottoms of one shape; ``coeff`` (SUM only) has one value per bottom (eltwise_layer.cpp)."""
    _bottoms(layer, bottoms, 2)
    p = layer.eltwise_param
    if len({tuple(b) for b in bottoms}) != 1:
        raise ShapeError(f"layer {layer.name!r}: Eltwise bottoms differ in shape: "
                         + ", ".join(_shape_text(b) for b in bottoms))
    if len(p.coeff) and p.operation != pb.EltwiseParameter.SUM:
        raise ShapeError(f"layer {layer.name!r}: Eltwise takes coeff only for operation SUM")
    if len(p.coeff) not in (0, len(bottoms)):
        raise ShapeError(f"layer {layer.name!r}: Eltwise has {len(p.coeff)} coeff values for {len(bottoms)} bottoms")
    return LayerShapes([bottoms[0]])


@shape_rule("Silence")
def _silence(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Consumes its bottoms and has no tops (silence_layer.cpp)."""
    _bottoms(layer, bottoms, 1)
    if len(layer.top):
        raise ShapeError(f"layer {layer.name!r}: Silence has no tops, got {len(layer.top)}")
    return LayerShapes([])


@shape_rule("Split")
def _split(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """One bottom copied to every top (split_layer.cpp)."""
    if len(bottoms) != 1 or not len(layer.top):
        raise ShapeError(f"layer {layer.name!r}: Split takes one bottom and at least one top")
    return LayerShapes([bottoms[0]] * len(layer.top))


def reshape_shape(layer: pb.LayerParameter, full: Shape) -> Shape:
    """The top shape of a Reshape layer for a bottom of (full, batch-first) shape ``full`` (reshape_layer.cpp).

    Axes ``axis`` .. ``axis + num_axes`` are replaced by ``reshape_param.shape``, where 0 copies the
    bottom's axis at that position and one -1 is inferred so that the count is kept.
    """
    p = layer.reshape_param
    dims = [int(d) for d in p.shape.dim]
    ndim = len(full)
    start = p.axis if p.axis >= 0 else ndim + p.axis + 1
    if not 0 <= start <= ndim:
        raise ShapeError(f"layer {layer.name!r}: Reshape axis {p.axis} is out of range for {ndim} axes")
    if p.num_axes < -1:
        raise ShapeError(f"layer {layer.name!r}: Reshape num_axes must be >= -1, got {p.num_axes}")
    end = ndim if p.num_axes == -1 else start + p.num_axes
    if end > ndim:
        raise ShapeError(f"layer {layer.name!r}: Reshape axis {p.axis} + num_axes {p.num_axes} exceeds {ndim} axes")
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise ShapeError(f"layer {layer.name!r}: Reshape shape may hold one -1 and no other negative dim")
    out = []
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= ndim:
                raise ShapeError(f"layer {layer.name!r}: Reshape dim {i} is 0 but the bottom has no axis {start + i}")
            d = full[start + i]
        out.append(d)
    top = [*full[:start], *out, *full[end:]]
    count = math.prod(full)
    if -1 in top:
        known = math.prod(d for d in top if d != -1)
        if known == 0 or count % known:
            raise ShapeError(f"layer {layer.name!r}: cannot infer the -1 of Reshape: {count} values "
                             f"do not divide into {known}")
        top[top.index(-1)] = count // known
    if math.prod(top) != count:
        raise ShapeError(f"layer {layer.name!r}: Reshape to {_shape_text(tuple(top))} changes the count "
                         f"({count} values in {_shape_text(full)})")
    return tuple(top)


@shape_rule("Reshape")
def _reshape(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """The reshaped bottom; the batch axis must come through unchanged (the engine's shapes are per image).

    The rule is applied for two batch sizes: a reshape whose top does not start with the batch
    (e.g. ``shape { dim: -1 }`` over every axis) is refused.
    """
    _bottoms(layer, bottoms, 1)
    tops = [reshape_shape(layer, (batch, *bottoms[0])) for batch in (2, 3)]
    if tops[0][:1] != (2,) or tops[1][:1] != (3,) or tops[0][1:] != tops[1][1:]:
        raise ShapeError(f"layer {layer.name!r}: this Reshape changes the batch axis; keep it (first dim: 0)")
    return LayerShapes([tops[0][1:]])


def scale_shape(layer: pb.LayerParameter, full: Shape) -> Shape:
    """Shape of the learned scale of a one-bottom Scale layer on a bottom of full shape ``full`` (scale_layer.cpp).

    The axes ``axis`` .. ``axis + num_axes`` of the bottom (``num_axes`` -1: to the last axis, 0: a scalar).
    """
    p = layer.scale_param
    ndim = len(full)
    axis = p.axis if p.axis >= 0 else p.axis + ndim
    if not 0 <= axis <= ndim:
        raise ShapeError(f"layer {layer.name!r}: Scale axis {p.axis} is out of range for {ndim} axes")
    if p.num_axes < -1:
        raise ShapeError(f"layer {layer.name!r}: Scale num_axes must be >= -1, got {p.num_axes}")
    end = ndim if p.num_axes == -1 else axis + p.num_axes
    if end > ndim:
        raise ShapeError(f"layer {layer.name!r}: Scale axis {p.axis} + num_axes {p.num_axes} exceeds {ndim} axes")
    return tuple(full[axis:end])


def _scale_fillers(layer: pb.LayerParameter, index: int) -> pb.FillerParameter:
    """Scale: the scale blob from ``filler`` (default constant 1), the bias from ``bias_filler`` (default 0)."""
    p = layer.scale_param
    if index == 0 and len(layer.bottom) < 2:
        return p.filler if p.HasField("filler") else pb.FillerParameter(type="constant", value=1.0)
    return p.bias_filler


@shape_rule("Scale", filler_param="scale_param", filler_fields=("filler", "bias_filler"), filler_rule=_scale_fillers)
def _scale(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """y = x * scale (+ bias), the scale broadcast over the axes before and after it.

    With one bottom the scale is learned (blob 0) over the bottom's axes from ``axis`` (which must
    not be the batch axis); with two, bottom 1 is the scale: the engine's blobs are batch first,
    so that needs ``axis: 0`` (a per-image scale) and no bias.
    """
    _bottoms(layer, bottoms, 1)
    p = layer.scale_param
    x = bottoms[0]
    if len(bottoms) > 1:
        axis = p.axis if p.axis >= 0 else p.axis + len(x) + 1
        s = bottoms[1]
        if axis != 0:
            raise ShapeError(f"layer {layer.name!r}: a Scale with a second bottom needs scale_param.axis 0 here "
                             "(blobs are batch first)")
        if tuple(x[:len(s)]) != tuple(s):
            raise ShapeError(f"layer {layer.name!r}: the scale bottom {_shape_text(s)} does not match the "
                             f"leading axes of {_shape_text(x)}")
        if p.bias_term:
            raise ShapeError(f"layer {layer.name!r}: bias_term with a second (scale) bottom is not supported")
        return LayerShapes([x], macs=math.prod(x))
    axis = p.axis if p.axis >= 0 else p.axis + len(x) + 1
    if axis == 0:
        raise ShapeError(f"layer {layer.name!r}: a learned scale cannot span the batch axis (scale_param.axis 0)")
    shape = scale_shape(layer, (1, *x))
    return LayerShapes([x], [shape] * (2 if p.bias_term else 1), macs=math.prod(x))


@shape_rule("BatchNorm", statistics=True)
def _batch_norm(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Normalisation per channel (axis 1); blobs: the mean (C,), the variance (C,) and the scale factor (1,)."""
    _bottoms(layer, bottoms, 1)
    x = bottoms[0]
    channels = x[0] if x else 1
    return LayerShapes([x], [(channels,), (channels,), (1,)], macs=math.prod(x))


@shape_rule("EuclideanLoss")
def _euclidean(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """A scalar, sum((a - b)^2) / 2N; both bottoms must hold as many values per image (euclidean_loss_layer.cpp)."""
    _bottoms(layer, bottoms, 2)
    if math.prod(bottoms[0]) != math.prod(bottoms[1]):
        raise ShapeError(f"layer {layer.name!r}: EuclideanLoss inputs must have the same dimension, got "
                         f"{_shape_text(bottoms[0])} and {_shape_text(bottoms[1])}")
    return LayerShapes([()], batch_axis=False)


def dummy_shapes(layer: pb.LayerParameter) -> list[Shape]:
    """Full (batch-first) shape of each top of a DummyData layer: ``shape`` or num/channels/height/width.

    One shape (or one value of each legacy field) serves every top; otherwise there is one per top.
    """
    p = layer.dummy_data_param
    tops = len(layer.top)
    legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
    if len(p.shape):
        if any(legacy):
            raise ShapeError(f"layer {layer.name!r}: DummyData takes shape or num/channels/height/width, not both")
        if len(p.shape) not in (1, tops):
            raise ShapeError(f"layer {layer.name!r}: DummyData has {len(p.shape)} shapes for {tops} tops")
        shapes = [tuple(int(d) for d in p.shape[i if len(p.shape) > 1 else 0].dim) for i in range(tops)]
    elif any(legacy):
        if any(len(values) not in (1, tops) for values in legacy):
            raise ShapeError(f"layer {layer.name!r}: DummyData needs num, channels, height and width, "
                             f"each once or once per top ({tops})")
        shapes = [tuple(values[i if len(values) > 1 else 0] for values in legacy) for i in range(tops)]
    else:
        raise ShapeError(f"layer {layer.name!r}: DummyData needs dummy_data_param.shape")
    if len(p.data_filler) not in (0, 1, tops):
        raise ShapeError(f"layer {layer.name!r}: DummyData has {len(p.data_filler)} data_filler for {tops} tops "
                         "(give none, one, or one per top)")
    for shape in shapes:
        if not shape or min(shape) < 1:
            raise ShapeError(f"layer {layer.name!r}: DummyData shape {_shape_text(shape)} needs a batch axis "
                             "and positive dims")
    return shapes


@shape_rule("DummyData")
def _dummy_data(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """The given shapes without their batch axis; the values come from ``data_filler`` (dummy_data_layer.cpp)."""
    if bottoms:
        raise ShapeError(f"layer {layer.name!r}: DummyData takes no bottoms")
    return LayerShapes([shape[1:] for shape in dummy_shapes(layer)])


@shape_rule("Python", dynamic=True)
def _python(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Refused: a Python layer's shapes come from its ``reshape()``, which only the engine runs."""
    raise ShapeError(f"layer {layer.name!r}: the shapes of a Python layer come from its reshape(); "
                     "load the net with the engine (mcnn.engine or mcnn.pycaffe) to run it")


@shape_rule("HDF5Data", feed=True)
def _hdf5_data(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """One top per dataset, each the per-row shape of the dataset named like it (read from the .h5 files)."""
    if bottoms:
        raise ShapeError(f"layer {layer.name!r}: HDF5Data takes no bottoms, got {len(bottoms)}")
    if not len(layer.top):
        raise ShapeError(f"layer {layer.name!r}: HDF5Data needs at least one top (the dataset names)")
    missing = [top for top in layer.top if top not in data_shapes]
    if missing:
        raise ShapeError(f"layer {layer.name!r}: the shape of HDF5 dataset(s) {', '.join(missing)} must be given "
                         "(the engine reads them from the files of hdf5_data_param.source)")
    return LayerShapes([tuple(data_shapes[top]) for top in layer.top])


@shape_rule("HDF5Output")
def _hdf5_output(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Two bottoms (data, label) of at most 4 axes with the batch, no tops (hdf5_output_layer.cpp)."""
    if len(bottoms) != 2:
        raise ShapeError(f"layer {layer.name!r}: HDF5Output takes two bottoms (data, label), got {len(bottoms)}")
    if len(layer.top):
        raise ShapeError(f"layer {layer.name!r}: HDF5Output has no tops, got {len(layer.top)}")
    if not layer.hdf5_output_param.file_name:
        raise ShapeError(f"layer {layer.name!r}: hdf5_output_param.file_name must be set")
    for name, shape in zip(layer.bottom, bottoms, strict=True):
        if len(shape) > 3:  # Caffe stores them as num x channels x height x width
            raise ShapeError(f"layer {layer.name!r}: bottom {name!r} has {len(shape) + 1} axes, HDF5Output "
                             "writes at most 4")
    return LayerShapes([])
