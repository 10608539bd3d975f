"""ONNX converters of the further Caffe layer types (src/caffe/layers/*_layer.cpp): Reshape, Eltwise,
Scale and BatchNorm, registered into :data:`mcnn.export.onnx_graph.CONVERTERS`."""

from __future__ import annotations

import numpy as np

from mcnn.caffe.infer_extra import scale_shape
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ExportError
from mcnn.export.onnx_graph import GraphBuilder, Step, converts, reshape


@converts("Reshape")
def _caffe_reshape(g: GraphBuilder, s: Step) -> None:
    """Reshape to the batch axis and the inferred per-image top shape (the shape rule keeps the batch)."""
    reshape(g, s, s.inputs[0], [0, *(int(d) for d in s.top_shapes[0])], s.outputs[0])


@converts("Eltwise")
def _eltwise(g: GraphBuilder, s: Step) -> None:
    """PROD: Mul; SUM: Sum of the bottoms times their ``coeff``; MAX: Max (a tie has one value)."""
    p = s.layer.eltwise_param
    if p.operation == pb.EltwiseParameter.PROD:
        acc = s.inputs[0]
        for i, x in enumerate(s.inputs[1:], start=1):
            out = s.outputs[0] if i == len(s.inputs) - 1 else g.temp(s.name, f"product{i}")
            g.add("Mul", [acc, x], [out], s.name)
            acc = out
        return
    if p.operation == pb.EltwiseParameter.MAX:
        g.add("Max", s.inputs, s.outputs[:1], s.name)
        return
    coeff = list(p.coeff) or [1.0] * len(s.inputs)
    terms = []
    for i, (c, x) in enumerate(zip(coeff, s.inputs, strict=True)):
        if c == 1.0:
            terms.append(x)
            continue
        term = g.temp(s.name, f"term{i}")
        g.add("Mul", [x, g.constant(s.name, f"coeff{i}", c)], [term], s.name)
        terms.append(term)
    g.add("Sum", terms, s.outputs[:1], s.name)


@converts("Scale")
def _scale(g: GraphBuilder, s: Step) -> None:
    """Mul by the learned scale (and Add the bias), or by bottom 1 (axis 0), broadcast from ``axis``."""
    x = s.inputs[0]
    ndim = len(s.shapes[0]) + 1
    if len(s.inputs) > 1:
        lead = [int(d) for d in s.shapes[1]]
        factor = g.temp(s.name, "scale")
        reshape(g, s, s.inputs[1], [0, *lead] + [1] * (ndim - 1 - len(lead)), factor)
        g.add("Mul", [x, factor], s.outputs[:1], s.name)
        return
    p = s.layer.scale_param
    axis = p.axis if p.axis >= 0 else p.axis + ndim
    shape = tuple(scale_shape(s.layer, (1, *s.shapes[0])))
    trailing = (1,) * (ndim - axis - len(shape))
    scale = g.constant(s.name, "scale", s.blobs[0].reshape(shape + trailing))
    if len(s.blobs) == 1:
        g.add("Mul", [x, scale], s.outputs[:1], s.name)
        return
    scaled = g.temp(s.name, "scaled")
    g.add("Mul", [x, scale], [scaled], s.name)
    g.add("Add", [scaled, g.constant(s.name, "bias", s.blobs[1].reshape(shape + trailing))], s.outputs[:1], s.name)


@converts("BatchNorm")
def _batch_norm(g: GraphBuilder, s: Step) -> None:
    """(x - mean) / sqrt(var + eps) per channel with the stored statistics (divided by blob 2's factor)."""
    p = s.layer.batch_norm_param
    if p.HasField("use_global_stats") and not p.use_global_stats:
        raise ExportError(f"{g.net.source}: layer {s.name!r}: BatchNorm with use_global_stats: false normalises "
                          "by each batch's statistics; only stored statistics can be exported")
    factor = float(s.blobs[2].reshape(-1)[0])
    scale = 0.0 if factor == 0 else 1.0 / factor
    per_image = s.shapes[0]
    broadcast = (-1,) + (1,) * max(0, len(per_image) - 1) if per_image else (1,)
    mean = (s.blobs[0].astype(np.float32) * np.float32(scale)).reshape(broadcast)
    std = np.sqrt((s.blobs[1].astype(np.float32) * np.float32(scale)) + np.float32(p.eps)).reshape(broadcast)
    centred = g.temp(s.name, "centred")
    g.add("Sub", [s.inputs[0], g.constant(s.name, "mean", mean)], [centred], s.name)
    g.add("Div", [centred, g.constant(s.name, "std", std)], s.outputs[:1], s.name)
