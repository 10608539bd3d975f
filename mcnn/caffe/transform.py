"""Caffe's DataTransformer and random access to Datum LMDBs (numpy only, no torch).

The engine's Data layer, evaluation and pycaffe-based prediction all read records and
transform them through these two classes, so preprocessing is identical everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.caffe import io as cio
from mcnn.caffe.datum import datum_to_array, open_lmdb, parse_datum
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import CaffeFormatError, DataError

#: Open environments by resolved path: (environment, pid that opened it, identity of its data.mdb).
_OPEN_ENVS: dict[str, tuple[Any, int, tuple[int, int] | None]] = {}


def _identity(folder: str) -> tuple[int, int] | None:
    """(device, inode) of ``folder/data.mdb``, None when it is gone. An open environment keeps its
    file's inode in use, so a different identity means the database was deleted or rebuilt."""
    try:
        st = os.stat(os.path.join(folder, "data.mdb"))
    except OSError:
        return None
    return st.st_dev, st.st_ino


def shared_env(path: Path) -> Any:
    """The process's one read-only environment of the LMDB folder ``path`` (LMDB allows one per
    file and process, and a TRAIN and a TEST Data layer may read the same source).

    Environments whose database was deleted or rebuilt since they were opened are closed first, and
    so are those a forked worker inherited (the databases are opened without locks, so closing the
    copy does not touch the parent's). Without this a database rebuilt at the same path would be
    read from the old, deleted file, and py-lmdb could refuse a new database whose lock file took
    the inode of a deleted one's."""
    pid = os.getpid()
    for folder, (env, owner, ident) in list(_OPEN_ENVS.items()):
        if owner != pid or _identity(folder) != ident:
            env.close()
            del _OPEN_ENVS[folder]
    key = str(path.resolve())
    if key not in _OPEN_ENVS:
        env = open_lmdb(Path(key), max_readers=512)
        _OPEN_ENVS[key] = (env, pid, _identity(key))
    return _OPEN_ENVS[key][0]


class LmdbRecords:
    """Random access to an LMDB's records in key order; safe to use from worker processes."""

    def __init__(self, path: str | os.PathLike[str], layer: str = "data"):
        self.path = Path(path)
        self.layer = layer
        self._env: Any = None
        self._pid = -1
        if not (self.path / "data.mdb").is_file():
            raise DataError(f"layer {layer!r}: LMDB {self.path} does not exist (no data.mdb); "
                            "prepare the dataset first (data_prep/prepare.py)")
        with self._open().begin() as txn:
            self.keys: list[bytes] = [bytes(k) for k in txn.cursor().iternext(keys=True, values=False)]
        if not self.keys:
            raise DataError(f"layer {layer!r}: LMDB {self.path} is empty")
        first = self.datum(0)
        self.shape = datum_to_array(first, source=f"{self.path} record {self.keys[0].decode()}").shape
        #: Whether the records hold encoded images (PNG/JPEG bytes) rather than raw pixels.
        self.encoded = bool(first.encoded)

    def _open(self) -> Any:
        """This process's environment of the database (looked up once per process)."""
        if self._pid != os.getpid():
            self._env, self._pid = shared_env(self.path), os.getpid()
        return self._env

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a spawned worker without the environment, which the worker opens itself."""
        return {**self.__dict__, "_env": None, "_pid": -1}

    def __len__(self) -> int:
        return len(self.keys)

    def datum(self, index: int) -> pb.Datum:
        """The record at ``index`` (modulo the size)."""
        key = self.keys[index % len(self.keys)]
        with self._open().begin() as txn:
            value = txn.get(key)
        return parse_datum(value, f"{self.path} record {key.decode(errors='replace')}")

    def image(self, index: int) -> tuple[np.ndarray, int]:
        """(C x H x W image, label) of the record at ``index``; shapes must match the first record's."""
        key = self.keys[index % len(self.keys)]
        datum = self.datum(index)
        image = datum_to_array(datum, source=f"{self.path} record {key.decode()}")
        if image.shape != self.shape:
            raise DataError(
                f"{self.path} record {key.decode()}: shape {'x'.join(map(str, image.shape))} differs from the "
                f"first record's {'x'.join(map(str, self.shape))}")
        return image, datum.label


class Transformer:
    """Caffe's DataTransformer for one phase: crop, mirror, ``(x - mean) * scale``.

    TRAIN crops at a random offset, TEST at the centre; with ``mirror`` the crop is flipped
    left-right with probability 1/2 in either phase (as in Caffe). A mean file is subtracted
    at the crop's position before the flip. ``force_gray``/``force_color`` apply to ``encoded``
    records only: for raw ones Caffe ignores them and logs an error line, kept in ``notes``
    (severity, source location, message) for the caller's log.
    """

    def __init__(self, param: pb.TransformationParameter, phase: int, image_shape: Sequence[int],
                 layer: str = "data", base_dir: Path | None = None, *, encoded: bool = True):
        self.phase = phase
        self.scale = float(param.scale)
        self.mirror = bool(param.mirror)
        self.crop = int(param.crop_size)
        self.notes: list[tuple[str, str, str]] = []
        if encoded and param.force_gray and param.force_color:  # Caffe's CHECK, on encoded records only
            raise DataError(f"layer {layer!r}: cannot set both force_color and force_gray")
        self.force_gray = bool(param.force_gray) and encoded
        self.force_color = bool(param.force_color) and encoded
        if not encoded and (param.force_gray or param.force_color):
            self.notes.append(("E", "data_transformer.cpp:152", f"layer {layer!r}: force_color and force_gray "
                               "only for encoded datum (ignored for these raw records, as Caffe does)"))
        c, h, w = image_shape
        if self.force_gray:
            c = 1
        elif self.force_color:
            c = 3
        self.in_shape = (c, h, w)
        if self.crop and (self.crop > h or self.crop > w):
            raise DataError(f"layer {layer!r}: crop_size {self.crop} is larger than the {h}x{w} images")
        self.mean = _mean(param, self.in_shape, layer, base_dir)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        """Per-image (C, H, W) after the transform: crop_size x crop_size when cropping."""
        c, h, w = self.in_shape
        return (c, self.crop, self.crop) if self.crop else (c, h, w)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Transform one C x H x W image (uint8 or float) into float32."""
        if self.force_gray and image.shape[0] != 1:
            image = _to_gray(image)
        elif self.force_color and image.shape[0] == 1:
            image = np.repeat(image, 3, axis=0)
        _, h, w = image.shape
        if self.crop:
            if self.phase == pb.TRAIN:
                top = int(rng.integers(h - self.crop + 1))
                left = int(rng.integers(w - self.crop + 1))
            else:
                top, left = (h - self.crop) // 2, (w - self.crop) // 2
            window = (slice(None), slice(top, top + self.crop), slice(left, left + self.crop))
        else:
            window = (slice(None), slice(None), slice(None))
        out = image[window].astype(np.float32)
        if self.mean is not None:
            out -= self.mean if self.mean.shape[1:] == (1, 1) else self.mean[window]
        if self.scale != 1.0:
            out *= np.float32(self.scale)
        if self.mirror and rng.integers(2):
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)


def _mean(param: pb.TransformationParameter, shape: tuple[int, int, int], layer: str,
          base_dir: Path | None) -> np.ndarray | None:
    """The mean to subtract: the C x H x W ``mean_file`` (looked up in ``base_dir`` too), the C x 1 x 1
    ``mean_value`` (one value serves every channel), or None."""
    c, h, w = shape
    if param.mean_file and len(param.mean_value):
        raise DataError(f"layer {layer!r}: give mean_file or mean_value, not both")
    if param.mean_file:
        path = Path(param.mean_file)
        if not path.is_file() and base_dir is not None and (base_dir / path).is_file():
            path = base_dir / path
        try:
            mean = cio.read_binaryproto(path)
        except CaffeFormatError as exc:
            raise DataError(f"layer {layer!r}: mean_file: {exc}") from None
        mean = mean.reshape(mean.shape[-3:]) if mean.ndim >= 3 else mean
        if tuple(mean.shape) != (c, h, w):
            raise DataError(f"layer {layer!r}: mean_file {path} is {'x'.join(map(str, mean.shape))}, "
                            f"the images are {c}x{h}x{w}")
        return mean.astype(np.float32)
    if len(param.mean_value):
        values = list(param.mean_value)
        if len(values) not in (1, c):
            raise DataError(f"layer {layer!r}: {len(values)} mean_value entries for {c} channels")
        return np.asarray(values * (c if len(values) == 1 else 1), np.float32).reshape(c, 1, 1)
    return None


def _to_gray(image: np.ndarray) -> np.ndarray:
    # OpenCV's BGR -> gray weights, as Caffe decodes with cv::IMREAD_GRAYSCALE.
    b, g, r = image.astype(np.float32)[:3]
    gray = 0.114 * b + 0.587 * g + 0.299 * r
    return (np.round(gray).astype(image.dtype) if image.dtype == np.uint8 else gray)[None]


#: The deprecated DataParameter copies of transformation fields, which a new-style layer ignores.
DEPRECATED_DATA_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def data_transform(layer: pb.LayerParameter) -> pb.TransformationParameter:
    """A Data layer's transform_param. Caffe's DataLayer reads only transform_param: the deprecated
    ``data_param`` copies of scale, mean_file, crop_size and mirror are moved there only when a V1
    net is upgraded (UpgradeNetDataTransformation in src/caffe/util/upgrade_proto.cpp); in a
    new-style ``layer`` they are ignored (see :func:`ignored_data_fields`)."""
    tp = pb.TransformationParameter()
    tp.CopyFrom(layer.transform_param)
    return tp


def ignored_data_fields(layer: pb.LayerParameter) -> list[tuple[str, str, str]]:
    """Warnings (severity, source location, message) for the deprecated data_param transformation
    fields of a new-style layer, which Caffe ignores without a word; the engine says so once."""
    dp = layer.data_param
    given = [name for name in DEPRECATED_DATA_FIELDS if dp.HasField(name)]
    if not given:
        return []
    fields = ", ".join(f"data_param.{name}" for name in given)
    return [("W", "data_layer.cpp:29", f"layer {layer.name!r}: {fields} ignored, as Caffe ignores them in a "
             "new-style layer; move them to transform_param")]
