"""Decoding fields into 8-bit C x H x W arrays, in worker processes with bounded memory.

:class:`Decoder` reads one field's channel files, checks bit depth and size, applies the
intensity mapping and an optional resize, and returns the uint8 image. :class:`WorkerPool` runs
decoder calls in ``workers`` processes (or in this process for ``workers=1``) and yields results in
submission order, keeping at most ``window`` calls in flight, so memory stays bounded whatever
the dataset size.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, Field
from mcnn.datasets.imageio import bit_depth, check_plane
from mcnn.errors import BadInputError
from mcnn.prep.normalize import IntensityMapping, float_to_uint8, histogram, map_planes

PlateStats = Sequence[tuple[float, float]]


def default_workers() -> int:
    """The ``--workers`` default: the number of CPUs available to this process, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float32 plane resized to ``height`` x ``width`` (area averaging when shrinking, bilinear
    when enlarging)."""
    from PIL import Image

    if plane.shape == (height, width):
        return plane
    shrink = height <= plane.shape[0] and width <= plane.shape[1]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((width, height), method), dtype=np.float32)


@dataclass
class Decoder:
    """Turns fields of ``dataset`` under ``raw`` into uint8 C x H x W images.

    ``dtype`` and ``shape`` (H, W) are what every channel file must have (``shape`` None: sizes may
    vary and are resized); ``target`` is the (H, W) written to the LMDB.
    """

    dataset: Dataset
    raw: Path
    mapping: IntensityMapping
    dtype: str
    shape: tuple[int, int] | None
    target: tuple[int, int]

    def planes(self, f: Field) -> list[np.ndarray]:
        """The checked raw planes of ``f``."""
        planes = self.dataset.read_field(self.raw, f)
        for rel, plane in zip(f.files, planes, strict=True):
            check_plane(plane, rel, np.dtype(self.dtype), self.shape)
        return planes

    def histograms(self, f: Field) -> list[np.ndarray]:
        """Per-channel value histograms of ``f`` (for the per-plate statistics)."""
        return [histogram(p) for p in self.planes(f)]

    def image(self, f: Field, stats: PlateStats | None = None) -> np.ndarray:
        """The 8-bit image of ``f`` (C x H x W); ``stats`` = per-channel (center, scale) of its plate."""
        scaled = map_planes(self.planes(f), stats, self.mapping)
        height, width = self.target
        out = np.empty((len(scaled), height, width), dtype=np.uint8)
        for c, plane in enumerate(scaled):
            out[c] = float_to_uint8(resize_plane(plane, height, width))
        return out


def probe(dataset: Dataset, raw: Path, fields: Sequence[Field], skip: Any) -> tuple[Field, str, tuple[int, int]]:
    """The first readable field, its pixel type and size (H, W); each unreadable field before it
    goes to ``skip`` (a :class:`mcnn.datasets.base.Problems`), which raises unless skipping."""
    for f in fields:
        try:
            planes = dataset.read_field(raw, f)
            dtype = planes[0].dtype
            if dtype.name not in dataset.dtypes:
                wanted = " or ".join(bit_depth(d) for d in dataset.dtypes)
                raise BadInputError(f.files[0], f"wrong bit depth: {bit_depth(dtype)}, expected {wanted}")
            for rel, plane in zip(f.files, planes, strict=True):
                check_plane(plane, rel, dtype, None if dataset.variable_size else planes[0].shape)
            return f, dtype.name, (int(planes[0].shape[0]), int(planes[0].shape[1]))
        except BadInputError as exc:
            skip.add(exc)
    raise BadInputError(str(raw), "no readable image")


# ---------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------

_DECODER: Decoder | None = None


def _init(decoder: Decoder, parent: int) -> None:
    global _DECODER
    _DECODER = decoder
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Exit when the main process is gone (a killed conversion must not leave workers behind)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _call(method: str, f: Field, *args: Any) -> Any:
    assert _DECODER is not None
    return getattr(_DECODER, method)(f, *args)


class WorkerPool:
    """Runs :class:`Decoder` methods over many fields, in order, with at most ``window`` in flight."""

    def __init__(self, decoder: Decoder, workers: int = 1, window: int | None = None):
        self.decoder = decoder
        self.workers = max(1, int(workers))
        self.window = window or 2 * self.workers
        self._executor: ProcessPoolExecutor | None = None
        if self.workers > 1:
            # spawn: workers are children of this process (no fork of a threaded process, no
            # fork server), so each can watch its parent and exit if the conversion is killed.
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init,
                                                 initargs=(decoder, os.getpid()))

    def map(self, method: str, tasks: Iterable[tuple[Field, tuple[Any, ...]]]
            ) -> Iterator[tuple[Field, Any | BadInputError]]:
        """(field, result) for every (field, extra args) task, in task order; a
        :class:`BadInputError` is returned as the result, any other error is raised."""
        if self._executor is None:
            for f, args in tasks:
                try:
                    yield f, getattr(self.decoder, method)(f, *args)
                except BadInputError as exc:
                    yield f, exc
            return
        pending: deque[tuple[Field, Future[Any]]] = deque()
        it = iter(tasks)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.window:
                try:
                    f, args = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((f, self._executor.submit(_call, method, f, *args)))
            if not pending:
                return
            f, future = pending.popleft()
            try:
                yield f, future.result()
            except BadInputError as exc:
                yield f, exc

    def close(self) -> None:
        """Stop the worker processes (pending calls are cancelled)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
