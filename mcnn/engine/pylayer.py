"""Python layers: the ``Python`` layer type, whose computation is a user's :class:`Layer` subclass.

As in Caffe, ``python_param { module: "m" layer: "C" param_str: "..." }`` imports module ``m``
(from ``sys.path``), instantiates ``m.C(layer_param)``, sets ``param_str`` and ``phase``, and
calls ``setup(bottom, top)`` once, then ``reshape(bottom, top)`` and ``forward(bottom, top)``
at every pass and ``backward(top, propagate_down, bottom)`` when gradients are needed. The
blobs it sees are :class:`BlobView` objects (NumPy ``data``/``diff``, ``reshape``, ``shape``,
``count``, ``num``/``channels``/``height``/``width``); its learnable blobs, added in ``setup``
with ``self.blobs.add_blob(*shape)``, become the net's learnable blobs of the layer.

The backward runs inside a :class:`torch.autograd.Function`, so Python layers mix with the
engine's layers in one autograd graph. A Python layer is a loss only with ``loss_weight``, as
in Caffe. An exception raised by the user's code is re-raised as :class:`McnnError` naming the
layer, the module and the method (the original is chained as its cause).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from mcnn.caffe.infer import LayerShapes, Shape
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.layers import Layer as EngineLayer
from mcnn.engine.layers import register
from mcnn.errors import ConfigError, McnnError, ShapeError

Tensor = torch.Tensor

#: Batch size of the blobs a layer with bottoms is probed with when the net is built (its tops'
#: leading axis tells whether they are batch first). Any value other than 1 works.
PROBE_BATCH = 2


class LegacyAxes:
    """Caffe's legacy accessors of a blob with a ``shape`` tuple: ``num``, ``channels``, ``height``,
    ``width`` (``Blob::LegacyShape``: 1 beyond the blob's axes; at most 4 axes)."""

    shape: tuple[int, ...]

    def _legacy(self, axis: int) -> int:
        shape = tuple(self.shape)
        if len(shape) > 4:
            raise ShapeError(f"blob of shape {shape}: num/channels/height/width need at most 4 axes")
        return int(shape[axis]) if axis < len(shape) else 1

    @property
    def num(self) -> int:
        """Axis 0 (the batch; 1 for a blob with fewer axes)."""
        return self._legacy(0)

    @property
    def channels(self) -> int:
        """Axis 1."""
        return self._legacy(1)

    @property
    def height(self) -> int:
        """Axis 2."""
        return self._legacy(2)

    @property
    def width(self) -> int:
        """Axis 3."""
        return self._legacy(3)


class BlobView(LegacyAxes):
    """A blob as a Python layer sees it: float32 ``data`` and ``diff`` arrays of one shape."""

    def __init__(self, *shape: int):
        self._data = np.zeros(shape, dtype=np.float32)
        self._diff = np.zeros(shape, dtype=np.float32)

    @property
    def data(self) -> np.ndarray:
        """The values (an array to write into, e.g. ``top[0].data[...] = x``)."""
        return self._data

    @property
    def diff(self) -> np.ndarray:
        """The gradient of the loss with respect to :attr:`data`, same shape."""
        return self._diff

    def reshape(self, *shape: int) -> None:
        """Give the blob a new shape (zeros where the shape changes; kept values where it does not)."""
        dims = tuple(int(d) for d in (shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list))
                                      else shape))
        if any(d < 0 for d in dims):
            raise ValueError(f"blob dims must be >= 0, got {dims}")
        if dims != self._data.shape:
            self._data = np.zeros(dims, dtype=np.float32)
            self._diff = np.zeros(dims, dtype=np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        """The blob's shape."""
        return tuple(self._data.shape)

    @property
    def count(self) -> int:
        """The number of values."""
        return int(self._data.size)

    def _bind(self, values: np.ndarray) -> None:
        """Make ``values`` (float32) the blob's data, resizing the diff to match."""
        self._data = values
        if self._diff.shape != values.shape:
            self._diff = np.zeros(values.shape, dtype=np.float32)


class BlobVec:
    """A layer's learnable blobs (pycaffe's ``layer.blobs``): a list of :class:`BlobView` with ``add_blob``."""

    def __init__(self) -> None:
        self._blobs: list[BlobView] = []

    def add_blob(self, *shape: int) -> None:
        """Append a zero blob of ``shape`` (call it in ``setup``)."""
        self._blobs.append(BlobView(*shape))

    def __getitem__(self, index: int) -> BlobView:
        return self._blobs[index]

    def __len__(self) -> int:
        return len(self._blobs)

    def __iter__(self) -> Iterator[BlobView]:
        return iter(self._blobs)


class Layer:
    """Base class of Python layers (pycaffe's ``caffe.Layer``); override the four methods.

    Before ``setup`` the host sets ``param_str`` (``python_param.param_str``) and ``phase``
    (0 TRAIN, 1 TEST). ``self.blobs`` holds the layer's learnable blobs.
    """

    param_str: str = ""
    phase: int = pb.TEST
    type: str = "Python"

    def __init__(self, param: pb.LayerParameter | None = None):
        self.layer_param = param

    @property
    def blobs(self) -> BlobVec:
        """The learnable blobs (created on first use, so subclasses need not call ``super().__init__``)."""
        vec = self.__dict__.get("_blobs")
        if vec is None:
            vec = self.__dict__["_blobs"] = BlobVec()
        return vec

    def setup(self, bottom: list[BlobView], top: list[BlobView]) -> None:
        """Called once with the bottoms: check parameters, add learnable blobs."""

    def reshape(self, bottom: list[BlobView], top: list[BlobView]) -> None:
        """Called before every forward: give the tops their shapes (``top[i].reshape(...)``)."""

    def forward(self, bottom: list[BlobView], top: list[BlobView]) -> None:
        """Write the tops' ``data`` from the bottoms' ``data``."""

    def backward(self, top: list[BlobView], propagate_down: list[bool], bottom: list[BlobView]) -> None:
        """Write the bottoms' ``diff`` (where ``propagate_down``) and the blobs' ``diff`` from the tops' ``diff``."""


def _load_class(param: pb.LayerParameter) -> type:
    """The class ``python_param.layer`` of module ``python_param.module``; :class:`ConfigError` naming both."""
    p = param.python_param
    if not p.module or not p.layer:
        raise ConfigError(f"layer {param.name!r}: a Python layer needs python_param.module and python_param.layer")
    try:
        module = importlib.import_module(p.module)
    except Exception as exc:
        raise ConfigError(f"layer {param.name!r}: cannot import python_param.module {p.module!r} "
                          f"({type(exc).__name__}: {_one_line(exc)}); is its folder on PYTHONPATH?") from exc
    cls = getattr(module, p.layer, None)
    if not isinstance(cls, type):
        raise ConfigError(f"layer {param.name!r}: module {p.module!r} has no class {p.layer!r}")
    return cls


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"


def _array(tensor: Tensor) -> np.ndarray:
    """A float32 CPU array of ``tensor``'s values (shares memory for CPU float32 tensors)."""
    return tensor.detach().to("cpu", torch.float32).numpy()


class _PythonFunction(torch.autograd.Function):
    """Autograd node of one Python-layer pass: the user's forward, then its backward for the gradients."""

    @staticmethod
    def forward(ctx: Any, host: Python, n_bottoms: int, *tensors: Tensor) -> tuple[Tensor, ...]:
        bottoms, params = tensors[:n_bottoms], tensors[n_bottoms:]
        tops = host.run_forward(bottoms, params)
        ctx.host, ctx.n_bottoms = host, n_bottoms
        ctx.devices = [t.device for t in tensors]
        ctx.bottom_values = [_array(b).copy() for b in bottoms]
        ctx.top_values = [_array(t).copy() for t in tops]
        ctx.save_for_backward(*params)
        return tuple(tops)

    @staticmethod
    def backward(ctx: Any, *top_grads: Tensor | None) -> tuple[Tensor | None, ...]:
        needs = list(ctx.needs_input_grad[2:])
        grads = ctx.host.run_backward(ctx.bottom_values, ctx.top_values, ctx.saved_tensors, list(top_grads),
                                      needs[:ctx.n_bottoms])
        return (None, None, *[torch.from_numpy(g).to(device) if need else None
                              for g, need, device in zip(grads, needs, ctx.devices, strict=True)])


@register
class Python(EngineLayer):
    """The engine side of a Python layer: hosts one instance of the user's class per net layer."""

    type = "Python"

    def __init__(self, param: pb.LayerParameter):
        super().__init__(param)
        cls = _load_class(param)
        self.module, self.class_name = param.python_param.module, param.python_param.layer
        self.user = self._call(cls, "__init__", param)
        self.user.param_str = param.python_param.param_str
        self.bottom_views: list[BlobView] = []
        self.top_views = [BlobView() for _ in param.top]
        self._set_up = False

    def _call(self, fn: Any, what: str, *args: Any) -> Any:
        """Run user code; any exception becomes one McnnError naming the layer, module, class and method."""
        try:
            return fn(*args)
        except McnnError:
            raise
        except Exception as exc:
            raise McnnError(f"layer {self.name!r} (Python layer {self.module}.{self.class_name}): {what} failed: "
                            f"{type(exc).__name__}: {_one_line(exc)}") from exc

    def dynamic_shapes(self, bottoms: Sequence[Shape], phase: int) -> LayerShapes:
        """Run ``setup`` once and ``reshape`` on zero bottoms of batch :data:`PROBE_BATCH`; read the tops' shapes.

        Without bottoms the tops are taken as batch first (a data layer); with bottoms they are batch
        first when every top's leading axis is the probe batch (else they are full shapes, e.g. a loss).
        """
        self._setup([np.zeros((PROBE_BATCH, *shape), dtype=np.float32) for shape in bottoms], phase)
        self._call(self.user.reshape, "reshape", self.bottom_views, self.top_views)
        tops = [view.shape for view in self.top_views]
        batch_axis = all(len(t) and (t[0] == PROBE_BATCH or not bottoms) for t in tops)
        per_image = [t[1:] for t in tops] if batch_axis else tops
        params = [blob.shape for blob in self.user.blobs]
        return LayerShapes(per_image, params, batch_axis=batch_axis)

    def _setup(self, bottoms: Sequence[np.ndarray], phase: int) -> None:
        """Set ``phase`` and call the user's ``setup`` (once) on bottoms holding ``bottoms``."""
        self.user.phase = phase
        self.bottom_views = [BlobView() for _ in bottoms]
        for view, values in zip(self.bottom_views, bottoms, strict=True):
            view._bind(values)
        self._call(self.user.setup, "setup", self.bottom_views, self.top_views)
        self._set_up = True

    def initial_blobs(self) -> list[Tensor]:
        """The values ``setup`` gave the layer's learnable blobs."""
        return [torch.from_numpy(blob.data.copy()) for blob in self.user.blobs]

    def forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor], train: bool) -> list[Tensor]:
        """The user's reshape and forward; under autograd, through :class:`_PythonFunction` for the backward."""
        if not self._set_up:  # built outside a Net (make_layer): set up on the first bottoms
            self._setup([_array(b).copy() for b in bottoms], pb.TRAIN if train else pb.TEST)
        tensors = [*bottoms, *params]
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return list(_PythonFunction.apply(self, len(bottoms), *tensors))
        return self.run_forward(bottoms, params)

    def _bind(self, bottoms: Sequence[np.ndarray], params: Sequence[Tensor]) -> list[np.ndarray]:
        """Point the bottom views and the learnable blobs at the current values; returns the blobs' arrays."""
        if len(self.bottom_views) != len(bottoms):
            self.bottom_views = [BlobView() for _ in bottoms]
        for view, values in zip(self.bottom_views, bottoms, strict=True):
            view._bind(values)
        arrays = [_array(p) for p in params]
        for blob, values in zip(self.user.blobs, arrays, strict=True):
            blob._bind(values)
        return arrays

    @staticmethod
    def _write_back(params: Sequence[Tensor], arrays: Sequence[np.ndarray]) -> None:
        """Copy blob values the user changed back into tensors whose memory they do not share (GPU)."""
        with torch.no_grad():
            for p, values in zip(params, arrays, strict=True):
                if p.device.type != "cpu" or p.dtype != torch.float32:
                    p.copy_(torch.from_numpy(values))

    def run_forward(self, bottoms: Sequence[Tensor], params: Sequence[Tensor]) -> list[Tensor]:
        """One pass of the user's ``reshape`` and ``forward``; the tops as float32 tensors on the bottoms' device."""
        arrays = self._bind([_array(b).copy() for b in bottoms], params)
        self._call(self.user.reshape, "reshape", self.bottom_views, self.top_views)
        self._call(self.user.forward, "forward", self.bottom_views, self.top_views)
        self._write_back(params, arrays)
        device = bottoms[0].device if bottoms else self.device
        return [torch.from_numpy(view.data.copy()).to(device) for view in self.top_views]

    def run_backward(self, bottom_values: Sequence[np.ndarray], top_values: Sequence[np.ndarray],
                     params: Sequence[Tensor], top_grads: Sequence[Tensor | None],
                     propagate_down: list[bool]) -> list[np.ndarray]:
        """The user's ``backward`` on the values of the pass it differentiates: bottom then blob diffs (float32)."""
        self._bind([v.copy() for v in bottom_values], params)
        for view, values, grad in zip(self.top_views, top_values, top_grads, strict=True):
            view._bind(values.copy())
            view.diff[...] = 0 if grad is None else _array(grad).reshape(values.shape)
        for view in self.bottom_views:
            view.diff[...] = 0
        for blob in self.user.blobs:
            blob.diff[...] = 0
        self._call(self.user.backward, "backward", self.top_views, propagate_down, self.bottom_views)
        out = []
        for i, (view, values) in enumerate(zip(self.bottom_views, bottom_values, strict=True)):
            if view.diff.size != values.size:
                raise McnnError(f"layer {self.name!r}: backward left bottom {i} a diff of shape {view.diff.shape}, "
                                f"the bottom has shape {values.shape}")
            out.append(view.diff.reshape(values.shape).astype(np.float32, copy=True))
        out.extend(blob.diff.astype(np.float32, copy=True) for blob in self.user.blobs)
        return out
