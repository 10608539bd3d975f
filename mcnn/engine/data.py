"""Caffe's Data layer: LMDB records in key order, transformed like Caffe's DataTransformer.

Batch ``b`` of a Data layer holds the records at stream positions ``b*B .. b*B+B-1`` (modulo
the database size, so reading wraps around as Caffe's cursor does). With several training
processes, process ``r`` of ``W`` takes every W-th record of the stream (Caffe's multi-GPU
data split), so together they read what one process with batch ``W*B`` would.

Random crops and mirrors are drawn from a generator seeded by (seed, phase, stream
position): a batch is the same whichever process or worker builds it, and a resumed run
sees exactly the batches an uninterrupted one would have.

HDF5Data layers are fed by :class:`mcnn.engine.hdf5data.HDF5Feed` under the same batch-number
scheme; :func:`make_feed` builds the feed of either type.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.transform import LmdbRecords, Transformer, data_transform, ignored_data_fields
from mcnn.engine.hdf5data import HDF5Feed
from mcnn.errors import DataError, ShapeError

__all__ = ["FEED_TYPES", "DataError", "DataFeed", "HDF5Feed", "LmdbRecords", "Transformer", "batches", "feed_shapes",
           "make_feed"]

#: Layer types whose tops a feed fills (the engine reads their data; the net has no forward for them).
FEED_TYPES = ("Data", "HDF5Data")


class DataFeed:
    """The batches one Data layer produces, by batch number (see the module docstring)."""

    def __init__(self, layer: pb.LayerParameter, phase: int, seed: int, rank: int = 0, world: int = 1,
                 base_dir: Path | None = None):
        dp = layer.data_param
        if dp.backend != pb.DataParameter.LMDB:
            raise DataError(f"layer {layer.name!r}: only backend: LMDB is supported (Caffe's default is LEVELDB; "
                            "add `backend: LMDB` to data_param)")
        if dp.batch_size < 1:
            raise DataError(f"layer {layer.name!r}: data_param.batch_size must be set")
        source = Path(dp.source)
        if not source.exists() and base_dir is not None and (base_dir / source).exists():
            source = base_dir / source
        self.name = layer.name
        self.records = LmdbRecords(source, layer.name)
        self.batch_size = int(dp.batch_size)
        self.phase, self.seed, self.rank, self.world = phase, seed, rank, world
        self.tops = list(layer.top)
        self.transformer = Transformer(data_transform(layer), phase, self.records.shape, layer.name, base_dir,
                                       encoded=self.records.encoded)
        #: Log lines (severity, source location, message) about fields Caffe ignores in this layer.
        self.notes = ignored_data_fields(layer) + self.transformer.notes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Per-image shape of the ``data`` top (after crop)."""
        return self.transformer.out_shape

    @property
    def top_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-image shape of the data top (the label top is a scalar, left to the shape rule)."""
        return {self.tops[0]: tuple(self.image_shape)}

    @property
    def source(self) -> Path:
        """The LMDB the records come from (for error messages)."""
        return self.records.path

    def positions(self, batch: int) -> list[int]:
        """Stream positions (record indices before the modulo) of batch ``batch`` on this process."""
        start = batch * self.batch_size
        return [(start + j) * self.world + self.rank for j in range(self.batch_size)]

    def batch(self, batch: int) -> dict[str, torch.Tensor]:
        """``{data: B x C x H x W float32, label: B float32}`` for batch number ``batch``."""
        images, labels = [], []
        for pos in self.positions(batch):
            image, label = self.records.image(pos)
            rng = np.random.default_rng([self.seed, self.phase, pos])
            images.append(self.transformer(image, rng))
            labels.append(label)
        out = {self.tops[0]: torch.from_numpy(np.stack(images))}
        if len(self.tops) > 1:
            out[self.tops[1]] = torch.tensor(labels, dtype=torch.float32)
        return out


Feed = DataFeed | HDF5Feed


def make_feed(layer: pb.LayerParameter, phase: int, seed: int, rank: int = 0, world: int = 1,
              base_dir: Path | None = None) -> Feed:
    """The feed of a layer of :data:`FEED_TYPES` (arguments as :class:`DataFeed`)."""
    cls = HDF5Feed if layer.type == "HDF5Data" else DataFeed
    return cls(layer, phase, seed, rank=rank, world=world, base_dir=base_dir)


def feed_shapes(feeds: Sequence[Feed]) -> dict[str, tuple[int, ...]]:
    """Per-image shapes of the tops ``feeds`` fill, for :class:`mcnn.engine.net.Net`'s ``data_shapes``."""
    shapes: dict[str, tuple[int, ...]] = {}
    for feed in feeds:
        shapes.update(feed.top_shapes)
    return shapes


class _BatchDataset(torch.utils.data.Dataset):
    def __init__(self, feeds: Sequence[Feed], start: int, count: int, step: int = 1):
        self.feeds, self.start, self.count, self.step = list(feeds), start, count, step

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for feed in self.feeds:
            out.update(feed.batch(self.start + i * self.step))
        return out


def batches(feeds: Sequence[Feed], start: int, count: int, workers: int = 0,
            pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """An iterator over ``count`` consecutive batch numbers from ``start`` of every feed.

    With ``workers`` > 0 records are decoded and transformed in that many processes while
    the net computes; the batches and their order are the same either way.
    """
    dataset = _BatchDataset(feeds, start, count)
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=pin_memory, persistent_workers=False,
                                       prefetch_factor=2 if workers else None)


def feed_mismatch(train: Sequence[Feed], test: Sequence[Feed]) -> ShapeError | None:
    """The error naming the TEST data layer whose inputs differ in shape from the TRAIN layer's, if any.

    The test nets share the train net's weights, so a record shape that changes a weight's shape fails
    first at that weight's layer (e.g. fc1); naming the two LMDBs says where the difference comes from.
    """
    by_top = {feed.tops[0]: feed for feed in train}
    for feed in test:
        other = by_top.get(feed.tops[0])
        if other is not None and tuple(other.image_shape) != tuple(feed.image_shape):
            ours, theirs = ("x".join(str(int(n)) for n in f.image_shape) for f in (feed, other))
            return ShapeError(f"TEST layer {feed.name!r} gives {ours} inputs from {feed.source}, the TRAIN "
                              f"layer {other.name!r} gives {theirs} from {other.source}; the test net shares "
                              "the train net's weights, so both need inputs of one shape")
    return None
