"""Kernel maps: the activations of chosen conv layers for one field, at every scale of the M-CNN.

The paper shows the input crop next to the kernel maps of the first conv layer of the finest
pathway (Fig. 3a) and of the coarser pathways (Supplementary Fig. 1). :func:`compute_maps` runs
fields through a deploy net and keeps, per chosen layer, its top blob as Caffe holds it after the
forward pass: for the M-CNN's ``conv1_s<k>`` that is after the in-place ReLU, as
``net.blobs['conv1_s1'].data`` in pycaffe. The default layers (:func:`default_layers`) are the
convolutions that read the net input directly or through pooling only, i.e. the first conv of every
scale. Big fields are cut to a centred ``region`` (of the input, and the same part of each blob), as
the paper shows "a representative region instead of the full image". :func:`write_maps` writes the
arrays (.npz) and the figure (:mod:`mcnn.evaluate.kernelplot`).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcnn.caffe import io as cio
from mcnn.caffe.infer import Shape, infer_layer
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.shapes import conv_window, pool_window
from mcnn.caffe.transform import Transformer
from mcnn.errors import BadInputError, ConfigError
from mcnn.fsutil import atomic_write_bytes

PathLike = str | os.PathLike[str]
Window = tuple[int, int, int, int]
#: The default ``region``: the side, in input pixels, of the centred part of a field that is kept.
REGION = 256
#: Names of the .npz's own arrays (a chosen blob may not have one of them).
NPZ_META = ("input", "keys", "labels", "titles", "channels", "blobs", "windows", "input_window", "scales")


@dataclass
class Field:
    """One field to draw: its C x H x W image as stored (uint8 record), label (-1: none) and title."""

    key: str
    image: np.ndarray
    label: int = -1
    title: str = ""


@dataclass
class KernelMaps:
    """Kernel maps of N fields.

    ``inputs``: N x C x h x w, the preprocessed net input inside ``input_window`` (top, left, height,
    width in input pixels); ``blobs[name]``: N x K x h' x w', the same part of each chosen blob
    (``windows[name]`` in that blob's pixels); ``scale_inputs[name]``: the net input at that blob's
    scale (the blob the layer's pathway starts from, e.g. ``pool_in_s4``), same window rule;
    ``scales[name]``: input pixels per blob pixel (:func:`blob_stride`).
    """

    keys: list[str]
    labels: list[int]
    titles: list[str]
    channels: tuple[str, ...]
    inputs: np.ndarray
    input_window: Window
    blobs: dict[str, np.ndarray] = field(default_factory=dict)
    windows: dict[str, Window] = field(default_factory=dict)
    scale_inputs: dict[str, np.ndarray] = field(default_factory=dict)
    scales: dict[str, int] = field(default_factory=dict)


# -- the net's structure ----------------------------------------------------------------------------

def blob_shapes(net: pb.NetParameter) -> tuple[str, dict[str, Shape]]:
    """(input blob, per-image shape of every blob) of a deploy net (TEST phase)."""
    net = filter_net(net, pb.TEST)
    shapes: dict[str, Shape] = {}
    if net.input:  # the legacy input / input_shape / input_dim fields
        dims = [tuple(s.dim) for s in net.input_shape] or [tuple(net.input_dim[4 * i: 4 * i + 4])
                                                           for i in range(len(net.input))]
        shapes.update({name: tuple(d[1:]) for name, d in zip(net.input, dims, strict=False)})
    feed = net.input[0] if net.input else ""
    for layer in net.layer:
        inferred = infer_layer(layer, [shapes[b] for b in layer.bottom])
        if layer.type == "Input" and not feed:
            feed = layer.top[0]
        shapes.update(zip(layer.top, inferred.tops, strict=False))
    if not feed:
        raise ConfigError(f"{net.name or 'net'}: not a deploy net (no Input layer)")
    return feed, shapes


def _producers(net: pb.NetParameter) -> dict[str, pb.LayerParameter]:
    """The layer that creates each blob (in-place layers, whose top is a bottom, do not count)."""
    return {top: layer for layer in net.layer for top in layer.top if top not in layer.bottom}


def scale_input(net: pb.NetParameter, layer: pb.LayerParameter, feed: str) -> str:
    """The blob the pathway of ``layer`` starts from: walking back through first bottoms, the net input or
    the first Pooling of it met (``pool_in_s4`` for the M-CNN's ``conv2_s4``; ``data`` for AlexNet)."""
    producers = _producers(net)
    blob = layer.bottom[0] if layer.bottom else feed
    while blob != feed:
        maker = producers.get(blob)
        if maker is None or not maker.bottom:
            return feed
        if maker.type == "Pooling" and maker.bottom[0] == feed:
            return blob
        blob = maker.bottom[0]
    return feed


def blob_stride(net: pb.NetParameter, blob: str, feed: str, shapes: dict[str, Shape]) -> int:
    """The input pixels per pixel of ``blob`` (rows): the product of the strides of the Convolution and Pooling
    layers on the path back to the net input through first bottoms (32 for ``conv1_s32``, whose ceil-mode
    pooled size may be rounded up)."""
    producers = _producers(net)
    stride = 1
    while blob != feed and blob in producers:
        maker = producers[blob]
        if not maker.bottom:
            break
        if maker.type == "Convolution":
            stride *= conv_window(maker.convolution_param, maker.name).stride[0]
        elif maker.type == "Pooling":
            hw = shapes[maker.bottom[0]][1:]
            stride *= pool_window(maker.pooling_param, (int(hw[0]), int(hw[1])), maker.name).stride[0]
        blob = maker.bottom[0]
    return stride


def default_layers(net: pb.NetParameter) -> list[str]:
    """The Convolution layers that read the net input directly or through pooling only: the first conv of
    every scale of the M-CNN (``conv1_s1``, ``conv1_s2``, ...), ``conv1`` of AlexNet."""
    feed, _ = blob_shapes(net)
    net = filter_net(net, pb.TEST)
    producers = _producers(net)
    starts = {feed} | {b for b, m in producers.items() if m.type == "Pooling" and m.bottom and m.bottom[0] == feed}
    return [layer.name for layer in net.layer if layer.type == "Convolution" and layer.bottom
            and layer.bottom[0] in starts]


def chosen_layers(net: pb.NetParameter, names: Sequence[str] | None, source: str) -> list[pb.LayerParameter]:
    """The layers ``names`` of the deploy net (default :func:`default_layers`), each with a C x H x W top;
    ConfigError naming the first that is missing or not spatial."""
    _, shapes = blob_shapes(net)
    net = filter_net(net, pb.TEST)
    by_name = {layer.name: layer for layer in net.layer}
    wanted = list(names) if names else default_layers(net)
    if not wanted:
        raise ConfigError(f"{source}: no convolution reads the input; name the layers with --layers")
    layers = []
    for name in wanted:
        layer = by_name.get(name)
        if layer is None:
            convs = [x.name for x in net.layer if x.type == "Convolution"]
            raise ConfigError(f"--layers {name}: no such layer in {source} (its conv layers: "
                              f"{', '.join(convs[:12])}{', ...' if len(convs) > 12 else ''})")
        if not layer.top or len(shapes.get(layer.top[0], ())) != 3:
            raise ConfigError(f"--layers {name}: its top is not a C x H x W map in {source}")
        if layer.top[0] in NPZ_META:
            raise ConfigError(f"--layers {name}: its top {layer.top[0]!r} clashes with an array name of the .npz")
        layers.append(layer)
    return layers


# -- windows ----------------------------------------------------------------------------------------

def centre_window(height: int, width: int, region: int) -> Window:
    """(top, left, height, width) of the centred ``region`` x ``region`` part of an image (the whole image
    when ``region`` is 0 or at least its size)."""
    h = height if region <= 0 else min(region, height)
    w = width if region <= 0 else min(region, width)
    return (height - h) // 2, (width - w) // 2, h, w


def scaled_window(window: Window, full: tuple[int, int], size: tuple[int, int]) -> Window:
    """The part of a blob of ``size`` (h, w) that covers ``window`` of the input of size ``full``: edges
    scaled by size / full, rounded outwards."""
    top, left, h, w = window
    r0, r1 = math.floor(top * size[0] / full[0]), math.ceil((top + h) * size[0] / full[0])
    c0, c1 = math.floor(left * size[1] / full[1]), math.ceil((left + w) * size[1] / full[1])
    return r0, c0, min(r1, size[0]) - r0, min(c1, size[1]) - c0


def cut(array: np.ndarray, window: Window) -> np.ndarray:
    """``array[..., top:top+h, left:left+w]``."""
    top, left, h, w = window
    return array[..., top: top + h, left: left + w]


# -- forward ------------------------------------------------------------------------------------------

class BlobForward:
    """Forward passes of one image that return chosen blobs: the engine's net run eagerly (the blobs are
    exactly what ``Net.forward`` gives) or, with ``engine="caffe"``, pycaffe."""

    def __init__(self, model: PathLike, weights: PathLike, engine: str = "torch", gpu: int | None = None):
        if engine == "caffe":
            from mcnn.evaluate.predict import PycaffeBackend

            self.backend: PycaffeBackend | None = PycaffeBackend(model, weights, gpu)
            return
        if engine != "torch":
            raise ConfigError(f"--engine must be torch or caffe, got {engine!r}")
        from mcnn.engine.net import load_net

        self.backend = None
        self.net = load_net(model, weights, device="cpu" if gpu is None else f"cuda:{gpu}")

    def __call__(self, batch: np.ndarray, blobs: Sequence[str]) -> dict[str, np.ndarray]:
        """The ``blobs`` (float32 arrays, batch first) after the forward pass of ``batch`` (N x C x H x W)."""
        if self.backend is not None:
            return self.backend.forward(batch, blobs)
        import torch

        # stop after the last layer that writes one of the blobs (an in-place ReLU included)
        names = [layer.name for layer in self.net.param.layer if set(layer.top) & set(blobs)]
        with torch.no_grad():
            out = self.net.forward({self.net.feeds[0]: torch.from_numpy(np.ascontiguousarray(batch))},
                                   until=names[-1] if names else None)
        return {name: out[name].float().cpu().numpy() for name in blobs}


def test_transformer(transform: pb.TransformationParameter, shape: Sequence[int], base_dir: Path | None,
                     encoded: bool = False) -> Transformer:
    """Caffe's TEST transform of ``transform`` for C x H x W fields, without the mirror: a kernel map of a
    randomly flipped field would be the same map flipped, and the figure shows the field as it lies."""
    param = pb.TransformationParameter()
    param.CopyFrom(transform)
    param.mirror = False
    return Transformer(param, pb.TEST, tuple(shape), base_dir=base_dir, encoded=encoded)


def field_transformers(fields: Sequence[Field], transform: pb.TransformationParameter, net_input: Shape,
                       base_dir: Path | None, encoded: bool) -> dict[tuple[int, ...], Transformer]:
    """A :func:`test_transformer` per field shape; BadInputError naming the first field whose transformed
    size is not the net's per-image input shape ``net_input``."""
    transformers: dict[tuple[int, ...], Transformer] = {}
    for f in fields:
        if f.image.shape not in transformers:
            transformers[f.image.shape] = test_transformer(transform, f.image.shape, base_dir, encoded)
        got = transformers[f.image.shape].out_shape
        if tuple(got) != tuple(net_input):
            size, want = "x".join(map(str, f.image.shape)), "x".join(map(str, net_input))
            after = "" if tuple(got) == f.image.shape else f", {'x'.join(map(str, got))} after the TEST transform"
            raise BadInputError(f.key, f"a {size} field (channels x rows x columns){after}; the net takes {want}")
    return transformers


def compute_maps(model: PathLike, weights: PathLike, fields: Sequence[Field], transform: pb.TransformationParameter,
                 channels: Sequence[str], layers: Sequence[str] | None = None, region: int = REGION,
                 engine: str = "torch", gpu: int | None = None, base_dir: Path | None = None,
                 encoded: bool = False) -> KernelMaps:
    """Run each field (one forward pass each) through the deploy net ``model`` and keep the chosen layers'
    blobs and the input at each of their scales, inside the centred ``region`` (0: whole fields).

    ``transform`` is the net's TEST preprocessing (:func:`mcnn.evaluate.predict.test_transform`);
    ``channels`` name the fields' channels (for the figure). Checks every field's size against the net's
    input before the first forward pass (BadInputError naming the field).
    """
    if not fields:
        raise ConfigError("no field to draw kernel maps of")
    param = cio.read_net(model)
    feed, shapes = blob_shapes(param)
    net = filter_net(param, pb.TEST)
    chosen = chosen_layers(param, layers, str(model))
    transformers = field_transformers(fields, transform, shapes[feed], base_dir, encoded)
    tops = [layer.top[0] for layer in chosen]
    starts = {layer.top[0]: scale_input(net, layer, feed) for layer in chosen}
    full = tuple(shapes[feed][1:])
    window = centre_window(*full, region)
    windows = {b: scaled_window(window, full, tuple(shapes[b][1:])) for b in {*tops, *starts.values()}}
    forward = BlobForward(model, weights, engine, gpu)
    inputs, out, at_scale = [], {b: [] for b in tops}, {b: [] for b in tops}
    for f in fields:
        x = transformers[f.image.shape](f.image, np.random.default_rng(0))[None]
        result = forward(x, sorted({*tops, *(s for s in starts.values() if s != feed)}))
        result[feed] = x
        inputs.append(cut(x[0], window))
        for b in tops:
            out[b].append(cut(result[b][0], windows[b]))
            at_scale[b].append(cut(result[starts[b]][0], windows[starts[b]]))
    return KernelMaps(keys=[f.key for f in fields], labels=[f.label for f in fields],
                      titles=[f.title or f.key for f in fields], channels=tuple(channels),
                      inputs=np.stack(inputs), input_window=window,
                      blobs={b: np.stack(v) for b, v in out.items()}, windows={b: windows[b] for b in tops},
                      scale_inputs={b: np.stack(v) for b, v in at_scale.items()},
                      scales={b: blob_stride(net, b, feed, shapes) for b in tops})


def maps_arrays(maps: KernelMaps) -> dict[str, np.ndarray]:
    """The arrays of the .npz: one per chosen blob (N x K x h x w float32), ``input`` (N x C x h x w),
    ``keys``/``titles``/``channels``/``blobs`` (strings), ``labels``, ``windows`` (one (top, left, height,
    width) row per blob, in ``blobs`` order), ``input_window`` and ``scales``."""
    names = list(maps.blobs)
    return {**maps.blobs, "input": maps.inputs, "keys": np.asarray(maps.keys, dtype=str),
            "labels": np.asarray(maps.labels, np.int64), "titles": np.asarray(maps.titles, dtype=str),
            "channels": np.asarray(maps.channels, dtype=str), "blobs": np.asarray(names, dtype=str),
            "windows": np.asarray([maps.windows[b] for b in names], np.int64).reshape(len(names), 4),
            "input_window": np.asarray(maps.input_window, np.int64),
            "scales": np.asarray([maps.scales[b] for b in names], np.int64)}


def write_maps(png: PathLike, maps: KernelMaps) -> tuple[Path, Path]:
    """The figure (``png``) and the arrays (the same name with ``.npz``, :func:`maps_arrays`), written
    atomically; returns both paths."""
    from mcnn.evaluate.kernelplot import kernel_figure
    from mcnn.figures import save_figure

    png = Path(png)
    npz = png.with_suffix(".npz")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **maps_arrays(maps))
    atomic_write_bytes(npz, buffer.getvalue())
    save_figure(kernel_figure(maps), png, dpi=100 if len(maps.keys) > 4 else 150)
    return png, npz
