"""The contract of every registered layer type, parametrised over the one table of types.

For each entry of :data:`mcnn.caffe.infer.LAYER_TYPES`: shapes are inferred; a feed type's
tops are net inputs and it has no forward; any other type has an engine forward whose
tops have exactly the inferred shapes, a backward pass (autograd) reaching every float bottom
and learnable blob, and learnable blobs of the inferred shapes filled from the parameter
message the entry names. Statistics blobs (BatchNorm) get no gradient and start at 0; a dynamic
type (Python layers) takes its shapes and initial blobs from the layer itself. A type registered
without an example below fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.infer import LAYER_TYPES, LayerShapes, infer_layer
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.layers import FORWARDS, Layer, make_layer, register
from mcnn.engine.net import Net
from mcnn.errors import McnnError

BATCH = 2
CLASSES = 5


@dataclass(frozen=True)
class Example:
    """A layer of the type under test, the per-image shapes of its bottoms, and what its backward does.

    ``labels``: indices of bottoms holding class labels (integers in 0..CLASSES-1, no gradient).
    ``differentiable``: False where Caffe's Backward is NOT_IMPLEMENTED (Accuracy) or there is
    nothing to differentiate (Silence has no tops, DummyData no inputs).
    """

    layer: str
    bottoms: tuple[tuple[int, ...], ...] = ()
    labels: tuple[int, ...] = ()
    differentiable: bool = True
    data_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()


EXAMPLES = {
    "HDF5Data": Example('name: "d" type: "HDF5Data" top: "data" top: "label" '
                        'hdf5_data_param { source: "unused_list.txt" batch_size: 2 }',
                        data_shapes=(("data", (3, 4)), ("label", (2,)))),
    # its forward writes the file relative to the working folder, which the test makes its tmp_path
    "HDF5Output": Example('name: "t" type: "HDF5Output" bottom: "b0" bottom: "b1" '
                          'hdf5_output_param { file_name: "contract.h5" }',
                          ((3, 2), (2,)), differentiable=False),
    "Input": Example('name: "x" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 4 } }'),
    "Data": Example('name: "d" type: "Data" top: "data" top: "label" '
                    'data_param { source: "unused_lmdb" batch_size: 2 backend: LMDB }',
                    data_shapes=(("data", (3, 6, 6)),)),
    "Convolution": Example('name: "t" type: "Convolution" bottom: "b0" top: "y" '
                           'convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 group: 2 }',
                           ((2, 7, 7),)),
    "Pooling": Example('name: "t" type: "Pooling" bottom: "b0" top: "y" '
                       'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }', ((2, 7, 7),)),
    "ReLU": Example('name: "t" type: "ReLU" bottom: "b0" top: "y" relu_param { negative_slope: 0.1 }', ((3, 4, 4),)),
    "Concat": Example('name: "t" type: "Concat" bottom: "b0" bottom: "b1" top: "y"', ((2, 3, 3), (3, 3, 3))),
    "InnerProduct": Example('name: "t" type: "InnerProduct" bottom: "b0" top: "y" '
                            'inner_product_param { num_output: 5 }', ((2, 3, 3),)),
    "Dropout": Example('name: "t" type: "Dropout" bottom: "b0" top: "y"', ((3, 4),)),
    "LRN": Example('name: "t" type: "LRN" bottom: "b0" top: "y" lrn_param { local_size: 3 }', ((4, 5, 5),)),
    "Flatten": Example('name: "t" type: "Flatten" bottom: "b0" top: "y"', ((2, 3, 4),)),
    "Softmax": Example('name: "t" type: "Softmax" bottom: "b0" top: "y"', ((CLASSES,),)),
    "SoftmaxWithLoss": Example('name: "t" type: "SoftmaxWithLoss" bottom: "b0" bottom: "b1" top: "loss"',
                               ((CLASSES,), ()), labels=(1,)),
    "Accuracy": Example('name: "t" type: "Accuracy" bottom: "b0" bottom: "b1" top: "acc" top: "per_class"',
                        ((CLASSES,), ()), labels=(1,), differentiable=False),
    "Sigmoid": Example('name: "t" type: "Sigmoid" bottom: "b0" top: "y"', ((3, 4),)),
    "TanH": Example('name: "t" type: "TanH" bottom: "b0" top: "y"', ((3, 4),)),
    "Eltwise": Example('name: "t" type: "Eltwise" bottom: "b0" bottom: "b1" top: "y" '
                       'eltwise_param { operation: SUM coeff: 0.5 coeff: -2 }', ((2, 3, 3), (2, 3, 3))),
    "Silence": Example('name: "t" type: "Silence" bottom: "b0"', ((3,),), differentiable=False),
    "Split": Example('name: "t" type: "Split" bottom: "b0" top: "y0" top: "y1"', ((2, 3),)),
    "Reshape": Example('name: "t" type: "Reshape" bottom: "b0" top: "y" '
                       'reshape_param { shape { dim: 0 dim: -1 dim: 4 } }', ((2, 3, 4),)),
    "Scale": Example('name: "t" type: "Scale" bottom: "b0" top: "y" scale_param { bias_term: true }', ((3, 4, 4),)),
    "BatchNorm": Example('name: "t" type: "BatchNorm" bottom: "b0" top: "y"', ((3, 4, 4),)),
    "EuclideanLoss": Example('name: "t" type: "EuclideanLoss" bottom: "b0" bottom: "b1" top: "loss"',
                             ((3,), (3,))),
    "DummyData": Example('name: "t" type: "DummyData" top: "y" '
                         'dummy_data_param { shape { dim: 2 dim: 3 } data_filler { type: "gaussian" } }',
                         differentiable=False),
    "Python": Example('name: "t" type: "Python" bottom: "b0" top: "y" python_param { '
                      'module: "tests.engine.python_layers" layer: "ChannelScale" param_str: "{\\"init\\": 0.5}" }',
                      ((3, 4, 4),)),
}


def example(name: str) -> tuple[Example, pb.LayerParameter]:
    """The example of layer type ``name`` and its LayerParameter; fails if the type has no example."""
    if name not in EXAMPLES:
        pytest.fail(f"layer type {name!r} is registered but has no example in {__name__}.EXAMPLES")
    ex = EXAMPLES[name]
    layer = parse_prototxt(ex.layer, pb.LayerParameter)
    assert layer.type == name
    return ex, layer


def net_around(ex: Example, layer: pb.LayerParameter) -> pb.NetParameter:
    """A net of one Input layer per bottom of ``layer`` (blob ``b<i>``, batch BATCH), then ``layer``."""
    net = pb.NetParameter(name="contract")
    for i, shape in enumerate(ex.bottoms):
        net.layer.add(name=f"in{i}", type="Input", top=[f"b{i}"]).input_param.shape.add(dim=[BATCH, *shape])
    net.layer.add().CopyFrom(layer)
    return net


def feeds_for(ex: Example) -> dict[str, torch.Tensor]:
    """Random float bottoms that require gradients, and valid labels."""
    gen = torch.Generator().manual_seed(0)
    feeds = {}
    for i, shape in enumerate(ex.bottoms):
        if i in ex.labels:
            feeds[f"b{i}"] = torch.randint(0, CLASSES, (BATCH, *shape), generator=gen).float()
        else:
            feeds[f"b{i}"] = torch.randn((BATCH, *shape), generator=gen).requires_grad_()
    return feeds


def shapes_of(ex: Example, layer: pb.LayerParameter) -> LayerShapes:
    """The inferred shapes: from the table's rule, or for a dynamic type from the engine's layer itself."""
    if LAYER_TYPES[layer.type].dynamic:
        with pytest.raises(McnnError, match=f"{layer.name!r}"):
            infer_layer(layer, list(ex.bottoms), dict(ex.data_shapes))
        return make_layer(layer).dynamic_shapes(list(ex.bottoms), pb.TRAIN)
    return infer_layer(layer, list(ex.bottoms), dict(ex.data_shapes))


def full_shapes(inferred: LayerShapes) -> list[tuple[int, ...]]:
    """The tops' tensor shapes: the batch axis first unless the tops reduce the batch."""
    return [(BATCH, *s) if inferred.batch_axis else tuple(s) for s in inferred.tops]


def test_the_engine_implements_exactly_the_non_feed_types() -> None:
    assert sorted(FORWARDS) == sorted(name for name, entry in LAYER_TYPES.items() if not entry.feed)
    assert {"Input", "Data"} <= {name for name, entry in LAYER_TYPES.items() if entry.feed}


def test_every_registered_type_has_an_example() -> None:
    assert sorted(EXAMPLES) == sorted(LAYER_TYPES)


@pytest.mark.parametrize("name", list(LAYER_TYPES))
def test_layer_type_contract(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ex, layer = example(name)
    entry = LAYER_TYPES[name]
    inferred = shapes_of(ex, layer)
    assert len(inferred.tops) == len(layer.top)
    if entry.feed:
        check_feed(ex, layer, inferred)
    else:
        check_forward_backward(ex, layer, inferred)
        check_blobs(ex, layer, inferred)


def check_feed(ex: Example, layer: pb.LayerParameter, inferred: LayerShapes) -> None:
    """A feed's tops are net inputs of the inferred shapes, passed through unchanged; it has no forward."""
    net = Net(net_around(ex, layer), pb.TEST, data_shapes=dict(ex.data_shapes))
    assert net.feeds == list(layer.top)
    assert [net.blob_shapes[t] for t in layer.top] == inferred.tops
    assert not net.learnable() and inferred.params == []
    values = {t: torch.zeros((BATCH, *s)) for t, s in zip(layer.top, inferred.tops, strict=True)}
    blobs = net.forward(values)
    assert all(blobs[t] is values[t] for t in layer.top)
    with pytest.raises(McnnError, match="is a feed"):
        make_layer(layer)


def check_forward_backward(ex: Example, layer: pb.LayerParameter, inferred: LayerShapes) -> None:
    """Forward tops have the inferred shapes; backward reaches every float bottom and learnable blob."""
    net = Net(net_around(ex, layer), pb.TRAIN, generator=torch.Generator().manual_seed(1))
    assert [net.blob_shapes[t] for t in layer.top] == inferred.tops
    feeds = feeds_for(ex)
    blobs = net.forward(feeds, train=True)
    tops = [blobs[t] for t in layer.top]
    assert [tuple(t.shape) for t in tops] == full_shapes(inferred)
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in tops)
    if not ex.differentiable:
        assert not any(t.requires_grad for t in tops)
        return
    for blob in net.learnable():  # non-zero weights, so every input influences the tops
        with torch.no_grad():
            blob.tensor.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    blobs = net.forward(feeds, train=True)
    gen = torch.Generator().manual_seed(3)
    total = sum((blobs[t] * torch.randn(blobs[t].shape, generator=gen)).sum() for t in layer.top)
    total.backward()
    for i, value in feeds.items():
        if value.requires_grad:
            assert value.grad is not None and value.grad.shape == value.shape, i
            assert torch.isfinite(value.grad).all() and value.grad.abs().sum() > 0, i
    for blob in net.learnable():
        grad = blob.tensor.grad
        if LAYER_TYPES[layer.type].statistics:  # updated by the forward, never by gradients (Caffe)
            assert grad is None and blob.lr_mult == 0
        else:
            assert grad is not None and grad.shape == blob.tensor.shape and grad.abs().sum() > 0


def check_blobs(ex: Example, layer: pb.LayerParameter, inferred: LayerShapes) -> None:
    """Learnable blobs have the inferred shapes and take their fillers from the entry's parameter message.

    Without a filler message: a dynamic type's blobs hold what the layer set up, statistics start at
    Caffe's 0, and any other type has no learnable blobs.
    """
    entry = LAYER_TYPES[layer.type]
    if entry.filler_param:
        assert inferred.params
    if not entry.filler_param:
        net = Net(net_around(ex, layer), pb.TEST)
        blobs = net.layer_blobs(layer.name) or []
        assert [tuple(b.tensor.shape) for b in blobs] == inferred.params
        if entry.dynamic:
            impl = next(e.impl for e in net.entries if e.param.name == layer.name)
            assert impl is not None
            for blob, initial in zip(blobs, impl.initial_blobs(), strict=True):
                assert torch.equal(blob.tensor.detach(), initial)
        else:
            assert all(torch.all(b.tensor == 0) for b in blobs)
            assert bool(blobs) == entry.statistics
        return
    filled = pb.LayerParameter()
    filled.CopyFrom(layer)
    fields = getattr(filled, entry.filler_param)
    for name, value in zip(entry.filler_fields, (0.25, 0.5), strict=False):
        getattr(fields, name).CopyFrom(pb.FillerParameter(type="constant", value=value))
    blobs = Net(net_around(ex, filled), pb.TEST).layer_blobs(layer.name)
    assert blobs is not None
    assert [tuple(b.tensor.shape) for b in blobs] == inferred.params
    assert [entry.fillers(filled, i).value for i in range(len(blobs))] == [0.25, 0.5][:len(blobs)]
    for blob, value in zip(blobs, (0.25, 0.5), strict=False):
        assert torch.all(blob.tensor == value)


def test_a_forward_for_an_unregistered_type_is_refused() -> None:
    odd = type("Frobnicate", (Layer,), {"type": "Frobnicate"})
    with pytest.raises(ValueError, match="Frobnicate"):
        register(odd)
    feed = type("InputForward", (Layer,), {"type": "Input"})
    with pytest.raises(ValueError, match="Input"):
        register(feed)
    twice = type("ReLUAgain", (Layer,), {"type": "ReLU"})
    with pytest.raises(ValueError, match="two forward implementations"):
        register(twice)
    assert FORWARDS["ReLU"].__name__ == "ReLU"


def test_an_unregistered_type_is_refused_naming_the_layer_and_the_supported_types() -> None:
    with pytest.raises(McnnError, match=r"'odd'.*'Frobnicate' is not supported; supported: .*Convolution"):
        infer_layer(pb.LayerParameter(name="odd", type="Frobnicate"), [(1, 2, 2)])
    with pytest.raises(McnnError, match="'odd'"):
        make_layer(pb.LayerParameter(name="odd", type="Frobnicate"))
