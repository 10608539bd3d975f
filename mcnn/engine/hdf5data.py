"""Caffe's HDF5Data layer as a feed: rows of the datasets named by the tops, from a list of .h5 files.

``hdf5_data_param.source`` is a text file naming one .h5 file per line (src/caffe/layers/hdf5_data_layer.cpp
reads it word by word, paths relative to the working folder; a path that does not exist there is
looked up next to the list file, then in the net's folder). Every file holds one dataset per top,
named like the top, float or integer, all with the same number of rows (axis 0); a top's blob is
``batch_size x`` the dataset's other axes (labels ``N`` give a ``batch_size`` top, multi-label targets
``N x K`` a ``batch_size x K`` top), as float32.

Rows are read as Caffe reads them: file after file in list order, row after row, wrapping from the
last file to the first. Stream position ``p`` is row ``p mod T`` of that sequence (``T`` rows in
all); with several training processes, process ``r`` of ``W`` takes every W-th row, as Caffe's
HDF5DataLayer::Skip does.

``shuffle: true``: Caffe shuffles the file order at every pass over the files and the rows of a file
each time it is loaded, with its own ``std::random_shuffle`` state, which cannot be reproduced.
Here pass ``e = p // T`` visits the files in the order of a permutation drawn from
``numpy.random.default_rng([seed, phase, e])`` and the rows of file ``f`` in the order of one drawn
from ``default_rng([seed, phase, e, f])`` (``seed``: the solver's ``random_seed``): a different order
in every pass, the same in a resumed run as in an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import DataError


def _list_files(layer: pb.LayerParameter, base_dir: Path | None) -> tuple[Path, list[Path]]:
    """The source list file and the .h5 files it names (resolved), or DataError naming the layer and file."""
    source = Path(layer.hdf5_data_param.source)
    if not source.exists() and base_dir is not None and (base_dir / source).exists():
        source = base_dir / source
    try:
        names = source.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"layer {layer.name!r}: hdf5_data_param.source {source}: cannot read the list of HDF5 "
                        f"files ({exc.__class__.__name__})") from None
    if not names:
        raise DataError(f"layer {layer.name!r}: {source}: lists no HDF5 file (expected one .h5 path per line)")
    files = []
    for line, name in enumerate(names, 1):
        candidates = [Path(name), source.parent / name] + ([base_dir / name] if base_dir is not None else [])
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{source}: entry {line}: {name}: no such HDF5 file (layer {layer.name!r})")
        files.append(found)
    return source, files


class HDF5Feed:
    """The batches one HDF5Data layer produces, by batch number (see the module docstring).

    ``seed`` orders the rows under ``shuffle``; ``rank``/``world`` split the training stream between
    processes. Attributes as :class:`mcnn.engine.data.DataFeed`: ``name``, ``tops``, ``batch_size``,
    ``notes``, ``image_shape``, :attr:`top_shapes`, :attr:`source`.
    """

    def __init__(self, layer: pb.LayerParameter, phase: int, seed: int, rank: int = 0, world: int = 1,
                 base_dir: Path | None = None):
        p = layer.hdf5_data_param
        if layer.HasField("transform_param"):  # hdf5_data_layer.cpp: "does not transform data"
            raise DataError(f"layer {layer.name!r}: HDF5Data does not transform data; remove transform_param")
        if p.batch_size < 1:
            raise DataError(f"layer {layer.name!r}: hdf5_data_param.batch_size must be set")
        if not len(layer.top):
            raise DataError(f"layer {layer.name!r}: HDF5Data needs at least one top (the dataset names)")
        self.name, self.tops = layer.name, list(layer.top)
        self.batch_size, self.shuffle = int(p.batch_size), bool(p.shuffle)
        self.phase, self.seed, self.rank, self.world = phase, seed, rank, world
        self.list_file, self.files = _list_files(layer, base_dir)
        #: Rows of each file, and the per-row shape of each top (the datasets' axes after the first).
        self.rows: list[int] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        for path in self.files:
            self.rows.append(self._check_file(path))
        self.total = sum(self.rows)
        if self.total == 0:
            raise DataError(f"layer {self.name!r}: the files of {self.list_file} hold no rows")
        #: Log lines (severity, source location, message), as DataFeed has; none for HDF5Data.
        self.notes: list[tuple[str, str, str]] = []
        self._cache: tuple[int, dict[str, np.ndarray]] | None = None

    def _check_file(self, path: Path) -> int:
        """Rows of ``path``; DataError for a missing, non-numeric or mis-shaped top dataset."""
        try:
            handle = h5py.File(path, "r")
        except OSError:
            raise DataError(f"{path}: not an HDF5 file (listed in {self.list_file})") from None
        with handle:
            rows = None
            for top in self.tops:
                item = handle.get(top)
                if not isinstance(item, h5py.Dataset) or item.dtype.kind not in "fiu" or item.ndim < 1:
                    raise DataError(f"{path}: dataset {top!r}: expected a float or integer dataset with at least "
                                    f"one axis named like top {top!r} of layer {self.name!r}")
                shape = tuple(int(n) for n in item.shape[1:])
                if self.shapes.setdefault(top, shape) != shape:
                    raise DataError(f"{path}: dataset {top!r} has rows of shape {shape}, the first file's are "
                                    f"{self.shapes[top]} (layer {self.name!r})")
                if rows is not None and item.shape[0] != rows:
                    raise DataError(f"{path}: dataset {top!r} has {item.shape[0]} rows, {self.tops[0]!r} has {rows}")
                rows = int(item.shape[0])
        return int(rows or 0)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Per-row shape of the first top."""
        return self.shapes[self.tops[0]]

    @property
    def top_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-row shape of every top (the shapes the net's HDF5Data layer gives, batch axis left out)."""
        return dict(self.shapes)

    @property
    def source(self) -> Path:
        """The list file the rows come from (for error messages)."""
        return self.list_file

    def positions(self, batch: int) -> list[int]:
        """Stream positions of batch ``batch`` on this process (before wrapping)."""
        start = batch * self.batch_size
        return [(start + j) * self.world + self.rank for j in range(self.batch_size)]

    def row(self, position: int) -> tuple[int, int]:
        """(file index, row in that file) at stream position ``position``."""
        epoch, offset = divmod(position, self.total)
        order = range(len(self.files))
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.phase, epoch]).permutation(len(self.files)).tolist()
        for f in order:
            if offset < self.rows[f]:
                if self.shuffle:
                    rows = np.random.default_rng([self.seed, self.phase, epoch, f]).permutation(self.rows[f])
                    return f, int(rows[offset])
                return f, offset
            offset -= self.rows[f]
        raise AssertionError("unreachable: offset is below the total row count")

    def _arrays(self, f: int) -> dict[str, np.ndarray]:
        # one file in memory at a time, as Caffe's LoadHDF5FileData holds one
        if self._cache is None or self._cache[0] != f:
            with h5py.File(self.files[f], "r") as handle:
                self._cache = (f, {top: np.asarray(handle[top][()], dtype=np.float32) for top in self.tops})
        return self._cache[1]

    def batch(self, batch: int) -> dict[str, torch.Tensor]:
        """``{top: batch_size x <row shape> float32}`` for batch number ``batch``."""
        out: dict[str, list[np.ndarray]] = {top: [] for top in self.tops}
        for pos in self.positions(batch):
            f, r = self.row(pos)
            arrays = self._arrays(f)
            for top in self.tops:
                out[top].append(arrays[top][r])
        return {top: torch.from_numpy(np.stack(values)) for top, values in out.items()}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded file (DataLoader workers load their own)."""
        state = dict(self.__dict__)
        state["_cache"] = None
        return state
