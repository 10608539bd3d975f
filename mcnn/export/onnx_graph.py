"""A Caffe net as an ONNX graph, layer by layer, computing what Caffe computes.

Each supported layer type has one converter that emits ONNX nodes with unambiguous semantics.
Where ONNX operators and runtimes disagree with Caffe, the converter spells Caffe's rule out:

- Pooling (src/caffe/layers/pooling_layer.cpp) rounds its output size up and clips the last
  window at the border. ONNX's ``ceil_mode`` is not used: the exact Caffe output size
  (:func:`mcnn.caffe.shapes.pool_output_hw`) is reached with explicit, asymmetric padding and
  floor rounding. MAX pools with ONNX's pads (which never win a maximum, as Caffe's clipped
  windows). AVE pads the input with zeros explicitly and rescales each output by
  ``kh*kw / divisor``, with Caffe's divisor: the window clipped at input + pad, not at the input
  and not the full kernel.
- LRN across channels is ONNX's LRN (same ``alpha/size`` convention and centred window for
  Caffe's odd sizes, src/caffe/layers/lrn_layer.cpp); within a channel it is Caffe's own
  decomposition: 1 + alpha * (average of x² over the window, zero-padded), to the power -beta.

The graph has one input per input blob and a dynamic batch axis ``N``; its outputs are named
after the blobs they come from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from mcnn.caffe import shapes
from mcnn.caffe.infer import Shape, concat_axis, infer_layer
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net
from mcnn.errors import ExportError

BATCH = "N"


@dataclass
class Step:
    """One layer being converted: its ONNX input/output value names and per-image shapes, its blobs."""

    layer: pb.LayerParameter
    inputs: list[str]
    shapes: list[Shape]
    blobs: list[np.ndarray]
    outputs: list[str]
    top_shapes: list[Shape]

    @property
    def name(self) -> str:
        """The Caffe layer name."""
        return self.layer.name


class GraphBuilder:
    """Collects the nodes and initializers of the graph and the ONNX value bound to each blob name.

    Caffe's in-place layers rebind a blob name; ONNX values are assigned once, so every binding
    gets its own value, and the last binding of each blob carries the blob's plain name (so the
    graph outputs are named after their blobs).
    """

    def __init__(self, net: Net):
        self.net = net
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[tuple[str, np.ndarray]] = []
        self.values: dict[str, str] = {}
        self.shapes: dict[str, Shape] = {}
        self._taken: set[str] = set()
        self._left: Counter[str] = Counter(net.feeds)
        for entry in net.entries:
            if entry.impl is not None:
                self._left.update(entry.tops)

    def forget(self, tops: list[str]) -> None:
        """Layers left out of the graph: their bindings no longer count towards the last one."""
        self._left.subtract(tops)

    def unique(self, name: str) -> str:
        """``name``, or ``name`` with a numeric suffix if a value of that name exists."""
        candidate, i = name, 1
        while candidate in self._taken:
            candidate, i = f"{name}_{i}", i + 1
        self._taken.add(candidate)
        return candidate

    def bind(self, blob: str, producer: str, shape: Shape, plain: bool = False) -> str:
        """A new value for ``blob`` (per-image ``shape``) produced by layer ``producer``; its name.

        ``plain`` (graph inputs) asks for the blob's own name whatever binds it later.
        """
        self._left[blob] -= 1
        plain = (plain or self._left[blob] <= 0) and blob not in self._taken
        name = self.unique(blob if plain else f"{blob}/{producer}")
        self.values[blob], self.shapes[blob] = name, tuple(shape)
        return name

    def constant(self, owner: str, what: str, array: np.ndarray | float | list[int]) -> str:
        """An initializer ``owner/what`` holding ``array`` (float32, or int64 for index lists); its name."""
        value = np.asarray(array)
        value = np.asarray(value, np.int64 if value.dtype.kind in "iu" else np.float32)
        name = self.unique(f"{owner}/{what}")
        self.initializers.append((name, value))
        return name

    def fill(self, graph: onnx.GraphProto) -> None:
        """Add the initializers to ``graph``, each array copied once (AlexNet's weights are 100s of MB)."""
        for name, value in self.initializers:
            tensor = graph.initializer.add()
            tensor.name = name
            tensor.data_type = TensorProto.INT64 if value.dtype == np.int64 else TensorProto.FLOAT
            tensor.dims.extend(value.shape)
            tensor.raw_data = np.ascontiguousarray(value).astype("<" + value.dtype.str[1:], copy=False).tobytes()

    def temp(self, owner: str, what: str) -> str:
        """The name of an intermediate value of layer ``owner``."""
        return self.unique(f"{owner}/{what}")

    def add(self, op: str, inputs: list[str], outputs: list[str], owner: str, **attrs: object) -> None:
        """Append one ONNX node of type ``op`` named after the Caffe layer ``owner``."""
        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.unique(f"{owner}:{op}"), **attrs))


Converter = Callable[[GraphBuilder, Step], None]

#: The converter of each Caffe type the exporter can express.
CONVERTERS: dict[str, Converter] = {}


def converts(*types: str) -> Callable[[Converter], Converter]:
    """Register the decorated function as the converter of the Caffe layer ``types``."""
    def register(fn: Converter) -> Converter:
        for name in types:
            CONVERTERS[name] = fn
        return fn
    return register


@converts("Convolution")
def _convolution(g: GraphBuilder, s: Step) -> None:
    """Conv with Caffe's symmetric pads, strides, dilations and groups; weights (O, C/g, kh, kw)."""
    p = s.layer.convolution_param
    w = shapes.conv_window(p, s.name)
    inputs = [s.inputs[0], g.constant(s.name, "weight", s.blobs[0])]
    if len(s.blobs) > 1:
        inputs.append(g.constant(s.name, "bias", s.blobs[1]))
    g.add("Conv", inputs, s.outputs[:1], s.name, kernel_shape=list(w.kernel), strides=list(w.stride),
          pads=[w.pad[0], w.pad[1], w.pad[0], w.pad[1]], dilations=list(w.dilation), group=p.group or 1)


def _pool_geometry(s: Step) -> tuple[shapes.Window2d, tuple[int, int], tuple[int, int]]:
    """The window, Caffe's output size and the extra bottom/right padding that floor rounding needs."""
    p = s.layer.pooling_param
    hw = (s.shapes[0][1], s.shapes[0][2])
    w = shapes.pool_window(p, hw, s.name)
    out = shapes.pool_output_hw(w, hw, s.name, p.round_mode == pb.PoolingParameter.CEIL)
    extra = tuple(max(0, (out[i] - 1) * w.stride[i] + w.kernel[i] - (hw[i] + 2 * w.pad[i])) for i in range(2))
    for i in range(2):  # floor((size + pads - k) / s) + 1 must give Caffe's size
        if (hw[i] + 2 * w.pad[i] + extra[i] - w.kernel[i]) // w.stride[i] + 1 != out[i]:
            raise AssertionError(f"layer {s.name!r}: pooling geometry {w} on {hw} does not give {out}")
    return w, out, (extra[0], extra[1])


def ave_divisors(size: int, kernel: int, stride: int, pad: int, out: int) -> np.ndarray:
    """Caffe's AVE divisor of each output position along one axis: the window clipped at size + pad."""
    starts = np.arange(out) * stride - pad
    return (np.minimum(starts + kernel, size + pad) - starts).astype(np.float64)


@converts("Pooling")
def _pooling(g: GraphBuilder, s: Step) -> None:
    """MAX or AVE pooling with Caffe's output size and border windows (module docstring)."""
    p = s.layer.pooling_param
    if p.pool not in (pb.PoolingParameter.MAX, pb.PoolingParameter.AVE):
        raise ExportError(f"{g.net.source}: layer {s.name!r}: only MAX and AVE pooling can be exported")
    w, out, extra = _pool_geometry(s)
    window = {"kernel_shape": list(w.kernel), "strides": list(w.stride)}
    if p.pool == pb.PoolingParameter.MAX:
        g.add("MaxPool", s.inputs[:1], s.outputs[:1], s.name,
              pads=[w.pad[0], w.pad[1], w.pad[0] + extra[0], w.pad[1] + extra[1]], **window)
        return
    x = s.inputs[0]
    if any(w.pad) or any(extra):
        padded = g.temp(s.name, "padded")
        pads = [0, 0, w.pad[0], w.pad[1], 0, 0, w.pad[0] + extra[0], w.pad[1] + extra[1]]
        g.add("Pad", [x, g.constant(s.name, "pads", pads)], [padded], s.name, mode="constant")
        x = padded
    size = (s.shapes[0][1], s.shapes[0][2])
    div = [ave_divisors(size[i], w.kernel[i], w.stride[i], w.pad[i], out[i]) for i in range(2)]
    area = w.kernel[0] * w.kernel[1]
    rescale = area / (div[0][:, None] * div[1][None, :])
    if np.all(rescale == 1.0):
        g.add("AveragePool", [x], s.outputs[:1], s.name, **window)
        return
    mean = g.temp(s.name, "mean_over_kernel")
    g.add("AveragePool", [x], [mean], s.name, **window)
    g.add("Mul", [mean, g.constant(s.name, "caffe_divisor", rescale[None, None])], s.outputs[:1], s.name)


@converts("LRN")
def _lrn(g: GraphBuilder, s: Step) -> None:
    """Caffe's LRN (module docstring): ONNX LRN across channels, Caffe's decomposition within a channel."""
    p = s.layer.lrn_param
    x = s.inputs[0]
    if p.norm_region == pb.LRNParameter.ACROSS_CHANNELS:
        g.add("LRN", [x], s.outputs[:1], s.name, size=p.local_size, alpha=p.alpha, beta=p.beta, bias=p.k)
        return
    pad = (p.local_size - 1) // 2
    square, mean, scale = g.temp(s.name, "square"), g.temp(s.name, "mean_square"), g.temp(s.name, "scale")
    g.add("Mul", [x, x], [square], s.name)
    g.add("AveragePool", [square], [mean], s.name, kernel_shape=[p.local_size] * 2, strides=[1, 1],
          pads=[pad] * 4, count_include_pad=1)
    shifted, power = g.temp(s.name, "shifted"), g.temp(s.name, "power")
    g.add("Mul", [mean, g.constant(s.name, "alpha", p.alpha)], [scale], s.name)
    g.add("Add", [scale, g.constant(s.name, "one", 1.0)], [shifted], s.name)
    g.add("Pow", [shifted, g.constant(s.name, "minus_beta", -p.beta)], [power], s.name)
    g.add("Mul", [x, power], s.outputs[:1], s.name)


@converts("ReLU")
def _relu(g: GraphBuilder, s: Step) -> None:
    """Relu, or LeakyRelu with Caffe's ``negative_slope``."""
    slope = s.layer.relu_param.negative_slope
    if slope:
        g.add("LeakyRelu", s.inputs[:1], s.outputs[:1], s.name, alpha=slope)
    else:
        g.add("Relu", s.inputs[:1], s.outputs[:1], s.name)


@converts("Sigmoid", "TanH", "Dropout", "Split")
def _elementwise(g: GraphBuilder, s: Step) -> None:
    """Sigmoid, Tanh; Dropout is the identity in TEST (Caffe scales at training time); Split copies."""
    op = {"Sigmoid": "Sigmoid", "TanH": "Tanh"}.get(s.layer.type, "Identity")
    for out in s.outputs:
        g.add(op, s.inputs[:1], [out], s.name)


@converts("Silence")
def _silence(g: GraphBuilder, s: Step) -> None:
    """No tops, nothing to compute."""


@converts("Concat")
def _concat(g: GraphBuilder, s: Step) -> None:
    """Concat along Caffe's axis (``concat_dim`` honoured)."""
    g.add("Concat", s.inputs, s.outputs[:1], s.name, axis=concat_axis(s.layer.concat_param))


@converts("Softmax")
def _softmax(g: GraphBuilder, s: Step) -> None:
    """Softmax along ``softmax_param.axis`` (opset >= 13: one axis, as Caffe)."""
    g.add("Softmax", s.inputs[:1], s.outputs[:1], s.name, axis=s.layer.softmax_param.axis)


def reshape(g: GraphBuilder, s: Step, x: str, dims: list[int], out: str, what: str = "shape") -> None:
    """Reshape ``x`` to ``dims`` (0 keeps the axis, -1 is inferred) into ``out``."""
    g.add("Reshape", [x, g.constant(s.name, what, dims)], [out], s.name)


@converts("InnerProduct")
def _inner_product(g: GraphBuilder, s: Step) -> None:
    """Gemm (or MatMul + Add past axis 1) on the bottom flattened from ``axis``; weights (O, K) or (K, O)."""
    p = s.layer.inner_product_param
    ndim = len(s.shapes[0]) + 1
    axis = p.axis if p.axis >= 0 else p.axis + ndim
    x = s.inputs[0]
    if axis != ndim - 1:
        flat = g.temp(s.name, "flat")
        reshape(g, s, x, [0] * axis + [-1], flat)
        x = flat
    if axis == 1:  # Gemm reads Caffe's (O, K) weights as they are (transB), no transposed copy
        inputs = [x, g.constant(s.name, "weight", s.blobs[0])] + (
            [g.constant(s.name, "bias", s.blobs[1])] if len(s.blobs) > 1 else [])
        g.add("Gemm", inputs, s.outputs[:1], s.name, transB=0 if p.transpose else 1)
        return
    weight = s.blobs[0] if p.transpose else s.blobs[0].T  # (K, O)
    if len(s.blobs) == 1:
        g.add("MatMul", [x, g.constant(s.name, "weight", weight)], s.outputs[:1], s.name)
        return
    product = g.temp(s.name, "product")
    g.add("MatMul", [x, g.constant(s.name, "weight", weight)], [product], s.name)
    g.add("Add", [product, g.constant(s.name, "bias", s.blobs[1])], s.outputs[:1], s.name)


@converts("Flatten")
def _flatten(g: GraphBuilder, s: Step) -> None:
    """Reshape: the axes before ``axis`` kept, ``axis`` .. ``end_axis`` merged, the later ones given."""
    p = s.layer.flatten_param
    full = (-1, *s.shapes[0])
    start = p.axis if p.axis >= 0 else p.axis + len(full)
    end = p.end_axis if p.end_axis >= 0 else p.end_axis + len(full)
    reshape(g, s, s.inputs[0], [0] * start + [-1] + [int(d) for d in full[end + 1:]], s.outputs[0])


def _tensor(name: str, shape: Shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, *(int(d) for d in shape)])


def needed_layers(net: Net, outputs: list[str]) -> set[int]:
    """Indices into ``net.entries`` of the layers the blobs ``outputs`` depend on (the graph is pruned to them)."""
    needed, keep = set(outputs), set()
    for i in range(len(net.entries) - 1, -1, -1):
        entry = net.entries[i]
        if entry.impl is not None and needed & set(entry.tops):
            keep.add(i)
            needed -= set(entry.tops)
            needed |= set(entry.bottoms)
    return keep


def build_graph(net: Net, outputs: list[str]) -> tuple[onnx.GraphProto, dict[str, str], GraphBuilder]:
    """The ONNX graph of ``net`` with graph outputs for the blobs ``outputs``.

    Only the layers the outputs depend on are converted (``--outputs pool5`` leaves the
    classifier out); every input blob stays a graph input. Returns the graph and, per output
    blob, the name of its ONNX output (the blob's own name unless an input blob is rebound in
    place), and the builder, whose :meth:`GraphBuilder.fill` adds the initializers (call it on
    the model's own graph: protobuf copies a graph it is given). :class:`ExportError` names a
    layer no converter handles.
    """
    g = GraphBuilder(net)
    keep = needed_layers(net, outputs)
    for i, entry in enumerate(net.entries):
        if entry.impl is not None and i not in keep:
            g.forget(entry.tops)
    inputs = [_tensor(g.bind(name, "input", net.blob_shapes[name], plain=True), net.blob_shapes[name])
              for name in net.feeds]
    for i, entry in enumerate(net.entries):
        if i not in keep:
            continue
        layer = entry.param
        convert = CONVERTERS.get(layer.type)
        if convert is None:
            raise ExportError(f"{net.source}: layer {layer.name!r}: type {layer.type!r} cannot be expressed in ONNX "
                              f"by this exporter (it handles {', '.join(sorted(CONVERTERS))})")
        bottom_shapes = [g.shapes[b] for b in entry.bottoms]
        bottoms = [g.values[b] for b in entry.bottoms]
        tops = infer_layer(layer, bottom_shapes).tops
        blobs = [b.tensor.detach().cpu().numpy() for b in entry.blobs]
        step = Step(layer, bottoms, bottom_shapes, blobs,
                    [g.bind(top, layer.name, shape) for top, shape in zip(entry.tops, tops, strict=False)], tops)
        convert(g, step)
    names = {blob: g.values[blob] for blob in outputs}
    graph = helper.make_graph(g.nodes, net.name or "net", inputs, [_tensor(names[b], g.shapes[b]) for b in outputs])
    return graph, names, g


# The converters of the further types (Reshape, Eltwise, Scale, BatchNorm) register here too.
from mcnn.export import onnx_layers_extra  # noqa: E402, F401
