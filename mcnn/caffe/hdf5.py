"""Caffe's HDF5 files: ``.caffemodel.h5`` weights, ``.solverstate.h5`` solver states, and data files.

Layouts as Caffe writes and reads them:

- weights (src/caffe/net.cpp, ToHDF5 / CopyTrainedLayersFromHDF5): a group ``data`` holding one group
  per layer of the net (also for layers without blobs), and in it one float32 dataset per blob,
  named by the blob index (``data/conv1/0`` the weights, ``data/conv1/1`` the bias), in the blob's
  N-D shape; ``snapshot_diff`` adds a ``diff`` group of the same layout.
- solver states (src/caffe/solvers/sgd_solver.cpp, SnapshotSolverStateToHDF5): int datasets ``iter``
  and ``current_step`` (shape (1,)), a string dataset ``learned_net`` (the weights file's path), and a
  group ``history`` with one float32 dataset per history blob named by its index.

Caffe picks the format by the file name: a name ending in ``.h5`` is HDF5 (src/caffe/net.cpp
CopyTrainedLayersFrom, src/caffe/solver.cpp Restore). Files are written under a temporary name, then
renamed, so a reader sees either no file or a complete one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np

from mcnn.caffe.io import array_to_blob, blob_to_array
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import CaffeFormatError
from mcnn.fsutil import temporary_sibling

PathLike = str | os.PathLike[str]


def is_hdf5_name(path: PathLike) -> bool:
    """Whether Caffe would read ``path`` as HDF5 (its name ends in ``.h5``)."""
    return os.fspath(path).endswith(".h5")


def _atomic_h5(path: PathLike, fill: Callable[[h5py.File], None]) -> Path:
    """Create ``path`` with ``fill(file)`` under a temporary name, then rename it into place."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        with h5py.File(tmp, "w") as handle:
            fill(handle)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _blob_array(blob: pb.BlobProto, where: str) -> np.ndarray:
    return blob_to_array(blob, where).astype(np.float32, copy=False)


def write_caffemodel_h5(path: PathLike, model: pb.NetParameter) -> Path:
    """Write the layers' blobs of ``model`` (a NetParameter with ``blobs``) as Caffe's ``.caffemodel.h5``."""
    def fill(handle: h5py.File) -> None:
        data = handle.create_group("data")
        for layer in model.layer:
            group = data.create_group(layer.name)
            for j, blob in enumerate(layer.blobs):
                group.create_dataset(str(j), data=_blob_array(blob, f"{path}: layer {layer.name!r} blob {j}"))
    return _atomic_h5(path, fill)


def _ordered_blobs(group: h5py.Group, where: str) -> list[np.ndarray]:
    """The datasets ``0``, ``1``, ... of ``group`` in index order; an error for any other name."""
    names = list(group.keys())
    if sorted(names, key=lambda n: (len(n), n)) != [str(i) for i in range(len(names))]:
        raise CaffeFormatError(f"{where}: blob datasets must be named 0..{len(names) - 1}, got {', '.join(names)}")
    out = []
    for i in range(len(names)):
        item = group[str(i)]
        if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu":
            raise CaffeFormatError(f"{where}/{i}: expected a numeric dataset")
        out.append(np.asarray(item[()], dtype=np.float32))
    return out


def read_caffemodel_h5(path: PathLike) -> pb.NetParameter:
    """Read a ``.caffemodel.h5`` into a NetParameter whose layers carry only ``name`` and ``blobs``.

    The result loads like a binary caffemodel (by layer name, :meth:`mcnn.engine.net.Net.load_weights`);
    a layer group without datasets gives a layer without blobs (as ToHDF5 writes for ReLU).
    :class:`CaffeFormatError` names the file and group for a file that is not Caffe's layout.
    """
    model = pb.NetParameter()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CaffeFormatError(f"{path}: not an HDF5 file ({exc})") from None
    with handle:
        data = handle.get("data")
        if not isinstance(data, h5py.Group):
            raise CaffeFormatError(f"{path}: no group 'data' (Caffe's .caffemodel.h5 keeps the weights in "
                                   "data/<layer>)")
        for name, group in data.items():
            if not isinstance(group, h5py.Group):
                raise CaffeFormatError(f"{path}: data/{name} is not a group")
            layer = model.layer.add(name=name)
            layer.blobs.extend(array_to_blob(b) for b in _ordered_blobs(group, f"{path}: data/{name}"))
    return model


def write_solverstate_h5(path: PathLike, iteration: int, learned_net: str, current_step: int,
                         history: Sequence[np.ndarray]) -> Path:
    """Write Caffe's ``.solverstate.h5``: ``iter``, ``learned_net``, ``current_step``, ``history/<i>``."""
    def fill(handle: h5py.File) -> None:
        handle.create_dataset("iter", data=np.array([iteration], dtype=np.int32))
        # H5LTmake_dataset_string: a scalar fixed-length C string, NUL terminated
        text = learned_net.encode("utf-8")
        handle.create_dataset("learned_net", data=np.array(text + b"\0", dtype=f"S{len(text) + 1}"))
        handle.create_dataset("current_step", data=np.array([current_step], dtype=np.int32))
        group = handle.create_group("history")
        for i, h in enumerate(history):
            group.create_dataset(str(i), data=np.asarray(h, dtype=np.float32))
    return _atomic_h5(path, fill)


def _int_value(handle: h5py.File, name: str, path: PathLike) -> int:
    item = handle.get(name)
    if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "iu" or item.size != 1:
        raise CaffeFormatError(f"{path}: dataset {name!r} must hold one integer")
    return int(np.asarray(item[()]).reshape(-1)[0])


def read_solverstate_h5(path: PathLike) -> pb.SolverState:
    """Read a ``.solverstate.h5`` into a SolverState message (iter, learned_net, current_step, history)."""
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise CaffeFormatError(f"{path}: not an HDF5 file ({exc})") from None
    with handle:
        state = pb.SolverState(iter=_int_value(handle, "iter", path),
                               current_step=_int_value(handle, "current_step", path))
        if "learned_net" in handle:  # optional, as in RestoreSolverStateFromHDF5
            raw = handle["learned_net"][()]
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
            state.learned_net = text.rstrip("\0")
        history = handle.get("history")
        if not isinstance(history, h5py.Group):
            raise CaffeFormatError(f"{path}: no group 'history'")
        state.history.extend(array_to_blob(h) for h in _ordered_blobs(history, f"{path}: history"))
    return state


def legacy_4d(array: np.ndarray) -> np.ndarray:
    """``array`` (batch first, at most 4 axes) as num x channels x height x width (Caffe's Reshape(n, c, h, w))."""
    if array.ndim > 4:
        raise ValueError(f"at most 4 axes, got shape {array.shape}")
    return array.reshape(array.shape + (1,) * (4 - array.ndim))


class RowAppender:
    """The file of an HDF5Output layer: float32 datasets ``data`` and ``label``, rows appended per forward.

    Caffe's HDF5OutputLayer (src/caffe/layers/hdf5_output_layer.cpp) creates ``file_name`` at setup and
    writes the two datasets at the first forward (a second forward fails there, the datasets existing);
    here the first :meth:`append` creates the file (under a temporary name, renamed once written) and
    each later one appends its rows, so a TEST pass of ``test_iter`` batches keeps them all. Rows are
    stored num x channels x height x width like Caffe's blobs.
    """

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self._file: h5py.File | None = None

    def append(self, data: np.ndarray, label: np.ndarray) -> None:
        """Add the rows of ``data`` and ``label`` (same batch size, at most 4 axes each); flushed to disk."""
        data, label = legacy_4d(np.asarray(data, np.float32)), legacy_4d(np.asarray(label, np.float32))
        if data.shape[0] != label.shape[0]:
            raise ValueError(f"data and label must have the same batch size, got {data.shape[0]} and {label.shape[0]}")
        if self._file is None:
            if self.path.exists() and not self.path.is_file():  # never rename over a device or a folder
                raise ValueError(f"{self.path}: exists and is not a regular file; HDF5Output needs a file name")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = temporary_sibling(self.path)
            handle = h5py.File(tmp, "w")
            for name, rows in (("data", data), ("label", label)):
                handle.create_dataset(name, data=rows, maxshape=(None, *rows.shape[1:]), chunks=True)
            handle.flush()
            os.replace(tmp, self.path)  # the open handle follows the file to its final name
            self._file = handle
            return
        for name, rows in (("data", data), ("label", label)):
            dataset = self._file[name]
            if dataset.shape[1:] != rows.shape[1:]:
                raise ValueError(f"{self.path}: {name} rows of shape {rows.shape[1:]}, the file's are "
                                 f"{dataset.shape[1:]}")
            start = dataset.shape[0]
            dataset.resize(start + rows.shape[0], axis=0)
            dataset[start:] = rows
        self._file.flush()

    def close(self) -> None:
        """Close the file (also done when the appender is garbage-collected)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        self.close()
