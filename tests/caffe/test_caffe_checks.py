"""Configurations Caffe computes or refuses, against the shape rules (issue 13 items 11 and 13).

The reference functions below restate what Caffe's LayerSetUp/Reshape do (src/caffe/layers/
conv_layer.cpp + base_conv_layer.cpp, pooling_layer.cpp, concat_layer.cpp, softmax_layer.cpp,
flatten_layer.cpp, inner_product_layer.cpp; Blob::CanonicalAxisIndex in blob.hpp): the full top
shape (batch included) or None where a CHECK fails. A seeded fuzz draws layer parameters and
compares them with :func:`mcnn.caffe.infer.infer_layer`; every disagreement must be one of the
documented ones (:data:`DOCUMENTED`).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
from mcnn.caffe.infer import infer_layer
from mcnn.caffe.solver_rules import check_solver
from mcnn.engine.data import DataFeed
from mcnn.engine.net import Net
from mcnn.engine.solver import Updater, solver_nets
from mcnn.errors import ConfigError, ShapeError

N = 2  # the batch of the fuzzed blobs
Full = tuple[int, ...]


# -- Caffe's rules, restated -------------------------------------------------------------------------

def canonical(axis: int, ndim: int) -> int | None:
    return axis % ndim if -ndim <= axis < ndim else None


def caffe_conv(p: dict, bottom: Full) -> Full | None:
    n, c, h, w = bottom
    if min(p["kernel"]) <= 0 or min(p["stride"]) <= 0 or c % p["group"] or p["num_output"] % p["group"]:
        return None
    out = []
    for size, k, s, pad, d in zip((h, w), p["kernel"], p["stride"], p["pad"], p["dilation"], strict=True):
        extent = d * (k - 1) + 1
        out.append(int((size + 2 * pad - extent) / s) + 1)  # C++ int division truncates toward zero
    return (n, p["num_output"], *out)


def caffe_pool(p: dict, bottom: Full) -> Full | None:
    n, c, h, w = bottom
    kernel, stride, pad = ((h, w), (1, 1), (0, 0)) if p["global"] else (p["kernel"], p["stride"], p["pad"])
    if p["global"] and (p["stride"] != (1, 1) or p["pad"] != (0, 0)):
        return None
    if min(kernel) <= 0 or any(pd >= k for pd, k in zip(pad, kernel, strict=True)):
        return None
    out = []
    for size, k, s, pd in zip((h, w), kernel, stride, pad, strict=True):
        o = math.ceil((size + 2 * pd - k) / s) + 1
        if pd and (o - 1) * s >= size + pd:
            o -= 1
        out.append(o)
    return (n, c, *out)


def caffe_concat(axis: int, bottoms: list[Full]) -> Full | None:
    a = canonical(axis, len(bottoms[0]))
    if a is None or any(len(b) != len(bottoms[0]) for b in bottoms):
        return None
    if any(b[:a] + b[a + 1:] != bottoms[0][:a] + bottoms[0][a + 1:] for b in bottoms):
        return None
    return (*bottoms[0][:a], sum(b[a] for b in bottoms), *bottoms[0][a + 1:])


def caffe_softmax(axis: int, bottom: Full) -> Full | None:
    return bottom if canonical(axis, len(bottom)) is not None else None


def caffe_flatten(axis: int, end: int, bottom: Full) -> Full | None:
    a, e = canonical(axis, len(bottom)), canonical(end, len(bottom))
    if a is None or e is None or e + 1 < a:  # Blob::count's CHECK_LE(start, end + 1)
        return None
    return (*bottom[:a], math.prod(bottom[a:e + 1]), *bottom[e + 1:])


def caffe_ip(axis: int, num_output: int, bottom: Full) -> Full | None:
    a = canonical(axis, len(bottom))
    return None if a is None else (*bottom[:a], num_output)


# -- drawing ---------------------------------------------------------------------------------------

def _pair(rng: random.Random, low: int, high: int) -> tuple[int, int]:
    v = rng.randint(low, high)
    return (v, v) if rng.random() < 0.7 else (v, rng.randint(low, high))


def draw_conv(rng: random.Random) -> tuple[pb.LayerParameter, list[Full], Full | None]:
    p = {"kernel": _pair(rng, 1, 4), "stride": _pair(rng, 0 if rng.random() < 0.1 else 1, 3),
         "pad": _pair(rng, 0, 2), "dilation": (rng.randint(1, 2),) * 2, "group": rng.randint(1, 3),
         "num_output": rng.randint(1, 6)}
    bottom = (N, rng.randint(1, 6), rng.randint(1, 9), rng.randint(1, 9))
    cp = pb.ConvolutionParameter(num_output=p["num_output"], group=p["group"], kernel_h=p["kernel"][0],
                                 kernel_w=p["kernel"][1], stride_h=p["stride"][0], stride_w=p["stride"][1],
                                 pad_h=p["pad"][0], pad_w=p["pad"][1], dilation=[p["dilation"][0]])
    layer = pb.LayerParameter(name="conv", type="Convolution", bottom=["x"], top=["y"], convolution_param=cp)
    return layer, [bottom], caffe_conv(p, bottom)


def draw_pool(rng: random.Random) -> tuple[pb.LayerParameter, list[Full], Full | None]:
    p = {"global": rng.random() < 0.2, "kernel": _pair(rng, 1, 5), "stride": _pair(rng, 1, 3), "pad": _pair(rng, 0, 2)}
    bottom = (N, rng.randint(1, 4), rng.randint(1, 9), rng.randint(1, 9))
    pp = pb.PoolingParameter(pool=rng.choice([pb.PoolingParameter.MAX, pb.PoolingParameter.AVE]),
                             stride_h=p["stride"][0], stride_w=p["stride"][1], pad_h=p["pad"][0], pad_w=p["pad"][1])
    if p["global"]:
        pp.global_pooling = True
    else:
        pp.kernel_h, pp.kernel_w = p["kernel"]
    layer = pb.LayerParameter(name="pool", type="Pooling", bottom=["x"], top=["y"], pooling_param=pp)
    return layer, [bottom], caffe_pool(p, bottom)


def draw_concat(rng: random.Random) -> tuple[pb.LayerParameter, list[Full], Full | None]:
    axis = rng.randint(-5, 4)
    base = [N, rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 3)]
    bottoms = []
    for _ in range(rng.randint(2, 3)):
        shape = list(base)
        # a net's blobs share one batch size, except what an axis-0 Concat joins
        shape[rng.randint(0 if axis in (0, -4) else 1, 3)] = rng.randint(1, 3)
        bottoms.append(tuple(shape))
    layer = pb.LayerParameter(name="cat", type="Concat", bottom=[f"x{i}" for i in range(len(bottoms))], top=["y"],
                              concat_param=pb.ConcatParameter(axis=axis))
    return layer, bottoms, caffe_concat(axis, bottoms)


def draw_axis_layer(rng: random.Random) -> tuple[pb.LayerParameter, list[Full], Full | None]:
    bottom = (N, rng.randint(1, 4), rng.randint(1, 4), rng.randint(1, 4))
    kind = rng.choice(["Softmax", "Flatten", "InnerProduct"])
    axis, end = rng.randint(-5, 4), rng.randint(-5, 4)
    layer = pb.LayerParameter(name="ax", type=kind, bottom=["x"], top=["y"])
    if kind == "Softmax":
        layer.softmax_param.axis = axis
        return layer, [bottom], caffe_softmax(axis, bottom)
    if kind == "Flatten":
        layer.flatten_param.axis, layer.flatten_param.end_axis = axis, end
        return layer, [bottom], caffe_flatten(axis, end, bottom)
    layer.inner_product_param.axis, layer.inner_product_param.num_output = axis, 3
    return layer, [bottom], caffe_ip(axis, 3, bottom)


def ours(layer: pb.LayerParameter, bottoms: list[Full]) -> Full | None:
    """The engine's full top shape, or None where the shape rule refuses (always with a ShapeError)."""
    try:
        shapes = infer_layer(layer, [b[1:] for b in bottoms])
    except ShapeError as exc:
        assert "\n" not in str(exc) and repr(layer.name) in str(exc)
        return None
    along_batch = layer.type == "Concat" and layer.concat_param.axis in (0, -4)
    return (sum(b[0] for b in bottoms) if along_batch else N, *shapes.tops[0])


def _batch_axis(layer: pb.LayerParameter) -> bool:
    """Whether a Flatten's axis or end_axis, or an InnerProduct's axis, is the batch axis of a 4-axis blob."""
    if layer.type == "Flatten":
        return bool({layer.flatten_param.axis, layer.flatten_param.end_axis} & {0, -4})
    return layer.inner_product_param.axis in (0, -4)


#: The refusals of configurations Caffe computes that the toolkit keeps on purpose (README, Caffe
#: compatibility): a kernel larger than its padded input or a pooling window that starts outside the
#: input (the image is too small for the net), and Flatten/InnerProduct over the batch axis (the
#: engine's shapes are per image, so a top that mixes the batch has no per-image shape).
DOCUMENTED: dict[str, Callable[[pb.LayerParameter, list[Full], Full | None], bool]] = {
    "conv kernel beyond the padded input": lambda layer, b, want: layer.type == "Convolution" and any(
        d * (k - 1) + 1 > size + 2 * p for size, k, p, d in zip(
            b[0][2:], (layer.convolution_param.kernel_h, layer.convolution_param.kernel_w),
            (layer.convolution_param.pad_h, layer.convolution_param.pad_w), (layer.convolution_param.dilation[0],) * 2,
            strict=True)),
    "pooling window beyond the input": lambda layer, b, want: layer.type == "Pooling" and want is not None,
    "Flatten/InnerProduct over the batch axis": lambda layer, b, want: layer.type in ("Flatten", "InnerProduct")
    and _batch_axis(layer),
}


def test_fuzzed_layer_parameters_agree_with_caffe_or_differ_as_documented() -> None:
    rng = random.Random(13)
    found: Counter[str] = Counter()
    agreed = 0
    for i in range(600):
        layer, bottoms, want = (draw_conv, draw_pool, draw_concat, draw_axis_layer)[i % 4](rng)
        got = ours(layer, bottoms)
        if got == want:
            agreed += 1
            continue
        reasons = [name for name, applies in DOCUMENTED.items() if applies(layer, bottoms, want) and got is None]
        assert reasons, f"undocumented difference: {layer} bottoms {bottoms}: Caffe {want}, ours {got}"
        found[reasons[0]] += 1
    assert agreed > 450 and set(found) <= set(DOCUMENTED)


# -- item 13: Concat along the batch ----------------------------------------------------------------

def test_concat_along_axis_0_joins_the_batches() -> None:
    text = """layer { name: "in" type: "Input" top: "a" top: "b"
                      input_param { shape { dim: 2 dim: 3 } shape { dim: 4 dim: 3 } } }
              layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "c" concat_param { axis: 0 } }"""
    net = Net(cio.parse_prototxt(text, pb.NetParameter))
    a, b = torch.arange(6.0).reshape(2, 3), -torch.arange(12.0).reshape(4, 3)
    out = net.forward({"a": a, "b": b})["c"]
    assert tuple(out.shape) == (6, 3) and torch.equal(out, torch.cat([a, b]))
    with pytest.raises(ShapeError, match="Concat along axis 0 needs bottoms of one per-image shape, got 3, 4"):
        infer_layer(pb.LayerParameter(name="cat", type="Concat", bottom=["a", "b"], concat_param={"axis": 0}),
                    [(3,), (4,)])


# -- item 11: what Caffe ignores and what it refuses ------------------------------------------------

def _lmdb(path: Path) -> Path:
    with LmdbWriter(path) as writer:
        for i in range(2):
            writer.put(record_key(i, f"r{i}"), array_to_datum(np.full((3, 4, 4), 100, np.uint8), i))
    return path


def test_deprecated_data_param_fields_and_raw_force_gray_are_ignored(tmp_path: Path) -> None:
    source = _lmdb(tmp_path / "db")
    layer = cio.parse_prototxt(f'name: "data" type: "Data" top: "data" top: "label" transform_param {{ force_gray: '
                               f'true }} data_param {{ source: "{source}" batch_size: 2 backend: LMDB scale: 0.5 '
                               'crop_size: 2 mirror: true }', pb.LayerParameter)
    feed = DataFeed(layer, pb.TRAIN, seed=0)
    batch = feed.batch(0)["data"]
    assert tuple(batch.shape) == (2, 3, 4, 4) and float(batch.min()) == float(batch.max()) == 100.0
    messages = [(severity, message) for severity, _, message in feed.notes]
    assert messages == [
        ("W", "layer 'data': data_param.scale, data_param.crop_size, data_param.mirror ignored, as Caffe ignores them "
              "in a new-style layer; move them to transform_param"),
        ("E", "layer 'data': force_color and force_gray only for encoded datum (ignored for these raw records, "
              "as Caffe does)")]


def test_global_pooling_with_stride_or_pad_is_refused() -> None:
    for extra in ({"stride": 2}, {"pad": 1}, {"stride_h": 1, "stride_w": 2}):
        layer = pb.LayerParameter(name="gp", type="Pooling", pooling_param=pb.PoolingParameter(global_pooling=True,
                                                                                               **extra))
        with pytest.raises(ShapeError, match=r"^layer 'gp': global_pooling allows only pad 0 and stride 1"):
            infer_layer(layer, [(2, 5, 5)])
    ok = pb.LayerParameter(name="gp", type="Pooling", pooling_param=pb.PoolingParameter(global_pooling=True, stride=1))
    assert infer_layer(ok, [(2, 5, 5)]).tops == [(2, 1, 1)]


@pytest.mark.parametrize("kind", ["AdaGrad", "RMSProp"])
def test_momentum_with_adagrad_or_rmsprop_is_refused(kind: str) -> None:
    solver = pb.SolverParameter(net="n.prototxt", base_lr=0.1, max_iter=2, lr_policy="fixed", type=kind, momentum=0.9)
    with pytest.raises(ConfigError, match=rf"s.prototxt: field momentum: 0.9, expected 0 with type {kind}"):
        check_solver(solver, "s.prototxt")
    with pytest.raises(ConfigError, match=f"momentum 0.9 cannot be used with {kind}"):
        Updater(solver, [])


def test_test_iter_without_a_test_net_is_refused(tmp_path: Path) -> None:
    net = tmp_path / "n.prototxt"
    net.write_text('layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 2 } } }\n')
    solver = pb.SolverParameter(train_net=str(net), base_lr=0.1, max_iter=2, lr_policy="fixed", test_iter=[3],
                                test_interval=5)
    with pytest.raises(ConfigError, match=r"field test_iter: \[3\], expected one count per test net \(1 == 0"):
        check_solver(solver, "s.prototxt")
    with pytest.raises(ConfigError, match="the solver has 0 test nets and 1 test_iter values"):
        solver_nets(solver, tmp_path)
    generic = pb.SolverParameter(net=str(net), test_iter=[3, 4], test_interval=5, test_net=[str(net)])
    assert len(solver_nets(generic, tmp_path).tests) == 2  # the test_net, then the generic net for the rest
    both = pb.SolverParameter(net=str(net), train_net=str(net), base_lr=0.1, max_iter=2, lr_policy="fixed")
    with pytest.raises(ConfigError, match="field net: 'net, train_net', expected exactly one of"):
        check_solver(both, "s.prototxt")
