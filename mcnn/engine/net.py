"""A Caffe net as a PyTorch computation: built from a NetParameter for one phase.

The net keeps Caffe's vocabulary: named blobs (in-place layers rebind the name), the
learnable blobs of each layer in Caffe's order with their lr_mult/decay_mult, loss weights
(1 for a loss layer's first top unless given), and net outputs (blobs no layer consumes).
Weights load from and save to ``.caffemodel`` files by layer name, as Caffe does.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.infer import LayerShapes, Shape, infer_layer, layer_type
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.fillers import fill
from mcnn.engine.layers import Layer, make_layer
from mcnn.engine.process import cuda_precision, retain_freed_memory
from mcnn.errors import ConfigError, McnnError, ShapeError, WeightsError

PathLike = str | os.PathLike[str]


@dataclass
class LearnableBlob:
    """One learnable blob of one layer, with its Caffe learning-rate and decay multipliers."""

    layer: str
    index: int
    tensor: torch.nn.Parameter
    lr_mult: float = 1.0
    decay_mult: float = 1.0


@dataclass
class _Entry:
    """One layer of the net: its parameter, forward (None for feeds), blob names, learnables, loss weights."""

    param: pb.LayerParameter
    impl: Layer | None
    bottoms: list[str]
    tops: list[str]
    blobs: list[LearnableBlob] = field(default_factory=list)
    loss_weights: list[float] = field(default_factory=list)
    batch_axis: bool = True  # False for tops that reduce the batch (losses, accuracy): shapes are full shapes
    propagate: list[bool] = field(default_factory=list)  # per bottom: whether gradients flow back to it
    detach_params: bool = False  # frozen blobs (lr_mult 0) get no gradient from this layer


class Net:
    """A net for one phase.

    ``data_shapes`` gives the per-image shape of each Data layer top (from the LMDB);
    ``share_with`` reuses the learnable blobs of same-named layers of another net (Caffe's
    test nets share the training net's weights this way). ``level`` and ``stages`` complete
    the NetState that selects the layers (Caffe's include/exclude rules).
    """

    def __init__(self, net: pb.NetParameter, phase: int = pb.TEST, *, data_shapes: Mapping[str, Shape] | None = None,
                 share_with: Net | None = None, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu", source: str = "net", level: int = 0,
                 stages: Sequence[str] = ()):
        retain_freed_memory()
        self.source = source
        self.phase = phase
        self.param = filter_net(net, phase, level, stages)
        self.name = self.param.name
        self.device = torch.device(device)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if len(self.param.input) or len(self.param.input_dim) or len(self.param.input_shape):
            data_shapes = dict(data_shapes or {})
            data_shapes.update(self._legacy_inputs())
        self.blob_shapes: dict[str, Shape] = {}
        self.entries: list[_Entry] = []
        self.feeds: list[str] = [n for n in self.param.input]
        shared: dict[str, torch.nn.Parameter] = {}
        available: dict[str, None] = dict.fromkeys(self.feeds)  # Caffe's net outputs: produced, not consumed
        fresh: set[str] = set()  # blobs a layer just made that no layer has read yet
        for layer in self.param.layer:
            bottoms = list(layer.bottom)
            for b in bottoms:
                if b not in self.blob_shapes:
                    raise ShapeError(f"{source}: layer {layer.name!r}: bottom blob {b!r} is not produced "
                                     "by an earlier layer")
            for b in bottoms:
                available.pop(b, None)
            inferred, impl = self._build_layer(layer, [self.blob_shapes[b] for b in bottoms], data_shapes)
            _mark_in_place(impl, layer, fresh)
            if impl is not None:
                impl.reads_net_input = any(b in self.feeds for b in bottoms)
            feed = layer_type(layer).feed
            entry = _Entry(param=layer, impl=impl, bottoms=bottoms, tops=list(layer.top),
                           batch_axis=inferred.batch_axis)
            entry.propagate = self._propagate_down(layer)
            # Caffe's Net::Init sets param_propagate_down false for lr_mult 0 (unless force_backward), so
            # the layer computes no diff for such a blob; a Python layer's own backward writes diffs anyway.
            entry.detach_params = not (self.param.force_backward or layer_type(layer).dynamic)
            if feed:
                self.feeds.extend(layer.top)
            entry.blobs = self._make_blobs(layer, inferred.params, share_with, shared, gen, impl)
            entry.loss_weights = self._loss_weights(layer, impl)
            for top, shape in zip(layer.top, inferred.tops, strict=False):
                self.blob_shapes[top] = shape
                available[top] = None
            self.entries.append(entry)
        self.outputs = list(available)
        self.to(self.device)

    # -- construction -------------------------------------------------------------

    def _legacy_inputs(self) -> dict[str, Shape]:
        """Per-image shapes of the deprecated net-level ``input``/``input_dim``/``input_shape`` fields."""
        shapes: dict[str, Shape] = {}
        dims = list(self.param.input_dim)
        for i, name in enumerate(self.param.input):
            if i < len(self.param.input_shape):
                shape = tuple(int(d) for d in self.param.input_shape[i].dim)
            else:
                shape = tuple(dims[4 * i:4 * i + 4])
            shapes[name] = shape[1:]
            self.blob_shapes[name] = shape[1:]
        return shapes

    def _build_layer(self, layer: pb.LayerParameter, bottom_shapes: list[Shape],
                     data_shapes: Mapping[str, Shape] | None) -> tuple[LayerShapes, Layer | None]:
        """The layer's shapes and its forward (None for feeds); a dynamic type (Python) is built first and asked."""
        kind = layer_type(layer)
        if kind.dynamic:
            impl = make_layer(layer)
            return impl.dynamic_shapes(bottom_shapes, self.phase), impl
        inferred = infer_layer(layer, bottom_shapes, dict(data_shapes or {}))
        return inferred, None if kind.feed else make_layer(layer)

    def _make_blobs(self, layer: pb.LayerParameter, param_shapes: Sequence[Shape], share_with: Net | None,
                    shared: dict[str, torch.nn.Parameter], gen: torch.Generator,
                    impl: Layer | None = None) -> list[LearnableBlob]:
        other = share_with.layer_blobs(layer.name) if share_with is not None else None
        initial = impl.initial_blobs() if impl is not None else []
        statistics = layer_type(layer).statistics
        blobs = []
        for i, shape in enumerate(param_shapes):
            default = pb.ParamSpec(lr_mult=0.0) if statistics else pb.ParamSpec()  # Caffe masks BatchNorm's
            spec = layer.param[i] if i < len(layer.param) else default
            if statistics and spec.lr_mult != 0:
                raise ConfigError(f"{self.source}: layer {layer.name!r}: {layer.type} statistics cannot be learned "
                                  f"(param {i} needs lr_mult: 0)")
            if other is not None and i < len(other):
                if tuple(other[i].tensor.shape) != tuple(shape):
                    raise ShapeError(f"{self.source}: layer {layer.name!r} blob {i} has shape {tuple(shape)} "
                                     f"here and {tuple(other[i].tensor.shape)} in the net it shares with")
                tensor = other[i].tensor
            elif spec.name and spec.name in shared:
                tensor = shared[spec.name]
                if tuple(tensor.shape) != tuple(shape):
                    raise ShapeError(f"{self.source}: layer {layer.name!r} shares param {spec.name!r} "
                                     f"with shape {tuple(tensor.shape)}, needs {tuple(shape)}")
            elif i < len(initial):
                tensor = torch.nn.Parameter(initial[i].detach().to(torch.float32).clone().reshape(tuple(shape)))
            else:
                filler = layer_type(layer).fillers(layer, i)
                tensor = torch.nn.Parameter(fill(tuple(shape), filler, gen, layer.name))
            if spec.name:
                shared.setdefault(spec.name, tensor)
            blobs.append(LearnableBlob(layer.name, i, tensor, spec.lr_mult, spec.decay_mult))
        return blobs

    def _propagate_down(self, layer: pb.LayerParameter) -> list[bool]:
        """``propagate_down`` per bottom (all True when not given); Caffe's count CHECK in net.cpp."""
        flags = list(layer.propagate_down)
        if flags and len(flags) != len(layer.bottom):
            raise ConfigError(f"{self.source}: layer {layer.name!r}: propagate_down has {len(flags)} values for "
                              f"{len(layer.bottom)} bottoms; give none or one per bottom")
        return flags or [True] * len(layer.bottom)

    @staticmethod
    def _layer_inputs(entry: _Entry, blobs: Mapping[str, torch.Tensor]) -> tuple[list[torch.Tensor],
                                                                                  list[torch.Tensor]]:
        """The bottoms and learnable blobs handed to ``entry``'s forward, cut from autograd where Caffe
        computes no diff: bottoms with ``propagate_down: false`` and blobs with ``lr_mult: 0``."""
        bottoms = [blobs[b] if keep else blobs[b].detach() for b, keep in zip(entry.bottoms, entry.propagate,
                                                                              strict=True)]
        params = [b.tensor.detach() if entry.detach_params and b.lr_mult == 0 else b.tensor for b in entry.blobs]
        return bottoms, params

    @staticmethod
    def _loss_weights(layer: pb.LayerParameter, impl: Layer | None) -> list[float]:
        weights = list(layer.loss_weight)
        if not weights and impl is not None and impl.loss:
            weights = [1.0]
        return weights + [0.0] * (len(layer.top) - len(weights))

    # -- parameters -----------------------------------------------------------------

    def learnable(self) -> list[LearnableBlob]:
        """Every learnable blob once (shared blobs only at their first owner), in net order."""
        seen: set[int] = set()
        out = []
        for entry in self.entries:
            for blob in entry.blobs:
                if id(blob.tensor) not in seen:
                    seen.add(id(blob.tensor))
                    out.append(blob)
        return out

    def layer_blobs(self, name: str) -> list[LearnableBlob] | None:
        """The learnable blobs of layer ``name``, or None if the net has no such layer."""
        for entry in self.entries:
            if entry.param.name == name:
                return entry.blobs
        return None

    def to(self, device: str | torch.device) -> Net:
        """Move the learnable blobs to ``device`` (shared tensors move once); on CUDA, float32 maths unless
        :func:`mcnn.engine.process.cuda_precision` allowed TF32."""
        self.device = torch.device(device)
        if self.device.type == "cuda":
            cuda_precision()
        with torch.no_grad():
            for blob in self.learnable():
                blob.tensor.data = blob.tensor.data.to(self.device)
        for entry in self.entries:
            if entry.impl is not None:
                entry.impl.device = self.device
        return self

    def weights(self) -> dict[str, list[np.ndarray]]:
        """Layer name -> float32 arrays of its learnable blobs."""
        return {e.param.name: [b.tensor.detach().cpu().numpy().copy() for b in e.blobs]
                for e in self.entries if e.blobs}

    def load_weights(self, model: pb.NetParameter | PathLike, source: str | None = None) -> list[str]:
        """Copy blobs from a caffemodel into same-named layers, as strictly as Caffe's CopyTrainedLayersFrom.

        A V0/V1 model file is upgraded on read. Returns the names of the model's layers the net lacks
        (Caffe logs "Ignoring source layer" for each). :class:`WeightsError`, before anything is copied,
        for: another blob count, a shape Caffe's ShapeEquals rejects, a value count that does not fit,
        and a model none of whose layers is in the net (or that copies no blob into a net that has some).
        """
        if not isinstance(model, pb.NetParameter):
            source = source or os.fspath(model)
            model = cio.read_caffemodel(model)
        copies, ignored = _planned_copies(self, model, source or "caffemodel")
        with torch.no_grad():
            for tensor, array in copies:
                tensor.copy_(torch.from_numpy(array))
        return ignored

    def to_caffemodel(self) -> pb.NetParameter:
        """This net with its weights as blobs (what Caffe writes as ``.caffemodel``)."""
        return cio.weights_to_caffemodel(self.param, self.weights())

    # -- forward ---------------------------------------------------------------------

    def forward(self, feeds: Mapping[str, torch.Tensor | np.ndarray], train: bool = False,
                until: str | None = None) -> dict[str, torch.Tensor]:
        """Run the layers on ``feeds`` (tensors for Input/Data tops, batch first).

        Returns every blob by name (in-place layers leave the final value). With ``until``,
        stops after the layer of that name.
        """
        blobs: dict[str, torch.Tensor] = {}
        for name in self.feeds:
            if name not in feeds:
                raise McnnError(f"{self.source}: no input given for blob {name!r}")
            value = feeds[name]
            tensor = torch.as_tensor(value) if isinstance(value, np.ndarray) else value
            if tensor.dtype == torch.float64:
                tensor = tensor.float()
            expected = self.blob_shapes.get(name)
            if expected is not None and tensor.dim() > 1 and tuple(tensor.shape[1:]) != tuple(expected):
                # int(): under torch.jit.trace the sizes are tensors, whose repr would leak into the message
                got, want = ("x".join(str(int(n)) for n in shape) for shape in (tensor.shape[1:], expected))
                raise ShapeError(f"{self.source}: input {name!r} has per-image shape {got}, the net expects {want}")
            blobs[name] = tensor.to(self.device, non_blocking=True)
        for entry in self.entries:
            if entry.impl is not None:
                outs = entry.impl.forward(*self._layer_inputs(entry, blobs), train)
                for top, value in zip(entry.tops, outs, strict=False):
                    blobs[top] = value
            if until is not None and entry.param.name == until:
                break
        return blobs

    def loss(self, blobs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The weighted sum of the loss tops (Caffe's net loss)."""
        total = torch.zeros((), device=self.device)
        for entry in self.entries:
            for top, weight in zip(entry.tops, entry.loss_weights, strict=False):
                if weight:
                    total = total + weight * blobs[top].sum()
        return total

    def output_weights(self) -> dict[str, float]:
        """Loss weight of each net output (0 for non-loss outputs such as accuracy)."""
        weights = {}
        for entry in self.entries:
            for top, weight in zip(entry.tops, entry.loss_weights, strict=False):
                weights[top] = weight
        return {name: weights.get(name, 0.0) for name in self.outputs}

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The tensors of :meth:`learnable`, in net order."""
        for blob in self.learnable():
            yield blob.tensor

    def param_count(self) -> int:
        """The number of learnable values (shared blobs counted once)."""
        return sum(math.prod(b.tensor.shape) for b in self.learnable())


def _mark_in_place(impl: Layer | None, layer: pb.LayerParameter, fresh: set[str]) -> None:
    """Let ``impl`` overwrite its bottom where Caffe's layer is in place (top == bottom) and no gradient needs
    the old values: the bottom is ``fresh``, made by a layer whose backward does not read its tops and read by
    no layer since. Updates ``fresh`` (the blobs just made and not yet read) past this layer."""
    bottoms = list(layer.bottom)
    if impl is not None and impl.can_run_in_place and bottoms == list(layer.top) and bottoms[0] in fresh:
        impl.in_place = True
    fresh.difference_update(bottoms)
    if impl is not None and not impl.backward_reads_tops:
        fresh.update(layer.top)


def _planned_copies(net: Net, model: pb.NetParameter, source: str) -> tuple[list[tuple[torch.Tensor, np.ndarray]],
                                                                          list[str]]:
    """Every (net tensor, array from the model) copy :meth:`Net.load_weights` makes, checked first, and
    the model's layers the net lacks. Caffe's rules: ``src/caffe/net.cpp`` CopyTrainedLayersFrom and
    ``src/caffe/blob.cpp`` ShapeEquals / FromProto."""
    copies, ignored, matched = [], [], []
    for layer in model.layer:
        blobs = net.layer_blobs(layer.name)
        if blobs is None:
            ignored.append(layer.name)
            continue
        matched.append(layer.name)
        if len(layer.blobs) != len(blobs):
            raise WeightsError(f"{source}: layer {layer.name!r} has {len(layer.blobs)} blobs, the net expects "
                               f"{len(blobs)}")
        for i, (src, dst) in enumerate(zip(layer.blobs, blobs, strict=True)):
            shape = tuple(dst.tensor.shape)
            if not cio.blob_fits(src, shape):
                theirs = cio.blob_shape(src) if cio.has_legacy_shape(src) else tuple(src.shape.dim)
                raise WeightsError(f"{source}: cannot copy blob {i} of layer {layer.name!r}: shape {theirs} in the "
                                   f"file, {shape} in the net (rename the layer to learn it from scratch)")
            values = cio.blob_values(src)
            if values.size != dst.tensor.numel():
                raise WeightsError(f"{source}: layer {layer.name!r} blob {i} holds {values.size} values, its shape "
                                   f"{shape} needs {dst.tensor.numel()}")
            copies.append((dst.tensor, values.reshape(shape)))
    if not matched:
        raise WeightsError(f"{source}: none of its {len(model.layer)} layers is a layer of the net (an empty "
                           "model, or one of another net); no weights loaded")
    if not copies and net.learnable():
        raise WeightsError(f"{source}: copied no weights: the layers it shares with the net "
                           f"({', '.join(matched)}) hold no blobs")
    return copies, ignored


def load_net(prototxt: PathLike, weights: PathLike | Sequence[PathLike] | None = None, phase: int = pb.TEST,
             device: str = "cpu", data_shapes: Mapping[str, Shape] | None = None) -> Net:
    """Load a net from a prototxt (and caffemodels, matched by layer name) for ``phase``.

    Typical use: ``load_net("mcnn_deploy.prototxt", "snap_iter_1000.caffemodel")`` then
    ``net.forward({"data": batch})["prob"]``.
    """
    param = cio.read_net(prototxt)
    net = Net(param, phase, data_shapes=data_shapes, device=device, source=os.fspath(prototxt))
    if weights is not None:
        for path in [weights] if isinstance(weights, (str, os.PathLike)) else weights:
            net.load_weights(path)
    return net
