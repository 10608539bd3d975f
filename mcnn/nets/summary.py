"""Per-layer summary of a Caffe net: output shapes by Caffe's rules, parameters, multiply-adds.

Shapes are computed per image (batch 1) with :mod:`mcnn.caffe.shapes`, so a layer that
cannot take its input (an image smaller than the net's coarsest scale, a kernel larger
than its input) raises :class:`ShapeError` naming the layer. Besides the totals the
summary reports, for every Concat layer, the convolutions on each branch feeding it: for
the M-CNN these are the pathways and their kernel maps (624 in the paper).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcnn.caffe import shapes
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError

Shape = tuple[int, ...]


@dataclass
class LayerRow:
    """One layer: its output shape per image, learnable parameters and multiply-adds."""

    name: str
    type: str
    top: str
    shape: Shape
    params: int = 0
    macs: int = 0
    #: Shapes of the layer's learnable blobs in Caffe's order (weights, then bias).
    param_shapes: list[Shape] = field(default_factory=list)


@dataclass
class ConcatBranches:
    """The branches feeding one Concat layer and the convolutions on them."""

    concat: str
    branches: int
    conv_layers: int
    kernel_maps: int
    maps_per_branch: list[int] = field(default_factory=list)


@dataclass
class NetSummary:
    """Rows and totals of :func:`summarize`."""

    name: str
    rows: list[LayerRow]
    concats: list[ConcatBranches]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def caffemodel_bytes(self) -> int:
        """Approximate size of the weights as a caffemodel (float32 per parameter)."""
        return 4 * self.params

    @property
    def conv_layers(self) -> int:
        return sum(r.type == "Convolution" for r in self.rows)

    @property
    def fc_layers(self) -> int:
        return sum(r.type == "InnerProduct" for r in self.rows)

    def format(self) -> str:
        """The table as text (one row per layer, then totals)."""
        headers = ("layer", "type", "output (CxHxW)", "params", "mult-adds")
        body = [(r.name, r.type, "x".join(map(str, r.shape)) if r.shape else "scalar",
                 f"{r.params:,}", f"{r.macs:,}") for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
        align = ("<", "<", "<", ">", ">")

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=True)).rstrip()

        out = [f"Net {self.name!r}", line(headers), line(tuple("-" * w for w in widths))]
        out.extend(line(row) for row in body)
        out.append("")
        out.append(f"Total parameters:      {self.params:,}")
        out.append(f"Total mult-adds/image: {self.macs:,}")
        out.append(f"Convolutional layers:  {self.conv_layers}")
        out.append(f"Fully connected layers: {self.fc_layers}")
        for c in self.concats:
            out.append(
                f"Concat {c.concat!r}: {c.branches} branches, {c.conv_layers} conv layers, "
                f"{c.kernel_maps} kernel maps (per branch: {','.join(map(str, c.maps_per_branch))})"
            )
        return "\n".join(out)


def _count(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def summarize(net: pb.NetParameter, input_shapes: Mapping[str, Shape] | None = None,
              phase: int = pb.TEST) -> NetSummary:
    """Summarise ``net`` for ``phase``.

    ``input_shapes`` gives the per-image shape of blobs produced by Data layers (e.g.
    ``{"data": (3, 1024, 1280)}``); Input layers carry their own shape.
    """
    net = filter_net(net, phase)
    given = dict(input_shapes or {})
    blobs: dict[str, Shape] = {}
    rows: list[LayerRow] = []
    for layer in net.layer:
        rows.append(_layer_row(layer, blobs, given))
    return NetSummary(name=net.name, rows=rows, concats=_concat_branches(net))


def _bottom(layer: pb.LayerParameter, blobs: Mapping[str, Shape], i: int = 0) -> Shape:
    try:
        name = layer.bottom[i]
    except IndexError:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs a bottom blob") from None
    if name not in blobs:
        raise ShapeError(f"layer {layer.name!r}: bottom blob {name!r} is not produced by an earlier layer")
    return blobs[name]


def _spatial(layer: pb.LayerParameter, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"layer {layer.name!r} ({layer.type}) needs a C x H x W input, got {shape}")
    return shape[0], shape[1], shape[2]


def _layer_row(layer: pb.LayerParameter, blobs: dict[str, Shape], given: Mapping[str, Shape]) -> LayerRow:
    t, name = layer.type, layer.name
    params = macs = 0
    param_shapes: list[Shape] = []
    tops = list(layer.top)
    if t == "Input":
        dims = layer.input_param.shape
        if not dims:
            raise ShapeError(f"layer {name!r}: Input layer without input_param.shape")
        out_shapes = [tuple(int(d) for d in (dims[i] if len(dims) > 1 else dims[0]).dim[1:])
                      for i in range(len(tops))]
    elif t in ("Data", "ImageData", "HDF5Data"):
        out_shapes = []
        for top in tops:
            if top in given:
                out_shapes.append(tuple(given[top]))
            elif top == "label":
                out_shapes.append(())
            else:
                raise ShapeError(f"layer {name!r}: the shape of data blob {top!r} must be given")
    elif t == "Convolution":
        c, h, w = _spatial(layer, _bottom(layer, blobs))
        p = layer.convolution_param
        win = shapes.conv_window(p, name)
        oh, ow = shapes.conv_output_hw(win, (h, w), name)
        group = p.group or 1
        if c % group or p.num_output % group:
            raise ShapeError(f"layer {name!r}: group {group} must divide {c} input and {p.num_output} output channels")
        per_out = (c // group) * win.kernel[0] * win.kernel[1]
        param_shapes = [(p.num_output, c // group, *win.kernel)] + ([(p.num_output,)] if p.bias_term else [])
        macs = p.num_output * oh * ow * per_out
        out_shapes = [(p.num_output, oh, ow)]
    elif t == "Pooling":
        c, h, w = _spatial(layer, _bottom(layer, blobs))
        p = layer.pooling_param
        win = shapes.pool_window(p, (h, w), name)
        ceil_mode = p.round_mode == pb.PoolingParameter.CEIL
        out_shapes = [(c, *shapes.pool_output_hw(win, (h, w), name, ceil_mode))]
    elif t == "InnerProduct":
        shape = _bottom(layer, blobs)
        p = layer.inner_product_param
        axis = p.axis - 1 if p.axis > 0 else len(shape) + 1 + p.axis - 1
        k = _count(shape[axis:])
        weight = (k, p.num_output) if p.transpose else (p.num_output, k)
        param_shapes = [weight] + ([(p.num_output,)] if p.bias_term else [])
        macs = k * p.num_output
        out_shapes = [(*shape[:axis], p.num_output)]
    elif t == "Concat":
        parts = [_bottom(layer, blobs, i) for i in range(len(layer.bottom))]
        axis = (layer.concat_param.axis if layer.concat_param.HasField("axis") else 1) - 1
        rest = {p[:axis] + p[axis + 1:] for p in parts}
        if len(rest) != 1:
            raise ShapeError(f"layer {name!r}: Concat inputs differ outside axis {axis + 1}: "
                             + ", ".join("x".join(map(str, p)) for p in parts))
        first = parts[0]
        out_shapes = [(*first[:axis], sum(p[axis] for p in parts), *first[axis + 1:])]
    elif t == "Flatten":
        shape = _bottom(layer, blobs)
        out_shapes = [(_count(shape),)]
    elif t in ("ReLU", "Dropout", "LRN", "Softmax", "Sigmoid", "TanH"):
        out_shapes = [_bottom(layer, blobs)]
    elif t in ("SoftmaxWithLoss", "Accuracy"):
        _bottom(layer, blobs)
        out_shapes = [()] * len(tops)
    else:
        raise ShapeError(f"layer {name!r}: layer type {t!r} is not supported by the summary")
    for top, shape in zip(tops, out_shapes, strict=False):
        blobs[top] = shape
    params = sum(_count(shape) for shape in param_shapes)
    return LayerRow(name=name, type=t, top=tops[0] if tops else "", shape=out_shapes[0] if out_shapes else (),
                    params=params, macs=macs, param_shapes=param_shapes)


def _concat_branches(net: pb.NetParameter) -> list[ConcatBranches]:
    """For each Concat, the Convolution layers that only its i-th input depends on."""
    producer: dict[str, int] = {}
    parents: list[list[int]] = []  # per layer, the producing layer of each bottom, in order
    for i, layer in enumerate(net.layer):
        parents.append([producer[b] for b in layer.bottom if b in producer])
        for top in layer.top:
            producer[top] = i

    def ancestors(index: int) -> set[int]:
        seen: set[int] = set()
        stack = [index]
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.add(j)
                stack.extend(parents[j])
        return seen

    result = []
    for i, layer in enumerate(net.layer):
        if layer.type != "Concat":
            continue
        branch_sets = [ancestors(j) for j in parents[i]]
        maps, convs = [], 0
        for k, own in enumerate(branch_sets):
            others = set().union(*(s for m, s in enumerate(branch_sets) if m != k))
            exclusive = [net.layer[j] for j in sorted(own - others) if net.layer[j].type == "Convolution"]
            convs += len(exclusive)
            maps.append(sum(c.convolution_param.num_output for c in exclusive))
        result.append(ConcatBranches(concat=layer.name, branches=len(branch_sets), conv_layers=convs,
                                     kernel_maps=sum(maps), maps_per_branch=maps))
    return result
