"""Per-layer summary of a Caffe net: output shapes by Caffe's rules, parameters, multiply-adds.

Shapes are computed per image (batch 1) with :mod:`mcnn.caffe.shapes`, so a layer that
cannot take its input (an image smaller than the net's coarsest scale, a kernel larger
than its input) raises :class:`ShapeError` naming the layer. Besides the totals the
summary reports, for every Concat layer, the convolutions on each branch feeding it: for
the M-CNN these are the pathways and their kernel maps (624 in the paper).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from mcnn.caffe.infer import Shape, infer_layer
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ShapeError


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
        """Learnable parameters of the whole net."""
        return sum(r.params for r in self.rows)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one forward pass of one image."""
        return sum(r.macs for r in self.rows)

    @property
    def caffemodel_bytes(self) -> int:
        """Approximate size of the weights as a caffemodel (float32 per parameter)."""
        return 4 * self.params

    @property
    def conv_layers(self) -> int:
        """Number of Convolution layers."""
        return sum(r.type == "Convolution" for r in self.rows)

    @property
    def fc_layers(self) -> int:
        """Number of InnerProduct (fully connected) layers."""
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


def _layer_row(layer: pb.LayerParameter, blobs: dict[str, Shape], given: Mapping[str, Shape]) -> LayerRow:
    bottoms = []
    for name in layer.bottom:
        if name not in blobs:
            raise ShapeError(f"layer {layer.name!r}: bottom blob {name!r} is not produced by an earlier layer")
        bottoms.append(blobs[name])
    inferred = infer_layer(layer, bottoms, dict(given))
    for top, shape in zip(layer.top, inferred.tops, strict=False):
        blobs[top] = shape
    return LayerRow(name=layer.name, type=layer.type, top=layer.top[0] if layer.top else "",
                    shape=inferred.tops[0] if inferred.tops else (),
                    params=sum(math.prod(s) for s in inferred.params), macs=inferred.macs,
                    param_shapes=inferred.params)


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
