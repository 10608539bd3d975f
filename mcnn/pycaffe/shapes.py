"""Caffe's full blob shapes (batch axis included) for an engine net, whose shape rules are per image.

The batch size of a blob comes from where its data enters the net: an Input layer's shape, a
Data layer's ``batch_size``, a DummyData shape, or the first bottom of the layer that makes
it. Tops that reduce the batch (losses, accuracy) keep the shape the rule gives. Python layers'
shapes come from running them (their ``reshape``), so :func:`reinfer` keeps what the last pass gave.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcnn.caffe.infer import Shape, infer_layer, layer_type
from mcnn.caffe.infer_extra import dummy_shapes
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net as EngineNet
from mcnn.engine.net import _Entry
from mcnn.errors import ShapeError


def legacy_input_shapes(param: pb.NetParameter) -> dict[str, Shape]:
    """Full shapes of the deprecated net-level ``input`` blobs (``input_shape`` or ``input_dim``)."""
    shapes: dict[str, Shape] = {}
    dims = list(param.input_dim)
    for i, name in enumerate(param.input):
        if i < len(param.input_shape):
            shapes[name] = tuple(int(d) for d in param.input_shape[i].dim)
        else:
            shapes[name] = tuple(int(d) for d in dims[4 * i:4 * i + 4])
    return shapes


def _pick(repeated: object, index: int) -> object:
    """Caffe's rule for per-top fields: one value serves every top, else one per top."""
    items = list(repeated)  # type: ignore[call-overload]
    return items[index] if len(items) > 1 else items[0]


def source_shape(entry: _Entry, index: int) -> Shape | None:
    """The full shape a layer without bottoms gives its top ``index`` (Input, DummyData), if it says."""
    layer = entry.param
    if layer.type == "Input" and len(layer.input_param.shape):
        return tuple(int(d) for d in _pick(layer.input_param.shape, index).dim)  # type: ignore[attr-defined]
    if layer.type == "DummyData":
        return dummy_shapes(layer)[index]
    views = getattr(entry.impl, "top_views", None)  # a Python layer: the shapes its reshape() gave
    if layer_type(layer).dynamic and views is not None and index < len(views):
        return tuple(views[index].shape)
    return None


def _source_batch(entry: _Entry, index: int) -> int:
    """The batch size of top ``index`` of a layer that has no bottoms."""
    layer = entry.param
    if layer.type == "Data":
        return int(layer.data_param.batch_size)
    if layer.type == "HDF5Data":
        return int(layer.hdf5_data_param.batch_size)
    shape = source_shape(entry, index)
    return shape[0] if shape else 1


def full_shapes(engine: EngineNet, per_image: Mapping[str, Shape], inputs: Mapping[str, Shape]) -> dict[str, Shape]:
    """Full shape of every blob from per-image shapes, given the full shapes of the net's input blobs."""
    shapes: dict[str, Shape] = dict(inputs)
    batch = {name: (shape[0] if shape else 1) for name, shape in inputs.items()}
    for entry in engine.entries:
        for i, top in enumerate(entry.tops):
            if top in inputs and entry.param.type == "Input":
                continue
            n = batch.get(entry.bottoms[0], 1) if entry.bottoms else _source_batch(entry, i)
            shape = tuple(per_image[top]) if top in per_image else ()
            shapes[top] = (n, *shape) if entry.batch_axis else shape
            batch[top] = n
    return shapes


def reinfer(engine: EngineNet, inputs: Mapping[str, Shape], data_shapes: Mapping[str, Shape]) -> dict[str, Shape]:
    """Caffe's Net::Reshape: every blob's full shape for new input shapes, checked layer by layer.

    Updates the engine's per-image shapes; :class:`ShapeError` naming the layer when a shape no
    longer fits, including learnable blobs whose shape would have to change.
    """
    per_image: dict[str, Shape] = {name: tuple(shape[1:]) for name, shape in inputs.items()}
    for entry in engine.entries:
        layer = entry.param
        if layer.type == "Input":
            continue
        if layer_type(layer).dynamic:  # only running the layer tells (Caffe's Reshape calls its reshape())
            per_image.update({top: engine.blob_shapes[top] for top in entry.tops})
            continue
        inferred = infer_layer(layer, [per_image[b] for b in entry.bottoms], dict(data_shapes))
        for j, (blob, shape) in enumerate(zip(entry.blobs, inferred.params, strict=False)):
            if tuple(blob.tensor.shape) != tuple(shape):
                raise ShapeError(f"{engine.source}: layer {layer.name!r}: for these input shapes blob {j} would "
                                 f"need shape {tuple(shape)}, the net's is {tuple(blob.tensor.shape)}")
        entry.batch_axis = inferred.batch_axis
        for top, shape in zip(entry.tops, inferred.tops, strict=False):
            per_image[top] = tuple(shape)
    engine.blob_shapes.update(per_image)
    return full_shapes(engine, per_image, inputs)
