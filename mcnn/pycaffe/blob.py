"""pycaffe's Blob: an N-d float32 array (``data``) and its gradient (``diff``), shared with the engine.

On the CPU ``data`` and ``diff`` are NumPy views of the very tensors the engine computes with
(a learnable blob's ``data`` is the torch Parameter's memory), so in-place writes take effect
at the next forward or update. In GPU mode a learnable blob keeps a CPU copy synchronised like
Caffe's SyncedMemory: reading ``data`` brings the device values over, and a CPU copy that was
handed out is written back to the device before the next computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mcnn.engine.pylayer import LegacyAxes
from mcnn.errors import ShapeError


class Blob(LegacyAxes):
    """A Caffe blob of ``shape`` (any number of axes), zero-filled.

    ``data``/``diff`` are NumPy float32 arrays sharing memory with the blob; ``reshape`` changes
    the shape (the values are kept when the count is unchanged, zeroed otherwise). A blob stays
    valid after its net is gone.
    """

    def __init__(self, shape: Sequence[int] = ()):
        self._data = torch.zeros(tuple(int(d) for d in shape), dtype=torch.float32)
        self._diff = torch.zeros_like(self._data)
        self._param: torch.nn.Parameter | None = None  # the engine's tensor, for a learnable blob
        self._mirrored = False     # the engine's tensor lives on a GPU; _data/_diff are CPU copies
        self._cpu_handed = False   # the CPU copy was handed out since the last push (GPU only)
        self._device_fresh = False  # the device holds newer values than the CPU copy (GPU only)

    @classmethod
    def _of_param(cls, param: torch.nn.Parameter) -> Blob:
        """The blob of one learnable tensor: its memory on the CPU, a synchronised copy on a GPU."""
        blob = cls.__new__(cls)
        blob._param = param
        blob._mirrored = param.device.type != "cpu"
        blob._cpu_handed = False
        blob._device_fresh = False
        if blob._mirrored:
            blob._data = param.detach().cpu().clone()
        else:
            blob._data = param.data
        blob._diff = torch.zeros_like(blob._data)
        return blob

    # -- pycaffe's properties ------------------------------------------------------------------

    @property
    def data(self) -> np.ndarray:
        """The values, a float32 array of :attr:`shape` that shares the blob's memory."""
        if self._mirrored:
            if self._device_fresh:
                with torch.no_grad():
                    self._data.copy_(self._param.detach())  # type: ignore[union-attr]
                self._device_fresh = False
            self._cpu_handed = True
        return self._data.numpy()

    @property
    def diff(self) -> np.ndarray:
        """The gradient, a float32 array of :attr:`shape` that shares the blob's memory."""
        return self._diff.numpy()

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape (Caffe's ``shape()``), batch axis first."""
        return tuple(self._data.shape)

    @property
    def count(self) -> int:
        """The number of values."""
        return math.prod(self._data.shape)

    def reshape(self, *shape: int) -> None:
        """Give the blob a new shape (``blob.reshape(n, c, h, w)``); values kept if the count is unchanged."""
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        dims = tuple(int(d) for d in shape)
        if any(d < 0 for d in dims):
            raise ShapeError(f"Blob.reshape{dims}: dimensions must be non-negative")
        self._set_shape(dims)

    def __repr__(self) -> str:
        return f"Blob(shape={self.shape})"

    # -- what the net and solver use -----------------------------------------------------------

    def _set_shape(self, dims: tuple[int, ...]) -> bool:
        """Reshape data and diff together; True when new (zeroed) memory was allocated."""
        if dims == tuple(self._data.shape):
            return False
        fresh = math.prod(dims) != self._data.numel()
        if fresh:
            self._data = torch.zeros(dims, dtype=torch.float32)
            self._diff = torch.zeros(dims, dtype=torch.float32)
        else:
            self._data = self._data.view(dims)
            self._diff = self._diff.view(dims)
        if self._param is not None:
            with torch.no_grad():
                self._param.data = self._data.to(self._param.device) if self._mirrored else self._data
        return fresh

    def _store(self, value: torch.Tensor) -> bool:
        """Copy a computed value in (resizing when its shape differs); True when the memory is new."""
        fresh = self._set_shape(tuple(value.shape))
        with torch.no_grad():
            self._data.copy_(value.detach())
        return fresh

    def _store_diff(self, value: torch.Tensor, accumulate: bool) -> None:
        """Write (or add) a gradient into ``diff``."""
        with torch.no_grad():
            grad = value.detach().reshape(self._diff.shape).to(self._diff.device)
            if accumulate:
                self._diff.add_(grad)
            else:
                self._diff.copy_(grad)

    def _value(self, device: torch.device) -> torch.Tensor:
        """A private copy of the values on ``device`` (the net's input to a layer)."""
        return self._data.to(device, copy=True)

    def _push(self) -> None:
        """Write a handed-out CPU copy back to the GPU tensor (GPU mode only)."""
        if self._mirrored and self._cpu_handed:
            with torch.no_grad():
                self._param.data.copy_(self._data)  # type: ignore[union-attr]
            self._cpu_handed = False

    def _device_changed(self) -> None:
        """Note that the engine changed the tensor (an update, a load): the CPU copy is stale (GPU only)."""
        if self._mirrored:
            self._device_fresh = True
            self._cpu_handed = False
