"""The supported layer types and their shape rules: top shapes, learnable blob shapes, mult-adds.

:data:`LAYER_TYPES` is the one table of the layer types the toolkit knows. Each entry is
registered with :func:`shape_rule` and says how the type's shapes follow from its bottoms,
whether it is a feed (Input/Data: filled by the caller, no forward), and which parameter
message holds its ``weight_filler``/``bias_filler``. The net summary and the PyTorch engine
both call :func:`infer_layer`; the engine registers one forward implementation per non-feed
entry (:mod:`mcnn.engine.layers`), and refuses types that are not in this table.

Shapes are per image (no batch axis), so ``axis`` fields are shifted by one. Rounding is
done by :mod:`mcnn.caffe.shapes`. The rules of the further types that pycaffe scripts use
(Eltwise, BatchNorm, Python layers, ...) live in :mod:`mcnn.caffe.infer_extra`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mcnn.caffe import shapes
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError

Shape = tuple[int, ...]


@dataclass
class LayerShapes:
    """Per-image shapes of a layer's tops and its learnable blobs (Caffe order), and its mult-adds.

    ``batch_axis`` is False for layers whose tops reduce the whole batch (losses, accuracy):
    their top shapes are then the blobs' full shapes (Caffe's loss top is a scalar).
    """

    tops: list[Shape]
    params: list[Shape] = field(default_factory=list)
    macs: int = 0
    batch_axis: bool = True


#: A shape rule: (layer, bottom shapes, data shapes of Data tops) -> LayerShapes.
ShapeFn = Callable[[pb.LayerParameter, Sequence[Shape], dict[str, Shape]], LayerShapes]


#: A filler rule: (layer, learnable blob index) -> the FillerParameter that fills the blob.
FillerFn = Callable[[pb.LayerParameter, int], pb.FillerParameter]


@dataclass(frozen=True)
class LayerType:
    """One supported Caffe layer type: its shape rule and what the engine needs to know about it.

    ``feed``: the caller provides the tops (Input, Data); there is no forward computation.
    ``filler_param``: the LayerParameter field whose filler fields (``filler_fields``, one per
    learnable blob: by default ``weight_filler`` for blob 0 and ``bias_filler`` for blob 1) fill
    the learnable blobs, or "" for types without fillers. ``filler_rule`` replaces that lookup
    where Caffe's defaults differ (Scale's identity scale).
    ``statistics``: the learnable blobs are statistics the forward updates (BatchNorm), never
    learned: they get no gradient and a learning rate of 0.
    ``dynamic``: only running the layer tells its shapes (Python layers); the engine asks the
    layer itself and the shape rule refuses.
    """

    name: str
    infer: ShapeFn
    feed: bool = False
    filler_param: str = ""
    filler_fields: tuple[str, ...] = ("weight_filler", "bias_filler")
    filler_rule: FillerFn | None = None
    statistics: bool = False
    dynamic: bool = False

    def fillers(self, layer: pb.LayerParameter, index: int) -> pb.FillerParameter:
        """The filler of learnable blob ``index`` of ``layer`` (Caffe's default, constant 0, if none)."""
        if self.filler_rule is not None:
            return self.filler_rule(layer, index)
        if not self.filler_param or index >= len(self.filler_fields):
            return pb.FillerParameter()
        return getattr(getattr(layer, self.filler_param), self.filler_fields[index])


#: Every supported layer type by name, in registration order.
LAYER_TYPES: dict[str, LayerType] = {}


def shape_rule(name: str, *, feed: bool = False, filler_param: str = "",
               filler_fields: tuple[str, ...] = ("weight_filler", "bias_filler"), filler_rule: FillerFn | None = None,
               statistics: bool = False, dynamic: bool = False) -> Callable[[ShapeFn], ShapeFn]:
    """Register the decorated function as the shape rule of layer type ``name`` (keywords: :class:`LayerType`)."""
    def register(fn: ShapeFn) -> ShapeFn:
        if name in LAYER_TYPES:
            raise ValueError(f"layer type {name!r} is registered twice")
        LAYER_TYPES[name] = LayerType(name, fn, feed, filler_param, filler_fields, filler_rule, statistics, dynamic)
        return fn
    return register


def layer_type(layer: pb.LayerParameter) -> LayerType:
    """The registry entry of ``layer``'s type; :class:`ShapeError` naming the layer if unsupported."""
    entry = LAYER_TYPES.get(layer.type)
    if entry is None:
        raise ShapeError(f"layer {layer.name!r}: layer type {layer.type!r} is not supported; "
                         f"supported: {', '.join(LAYER_TYPES)}")
    return entry


def infer_layer(layer: pb.LayerParameter, bottoms: Sequence[Shape],
                data_shapes: dict[str, Shape] | None = None) -> LayerShapes:
    """Shapes for ``layer`` given its bottoms' per-image shapes.

    ``data_shapes`` gives the image shape of each Data layer top (``label`` defaults to a scalar).
    Raises :class:`ShapeError` naming the layer for unsupported types or shapes that don't fit.
    """
    return layer_type(layer).infer(layer, bottoms, data_shapes or {})


# -- helpers --------------------------------------------------------------------------------

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


def _canonical(layer: pb.LayerParameter, axis: int, ndim: int) -> int:
    """Caffe's Blob::CanonicalAxisIndex: ``axis`` in [-ndim, ndim) of a blob of ``ndim`` axes (batch included)."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"layer {layer.name!r}: axis {axis} is out of range for a {ndim}-axis blob")
    return axis % ndim


def _check_pairs(layer: pb.LayerParameter, p: pb.ConvolutionParameter | pb.PoolingParameter,
                 names: Sequence[str], repeated: bool) -> None:
    """Caffe's LayerSetUp CHECKs on ``<name>`` versus ``<name>_h``/``<name>_w``: one form, not both, and
    pooling needs both of ``_h``/``_w`` (pooling_layer.cpp, base_conv_layer.cpp)."""
    for name in names:
        field = "kernel_size" if name == "kernel" else name
        has_h, has_w = p.HasField(f"{name}_h"), p.HasField(f"{name}_w")
        has_one = bool(len(getattr(p, field))) if repeated else p.HasField(field)
        if (has_h or has_w) and has_one:
            raise ShapeError(f"layer {layer.name!r}: give {field} or {name}_h/{name}_w, not both")
        if not repeated and has_h != has_w:
            raise ShapeError(f"layer {layer.name!r}: {name}_h and {name}_w must be given together")


def _one(layer: pb.LayerParameter, bottoms: Sequence[Shape]) -> Shape:
    if not bottoms:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs a bottom blob")
    return bottoms[0]


def concat_axis(param: pb.ConcatParameter) -> int:
    """Caffe's concat axis (with batch): ``axis``, or the deprecated ``concat_dim`` if only it is set."""
    return param.axis if param.HasField("axis") or not param.HasField("concat_dim") else param.concat_dim


# -- the rules ------------------------------------------------------------------------------

@shape_rule("Input", feed=True)
def _input(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """One shape per top from ``input_param.shape`` (a single shape serves every top)."""
    dims = layer.input_param.shape
    if not dims:
        raise ShapeError(f"layer {layer.name!r}: Input layer without input_param.shape")
    return LayerShapes([tuple(int(d) for d in (dims[i] if len(dims) > 1 else dims[0]).dim[1:])
                        for i in range(len(layer.top))])


@shape_rule("Data", feed=True)
def _data(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """The image shape from ``data_shapes`` (read from the LMDB); the label top is a scalar."""
    tops = []
    for top in layer.top:
        if top in data_shapes:
            tops.append(tuple(data_shapes[top]))
        elif top != layer.top[0]:
            tops.append(())
        else:
            raise ShapeError(f"layer {layer.name!r}: the shape of data blob {top!r} must be given")
    return LayerShapes(tops)


@shape_rule("Convolution", filler_param="convolution_param")
def _convolution(layer: pb.LayerParameter, bottoms: Sequence[Shape],
                 data_shapes: dict[str, Shape]) -> LayerShapes:
    """2-D convolution (src/caffe/layers/conv_layer.cpp): weights (O, C/group, kh, kw), bias (O,)."""
    name = layer.name
    c, h, w = _spatial(layer, _one(layer, bottoms))
    p = layer.convolution_param
    if p.axis != 1 or p.force_nd_im2col:
        raise ShapeError(f"layer {name!r}: only 2-D convolution over axis 1 is supported")
    _check_pairs(layer, p, ("stride", "pad"), repeated=True)
    win = shapes.conv_window(p, name)
    if min(win.stride) < 1 or min(win.dilation) < 1:
        raise ShapeError(f"layer {name!r}: convolution stride and dilation must be positive, got stride "
                         f"{'x'.join(map(str, win.stride))}, dilation {'x'.join(map(str, win.dilation))}")
    oh, ow = shapes.conv_output_hw(win, (h, w), name)
    group = p.group or 1
    if p.num_output < 1:
        raise ShapeError(f"layer {name!r}: convolution needs num_output")
    if c % group or p.num_output % group:
        raise ShapeError(f"layer {name!r}: group {group} must divide {c} input and {p.num_output} output channels")
    per_out = (c // group) * win.kernel[0] * win.kernel[1]
    params = [(p.num_output, c // group, *win.kernel)] + ([(p.num_output,)] if p.bias_term else [])
    return LayerShapes([(p.num_output, oh, ow)], params, p.num_output * oh * ow * per_out)


@shape_rule("Pooling")
def _pooling(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """MAX/AVE pooling with Caffe's rounding (src/caffe/layers/pooling_layer.cpp)."""
    c, h, w = _spatial(layer, _one(layer, bottoms))
    p = layer.pooling_param
    if p.pool == pb.PoolingParameter.STOCHASTIC:
        raise ShapeError(f"layer {layer.name!r}: STOCHASTIC pooling is not supported (MAX and AVE are)")
    _check_pairs(layer, p, ("kernel", "stride", "pad"), repeated=False)
    if p.global_pooling:
        pad = (p.pad_h, p.pad_w) if p.HasField("pad_h") else (p.pad, p.pad)
        stride = (p.stride_h, p.stride_w) if p.HasField("stride_h") else (p.stride, p.stride)
        if pad != (0, 0) or stride != (1, 1):
            # pooling_layer.cpp LayerSetUp: "With Global_pooling: true; only pad = 0 and stride = 1"
            raise ShapeError(f"layer {layer.name!r}: global_pooling allows only pad 0 and stride 1, got pad "
                             f"{'x'.join(map(str, pad))}, stride {'x'.join(map(str, stride))}")
    win = shapes.pool_window(p, (h, w), layer.name)
    ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
    return LayerShapes([(c, *shapes.pool_output_hw(win, (h, w), layer.name, ceil_mode))])


@shape_rule("InnerProduct", filler_param="inner_product_param")
def _inner_product(layer: pb.LayerParameter, bottoms: Sequence[Shape],
                   data_shapes: dict[str, Shape]) -> LayerShapes:
    """Fully connected over the axes from ``axis`` on: weights (O, K) (or (K, O) transposed), bias (O,)."""
    shape = _one(layer, bottoms)
    p = layer.inner_product_param
    if p.num_output < 1:
        raise ShapeError(f"layer {layer.name!r}: InnerProduct needs num_output")
    axis = _axis(layer, p.axis, len(shape))
    k = math.prod(shape[axis:])
    weight = (k, p.num_output) if p.transpose else (p.num_output, k)
    params = [weight] + ([(p.num_output,)] if p.bias_term else [])
    return LayerShapes([(*shape[:axis], p.num_output)], params, k * p.num_output)


@shape_rule("ReLU")
@shape_rule("Dropout")
@shape_rule("Softmax")
def _same_shape(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Element-wise layers: the top has the bottom's shape; Softmax's axis may be any axis, the batch's too."""
    shape = _one(layer, bottoms)
    if layer.type == "Softmax":
        _canonical(layer, layer.softmax_param.axis, len(shape) + 1)
    return LayerShapes([shape])


@shape_rule("Concat")
def _concat(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Bottoms joined along the concat axis; every other axis must agree."""
    if not bottoms:
        raise ShapeError(f"layer {layer.name!r}: Concat needs bottoms")
    axis = concat_axis(layer.concat_param)
    if axis in (0, -len(bottoms[0]) - 1):
        # Caffe concatenates along the batch axis too: the images keep their shape, the batches add up.
        if len(set(bottoms)) != 1:
            raise ShapeError(f"layer {layer.name!r}: Concat along axis 0 needs bottoms of one per-image shape, got "
                             + ", ".join("x".join(map(str, b)) for b in bottoms))
        return LayerShapes([bottoms[0]])
    axis = _axis(layer, axis, len(bottoms[0]))
    rest = {b[:axis] + b[axis + 1:] for b in bottoms}
    if len(rest) != 1 or len({len(b) for b in bottoms}) != 1:
        raise ShapeError(f"layer {layer.name!r}: Concat inputs differ outside axis {axis + 1}: "
                         + ", ".join("x".join(map(str, b)) for b in bottoms))
    first = bottoms[0]
    return LayerShapes([(*first[:axis], sum(b[axis] for b in bottoms), *first[axis + 1:])])


@shape_rule("LRN")
def _lrn(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Local response normalisation keeps the shape; Caffe requires an odd ``local_size`` (lrn_layer.cpp)."""
    shape = _one(layer, bottoms)
    _spatial(layer, shape)
    if layer.lrn_param.local_size % 2 == 0:
        raise ShapeError(f"layer {layer.name!r}: LRN local_size must be odd, got {layer.lrn_param.local_size}")
    return LayerShapes([shape])


@shape_rule("Flatten")
def _flatten(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """Axes ``axis`` .. ``end_axis`` merged into one."""
    shape = _one(layer, bottoms)
    p = layer.flatten_param
    start = _axis(layer, p.axis, len(shape))
    end = _axis(layer, p.end_axis, len(shape))
    if end + 1 < start:  # Blob::count(start, end + 1) CHECKs start <= end + 1 (flatten_layer.cpp)
        raise ShapeError(f"layer {layer.name!r}: Flatten end_axis {p.end_axis} comes before axis {p.axis}")
    if list(layer.top) == list(layer.bottom[:1]) and len(layer.top):
        raise ShapeError(f"layer {layer.name!r}: Flatten cannot be computed in place (give it its own top)")
    return LayerShapes([(*shape[:start], math.prod(shape[start:end + 1]), *shape[end + 1:])])


@shape_rule("SoftmaxWithLoss")
@shape_rule("Accuracy")
def _scored(layer: pb.LayerParameter, bottoms: Sequence[Shape], data_shapes: dict[str, Shape]) -> LayerShapes:
    """A scalar over the batch; Accuracy's optional second top holds one value per class."""
    if len(bottoms) < 2:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs predictions and labels as bottoms")
    tops: list[Shape] = [()]
    if layer.type == "Accuracy" and len(layer.top) > 1:
        tops.append((bottoms[0][0],))
    return LayerShapes(tops, batch_axis=False)


# The types pycaffe scripts use (Eltwise, BatchNorm, Python, ...) register into the same table.
from mcnn.caffe import infer_extra  # noqa: E402, F401
