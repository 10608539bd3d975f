"""pycaffe's Net on the engine: named blobs shared with NumPy, forward/backward by layer range.

A forward reads the current values of the input blobs (and of the bottoms of ``start``), runs
the engine's layers and copies each top into its blob in place, so arrays users hold stay the
live buffers. Each layer runs on its own copy of its bottoms with autograd on, and the graph of
the last forward is kept: ``backward`` goes layer by layer from the top diffs in the blobs,
writing bottom diffs (summed over a blob's consumers, as Caffe's Split layers do) and adding
learnable-blob gradients into the params' ``diff`` until :meth:`Net.clear_param_diffs`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.infer import Shape
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.data import FEED_TYPES, Feed, feed_shapes, make_feed
from mcnn.engine.net import Net as EngineNet
from mcnn.errors import ConfigError, McnnError, ShapeError
from mcnn.pycaffe import batching, mode, passes, shapes
from mcnn.pycaffe.blob import Blob

PathLike = str | os.PathLike[str]


class NamedDict(OrderedDict):
    """An OrderedDict whose missing keys raise a one-line KeyError listing the known names."""

    def __init__(self, items: Iterable[tuple[str, Any]], what: str, source: str):
        super().__init__(items)
        self._what, self._source = what, source

    def __missing__(self, key: str) -> Any:
        known = ", ".join(self.keys()) or "none"
        raise KeyError(f"{self._source}: no {self._what} {key!r}; the net's are: {known}")


@dataclass
class LayerView:
    """One layer as pycaffe shows it: its ``type`` and its learnable ``blobs``."""

    name: str
    type: str
    blobs: list[Blob]


def _arguments(args: Sequence[Any], phase: Any, weights: Any, level: int, stages: Any) -> tuple:
    """pycaffe's two signatures: (phase, level, stages, weights) or the deprecated (weights, phase)."""
    args = list(args)
    if args and isinstance(args[0], (str, os.PathLike)):
        weights = args.pop(0) if weights is None else weights
    names = ["phase", "level", "stages", "weights"]
    values = {"phase": phase, "level": level, "stages": stages, "weights": weights}
    if len(args) > len(names):
        raise ConfigError(f"Net(): at most {len(names) + 1} positional arguments, got {len(args) + 1}")
    for name, value in zip(names, args, strict=False):
        values[name] = value
    if values["phase"] not in (pb.TRAIN, pb.TEST):
        raise ConfigError(f"Net(): phase must be caffe.TRAIN (0) or caffe.TEST (1), got {values['phase']!r}")
    w = values["weights"]
    weight_list = [] if w is None else [w] if isinstance(w, (str, os.PathLike)) else list(w)
    return int(values["phase"]), int(values["level"] or 0), list(values["stages"] or []), weight_list


class Net:
    """A Caffe net: ``Net(prototxt, phase)``, ``Net(prototxt, phase, weights=w)`` or ``Net(prototxt, w, phase)``.

    ``level`` and ``stages`` select layers by their include/exclude rules. Data layers read their
    LMDB batch by batch, one batch per forward. Errors are one-line mcnn.errors exceptions.
    """

    def __init__(self, network_file: PathLike, *args: Any, phase: int | None = None, weights: Any = None,
                 level: int = 0, stages: Sequence[str] | None = None):
        phase, level, stage_list, weight_list = _arguments(args, phase, weights, level, stages)
        source = os.fspath(network_file)
        param = cio.read_net(network_file)
        base = Path(source).resolve().parent
        feeds = [make_feed(layer, phase, mode.draw_seed(), base_dir=base)
                 for layer in filter_net(param, phase, level, stage_list).layer if layer.type in FEED_TYPES]
        engine = EngineNet(param, phase, data_shapes=feed_shapes(feeds),
                           generator=mode.generator(), device=mode.engine_device(), source=source, level=level,
                           stages=stage_list)
        self._attach(engine, feeds)
        for path in weight_list:
            self.copy_from(path)

    @classmethod
    def _wrap(cls, engine: EngineNet, feeds: Sequence[Feed], cursor: Callable[[], int] | None = None,
              params: dict[int, Blob] | None = None) -> Net:
        """A pycaffe Net around an existing engine net (a solver's); ``params`` reuses Blobs by tensor."""
        net = cls.__new__(cls)
        net._attach(engine, feeds, cursor, params)
        return net

    def _attach(self, engine: EngineNet, feeds: Sequence[Feed], cursor: Callable[[], int] | None = None,
                params: dict[int, Blob] | None = None) -> None:
        self._engine = engine
        self._source = engine.source
        self._feeds = {feed.name: feed for feed in feeds}
        self._cursor = cursor
        self._batches = 0  # Data-layer batches read by this net (its cursor when none is given)
        legacy = shapes.legacy_input_shapes(engine.param)
        self._inputs = list(legacy) + [t for e in engine.entries if e.param.type == "Input" for t in e.tops]
        inputs = dict(legacy)
        for entry in engine.entries:
            for i, top in enumerate(entry.tops):
                if entry.param.type == "Input":
                    inputs[top] = shapes.source_shape(entry, i) or ()
        full = shapes.full_shapes(engine, engine.blob_shapes, inputs)
        order = dict.fromkeys([*legacy, *(t for e in engine.entries for t in e.tops)])  # Caffe's creation order
        self._blobs = NamedDict(((name, Blob(full[name])) for name in order), "blob", self._source)
        self._param_blobs: dict[int, Blob] = dict(params or {})
        self._layer_views = [LayerView(e.param.name, e.param.type, [self._param_blob(b.tensor) for b in e.blobs])
                             for e in engine.entries]
        self._record: list[passes.LayerPass | None] = [None] * len(engine.entries)
        self._loss_weights = {top: w for e in engine.entries for top, w in zip(e.tops, e.loss_weights, strict=False)}
        for name in self._blobs:
            self._reset_loss_diff(name)
        self._input_shapes = self._current_input_shapes()

    def _param_blob(self, tensor: torch.nn.Parameter) -> Blob:
        blob = self._param_blobs.get(id(tensor))
        if blob is None:
            blob = self._param_blobs[id(tensor)] = Blob._of_param(tensor)
        return blob

    def _reset_loss_diff(self, name: str) -> None:
        """A loss top's diff holds its loss weight (Caffe seeds backward with it)."""
        weight = self._loss_weights.get(name, 0.0)
        if weight:
            self._blobs[name].diff[...] = weight

    def _current_input_shapes(self) -> dict[str, Shape]:
        return {name: self._blobs[name].shape for name in self._inputs}

    # -- pycaffe's attributes -------------------------------------------------------------------

    @property
    def blobs(self) -> NamedDict:
        """Blob name -> :class:`Blob`, in the order the net creates them."""
        return self._blobs

    @property
    def params(self) -> NamedDict:
        """Layer name -> list of its learnable blobs (weights, bias), for layers that have some."""
        return NamedDict(((v.name, v.blobs) for v in self._layer_views if v.blobs), "layer with learnable blobs",
                         self._source)

    @property
    def layers(self) -> list[Any]:
        """The layers in net order (Python layers are the user's objects)."""
        views: list[Any] = []
        for entry, view in zip(self._engine.entries, self._layer_views, strict=True):
            user = getattr(entry.impl, "user", None) if entry.param.type == "Python" else None
            views.append(view if user is None else user)
        return views

    @property
    def layer_dict(self) -> NamedDict:
        """Layer name -> layer."""
        return NamedDict(zip(self._layer_names, self.layers, strict=True), "layer", self._source)

    @property
    def _layer_names(self) -> list[str]:
        return [e.param.name for e in self._engine.entries]

    @property
    def _blob_names(self) -> list[str]:
        return list(self._blobs)

    @property
    def inputs(self) -> list[str]:
        """The net's input blobs: the tops of Input layers (and deprecated net-level inputs)."""
        return list(self._inputs)

    @property
    def outputs(self) -> list[str]:
        """Blobs no layer consumes, sorted by name as Caffe lists them."""
        return sorted(self._engine.outputs)

    @property
    def top_names(self) -> NamedDict:
        """Layer name -> its top blob names."""
        return NamedDict(((e.param.name, list(e.tops)) for e in self._engine.entries), "layer", self._source)

    @property
    def bottom_names(self) -> NamedDict:
        """Layer name -> its bottom blob names."""
        return NamedDict(((e.param.name, list(e.bottoms)) for e in self._engine.entries), "layer", self._source)

    @property
    def blob_loss_weights(self) -> NamedDict:
        """Blob name -> its loss weight (0 for blobs that are not losses)."""
        return NamedDict(((n, self._loss_weights.get(n, 0.0)) for n in self._blobs), "blob", self._source)

    @property
    def phase(self) -> int:
        """caffe.TRAIN or caffe.TEST."""
        return self._engine.phase

    # -- forward ------------------------------------------------------------------------------

    def _layer_index(self, name: str | None, default: int) -> int:
        if name is None:
            return default
        try:
            return self._layer_names.index(name)
        except ValueError:
            known = ", ".join(self._layer_names)
            raise KeyError(f"{self._source}: no layer {name!r}; the net's are: {known}") from None

    def forward(self, blobs: Sequence[str] | None = None, start: str | None = None, end: str | None = None,
                **kwargs: np.ndarray) -> dict[str, np.ndarray]:
        """Run layers ``start`` .. ``end`` (all by default); keyword arrays are copied into the input blobs first.

        Returns blob name -> data (the blob's own array) for the net outputs (the tops of ``end``
        when given) and the extra ``blobs``.
        """
        first = self._layer_index(start, 0)
        last = self._layer_index(end, len(self._engine.entries) - 1)
        names = set(self.top_names[end] if end is not None else self.outputs) | set(blobs or [])
        if kwargs:
            if set(kwargs) != set(self._inputs):
                raise ConfigError(f"{self._source}: forward() got input arrays {sorted(kwargs)}, the net's inputs "
                                  f"are {self._inputs}")
            for name, array in kwargs.items():
                self._set_batch(name, array, "data")
        self._run(first, last)
        return {name: self._blobs[name].data for name in names}

    def _set_batch(self, name: str, array: np.ndarray, what: str) -> None:
        blob = self._blobs[name]
        array = np.asarray(array)
        if array.ndim == 0 or not blob.shape or array.shape[0] != blob.shape[0]:
            raise ShapeError(f"{self._source}: blob {name!r}: {what} array of shape {array.shape} is not batch "
                             f"sized (the blob is {blob.shape}; reshape the blob first)")
        getattr(blob, what)[...] = array

    def _check_shapes(self) -> None:
        """Re-infer the shapes when an input blob changed shape (errors name the layer, before computing)."""
        current = self._current_input_shapes()
        if current != self._input_shapes:
            self._reshape_all(current)

    def _reshape_all(self, inputs: dict[str, Shape]) -> None:
        data = feed_shapes(list(self._feeds.values()))
        full = shapes.reinfer(self._engine, inputs, data)
        for name, shape in full.items():
            if name not in inputs and self._blobs[name]._set_shape(tuple(shape)):
                self._reset_loss_diff(name)
        self._input_shapes = dict(inputs)

    def _data_batch(self, layer: str) -> dict[str, torch.Tensor]:
        number = self._cursor() if self._cursor is not None else self._batches
        self._batches += 1
        return self._feeds[layer].batch(number)

    def _run(self, first: int, last: int) -> None:
        """Forward through entries ``first`` .. ``last`` (shapes checked first, GPU weights up to date)."""
        self._check_shapes()
        self._push_params()
        passes.forward_range(self, first, last)

    def _push_params(self) -> None:
        for blob in self._layer_blobs():
            blob._push()

    # -- backward -----------------------------------------------------------------------------

    def backward(self, diffs: Sequence[str] | None = None, start: str | None = None, end: str | None = None,
                 **kwargs: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagate from layer ``start`` (the last by default) down to ``end`` (the first).

        Keyword arrays are copied into the output blobs' diffs first (all outputs, batch sized).
        Returns blob name -> diff for the net inputs (the bottoms of ``end`` when given) and ``diffs``.
        """
        last = self._layer_index(start, len(self._engine.entries) - 1)
        first = self._layer_index(end, 0)
        names = set(self.bottom_names[end] if end is not None else self._inputs) | set(diffs or [])
        if kwargs:
            if set(kwargs) != set(self.outputs):
                raise ConfigError(f"{self._source}: backward() got top diffs {sorted(kwargs)}, the net's outputs "
                                  f"are {self.outputs}")
            for name, array in kwargs.items():
                self._set_batch(name, array, "diff")
        self._backprop(last, first)
        return {name: self._blobs[name].diff for name in names}

    def _backprop(self, last: int, first: int) -> None:
        passes.backward_range(self, last, first)

    # -- batches ------------------------------------------------------------------------------

    def forward_all(self, blobs: Sequence[str] | None = None, **kwargs: np.ndarray) -> dict[str, np.ndarray]:
        """Forward any number of inputs, batch by batch (the last one zero-padded); outputs of all of them."""
        return batching.forward_all(self, blobs, kwargs)

    def forward_backward_all(self, blobs: Sequence[str] | None = None, diffs: Sequence[str] | None = None,
                             **kwargs: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Forward and backward any number of inputs and output diffs, batch by batch: (outputs, diffs)."""
        return batching.forward_backward_all(self, blobs, diffs, kwargs)

    def reshape(self) -> None:
        """Propagate the input blobs' shapes through the net (after ``blobs[...].reshape``)."""
        self._reshape_all(self._current_input_shapes())

    # -- weights ------------------------------------------------------------------------------

    def copy_from(self, filename: PathLike) -> None:
        """Copy weights from a caffemodel into same-named layers (Caffe's CopyTrainedLayersFrom)."""
        self._push_params()
        self._engine.load_weights(filename)
        self._params_changed()

    def save(self, filename: PathLike) -> None:
        """Write the net with its weights as a caffemodel."""
        self._push_params()
        cio.write_caffemodel(filename, self._engine.to_caffemodel())

    def share_with(self, other: Net) -> None:
        """Use the learnable blobs of ``other``'s same-named layers (Caffe's ShareTrainedLayersWith)."""
        other._push_params()
        for i, entry in enumerate(self._engine.entries):
            theirs = other._engine.layer_blobs(entry.param.name)
            if theirs is None or not entry.blobs:
                continue
            if len(theirs) != len(entry.blobs):
                raise McnnError(f"{self._source}: layer {entry.param.name!r} has {len(entry.blobs)} learnable blobs, "
                                f"the net it shares with has {len(theirs)}")
            for j, (mine, source) in enumerate(zip(entry.blobs, theirs, strict=True)):
                if tuple(mine.tensor.shape) != tuple(source.tensor.shape):
                    raise ShapeError(f"{self._source}: layer {entry.param.name!r} blob {j} has shape "
                                     f"{tuple(mine.tensor.shape)}, the net it shares with "
                                     f"{tuple(source.tensor.shape)}")
                mine.tensor = source.tensor
                theirs_blob = other._param_blob(source.tensor)
                # Caffe shares the values, not the gradients; a GPU copy is kept once, by its owner.
                shared = theirs_blob if theirs_blob._mirrored else Blob._of_param(source.tensor)
                self._layer_views[i].blobs[j] = self._param_blobs[id(source.tensor)] = shared

    def clear_param_diffs(self) -> None:
        """Zero the diffs of every learnable blob (gradients add up over backward calls until then)."""
        for blob in self._layer_blobs():
            blob._diff.zero_()

    def _layer_blobs(self) -> list[Blob]:
        """Every learnable blob of the layers once, in net order."""
        unique = {id(blob): blob for view in self._layer_views for blob in view.blobs}
        return list(unique.values())

    def _params_changed(self) -> None:
        for blob in self._layer_blobs():
            blob._device_changed()

    # -- for solvers ----------------------------------------------------------------------------

    def _input_tensors(self) -> dict[str, torch.Tensor]:
        """The input blobs' current values on the engine's device (what a solver feeds)."""
        return {name: self._blobs[name]._value(self._engine.device) for name in self._inputs}

    def _store_blobs(self, values: dict[str, torch.Tensor]) -> None:
        """Copy the blobs of a pass the engine ran (a solver's) into this net's blobs."""
        for name, value in values.items():
            if name in self._blobs and name not in self._inputs and self._blobs[name]._store(value):
                self._reset_loss_diff(name)
