"""Datum records and the LMDB databases that hold them, in Caffe's exact layout.

A Datum stores one image in CHW order: 8-bit images in ``data`` (bytes), anything else
in ``float_data``; ``encoded`` records hold compressed image bytes instead. LMDB keys are
``%08d_<name>`` (convert_imageset's form), so Caffe's key-ordered reading follows the
order the records were written in.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import CaffeFormatError

PathLike = str | os.PathLike[str]


def array_to_datum(image: np.ndarray, label: int = 0) -> pb.Datum:
    """A Datum for a C x H x W image (a 2-D array is one channel).

    uint8 arrays go to ``data`` (bytes, like ``caffe.io.array_to_datum``); other dtypes to
    ``float_data`` as float32.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"a Datum holds a C x H x W image; got shape {arr.shape}")
    datum = pb.Datum(channels=arr.shape[0], height=arr.shape[1], width=arr.shape[2], label=int(label))
    if arr.dtype == np.uint8:
        datum.data = np.ascontiguousarray(arr).tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel().tolist())
    return datum


def datum_to_array(datum: pb.Datum, source: str = "datum") -> np.ndarray:
    """The C x H x W image of a Datum: uint8 from ``data``, float32 from ``float_data``.

    Encoded records are decoded with OpenCV as Caffe does (colour images come out BGR).
    """
    if datum.encoded:
        return _decode_encoded(datum, source)
    shape = (datum.channels, datum.height, datum.width)
    count = int(np.prod(shape))
    if datum.data:
        if len(datum.data) != count:
            raise CaffeFormatError(
                f"{source}: {len(datum.data)} data bytes for {shape[0]}x{shape[1]}x{shape[2]}"
            )
        return np.frombuffer(datum.data, dtype=np.uint8).reshape(shape)
    values = np.asarray(datum.float_data, dtype=np.float32)
    if values.size != count:
        raise CaffeFormatError(
            f"{source}: {values.size} float_data values for {shape[0]}x{shape[1]}x{shape[2]}"
        )
    return values.reshape(shape)


def _decode_encoded(datum: pb.Datum, source: str) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        raise CaffeFormatError(
            f"{source}: encoded Datum records need OpenCV (pip install 'opencv-python-headless<5')"
        ) from None
    buf = np.frombuffer(datum.data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CaffeFormatError(f"{source}: encoded image bytes could not be decoded")
    if image.ndim == 2:
        return image[np.newaxis]
    return np.ascontiguousarray(image.transpose(2, 0, 1))


def record_key(index: int, name: str) -> bytes:
    """convert_imageset's LMDB key: zero-padded 8-digit index, underscore, name."""
    return f"{index:08d}_{name}".encode()


class LmdbWriter:
    """Write Datum records into a new LMDB, built under a temporary name and renamed on close.

    Use as a context manager; an exception inside the block removes the partial database,
    so ``path`` only ever exists complete. The memory map doubles whenever it fills up.
    """

    def __init__(self, path: PathLike, initial_map_size: int = 1 << 28, commit_every: int = 1000):
        import lmdb

        self._lmdb = lmdb
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: LMDB already exists")
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        self._map_size = initial_map_size
        self._env = lmdb.open(str(self.partial), map_size=self._map_size, subdir=True)
        self._pending: list[tuple[bytes, bytes]] = []
        self._commit_every = commit_every
        self.count = 0

    def put(self, key: bytes, datum: pb.Datum) -> None:
        """Queue one record; records are committed in batches."""
        self._pending.append((key, datum.SerializeToString()))
        self.count += 1
        if len(self._pending) >= self._commit_every:
            self._commit()

    def _commit(self) -> None:
        while self._pending:
            try:
                with self._env.begin(write=True) as txn:
                    for key, value in self._pending:
                        txn.put(key, value)
                self._pending.clear()
            except self._lmdb.MapFullError:
                self._map_size *= 2
                self._env.set_mapsize(self._map_size)
            except self._lmdb.Error as exc:  # a full disk or an I/O error: the environment, as an OSError
                raise OSError(errno.EIO, f"writing the LMDB failed ({exc})", str(self.partial)) from None

    def close(self) -> Path:
        """Commit, close and move the database to its final name."""
        self._commit()
        self._env.close()
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the partial database."""
        self._env.close()
        shutil.rmtree(self.partial, ignore_errors=True)

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def check_lmdb_file(path: Path, env: object) -> None:
    """Raise :class:`CaffeFormatError` unless ``path/data.mdb`` holds every page its meta page counts
    (``env`` is the open environment of ``path``: LMDB allows one per path and process). A truncated
    file would be mapped into memory and crash the process (SIGBUS) on the first read past its end,
    so this is checked before any record is read."""
    size = (path / "data.mdb").stat().st_size
    need = (int(env.info()["last_pgno"]) + 1) * int(env.stat()["psize"])  # type: ignore[attr-defined]
    if size < need:
        raise CaffeFormatError(f"{path}: data.mdb is truncated ({size} bytes, its pages need {need}); "
                               "rebuild it (data_prep/prepare.py)")


def open_lmdb(path: Path, max_readers: int = 256) -> object:
    """The read-only environment of the LMDB folder ``path``, checked by :func:`check_lmdb_file`;
    :class:`CaffeFormatError` when it is not a readable LMDB."""
    import lmdb

    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, subdir=True, max_readers=max_readers)
    except lmdb.Error as exc:
        raise CaffeFormatError(f"{path}: not a readable LMDB ({exc})") from None
    try:
        check_lmdb_file(path, env)
    except CaffeFormatError:
        env.close()
        raise
    return env


def parse_datum(value: bytes, source: str) -> pb.Datum:
    """A Datum from the bytes of one LMDB record; :class:`CaffeFormatError` naming ``source`` (the
    LMDB and key) when the record is not a Datum."""
    from google.protobuf.message import DecodeError

    datum = pb.Datum()
    try:
        datum.ParseFromString(value)
    except DecodeError:
        raise CaffeFormatError(f"{source}: not a Datum record (damaged, or written by another tool)") from None
    return datum


class LmdbReader:
    """Read-only access to a Datum LMDB in key order, as Caffe's Data layer reads it."""

    def __init__(self, path: PathLike):

        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise CaffeFormatError(f"{self.path}: not an LMDB folder (no data.mdb)")
        self._env = open_lmdb(self.path)

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def items(self) -> Iterator[tuple[bytes, pb.Datum]]:
        """(key, Datum) pairs in key order."""
        with self._env.begin() as txn:
            for key, value in txn.cursor():
                yield bytes(key), parse_datum(value, f"{self.path} record {bytes(key).decode(errors='replace')}")

    def first(self) -> pb.Datum:
        """The first record (its shape is the shape of the whole database)."""
        for _, datum in self.items():
            return datum
        raise CaffeFormatError(f"{self.path}: LMDB is empty")

    def close(self) -> None:
        """Close the LMDB environment (also done on leaving a ``with`` block)."""
        self._env.close()

    def __enter__(self) -> LmdbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
