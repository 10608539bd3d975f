"""Writing one LMDB together with its index CSV, list file and mean image.

A *unit* is an LMDB (``train_lmdb/``, ``test_lmdb/``, ``dose_lmdb/``, ...) plus its sidecar files.
Records are written in the order given, keyed ``%08d_<name>`` (Caffe's convert_imageset keys),
one index row per record. The sidecars are renamed into place first and the LMDB last (it is built
under a temporary name by :class:`mcnn.caffe.datum.LmdbWriter`), so a unit is complete exactly
when its LMDB folder exists; a killed run leaves only temporary names, which the next run removes.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
from mcnn.caffe.io import write_binaryproto
from mcnn.datasets.base import Field
from mcnn.fsutil import temporary_sibling
from mcnn.tables import RowWriter

#: Test hook: after this many records (all units together) the process kills itself with SIGKILL,
#: leaving the partial state of a crashed conversion. 0 = off.
KILL_AFTER_ENV = "MCNN_PREP_KILL_AFTER"
_written = 0


def count_record() -> None:
    """Count one record written (all LMDBs of the process); see :data:`KILL_AFTER_ENV`."""
    global _written
    _written += 1
    limit = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    if limit and _written >= limit:
        os.kill(os.getpid(), signal.SIGKILL)


@dataclass(frozen=True)
class Record:
    """One LMDB record: key ``name``, ``label`` (-1 unlabelled), source ``field``, the D4
    ``transform`` applied and the uint8 C x H x W ``image``."""

    name: str
    label: int
    field: Field
    transform: str
    image: np.ndarray


def index_header(columns: Sequence[str], channels: Sequence[str]) -> list[str]:
    """Column names of an index CSV (docs/formats.md)."""
    return ["key", "label", "class_name", *columns, *(f"Image_FileName_{c}" for c in channels),
            "Metadata_Augmentation"]


def remove_stale(path: Path) -> None:
    """Delete what a killed run left next to ``path``: temporary files and the partial LMDB."""
    parent = path.parent
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        if entry.name.startswith(f".{path.name}.tmp-") or entry.name == f".{path.name}.partial":
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def commit_every(record_bytes: int) -> int:
    """Records per LMDB transaction: at most 1000 (Caffe's), at most ~64 MiB of pending data."""
    return max(1, min(1000, (64 << 20) // max(1, record_bytes)))


class UnitWriter:
    """Builds one unit: the LMDB at ``lmdb_path`` and its ``index`` CSV, optional convert_imageset
    ``listfile`` and optional ``mean`` file (mean of every record, 1 x C x H x W float)."""

    def __init__(self, lmdb_path: Path, index: Path, classes: Sequence[str], columns: Sequence[str],
                 channels: Sequence[str], record_bytes: int, listfile: Path | None = None, mean: Path | None = None):
        self.lmdb_path, self.index, self.listfile, self.mean = lmdb_path, index, listfile, mean
        self.classes, self.columns = list(classes), list(columns)
        for p in (lmdb_path, index, *(x for x in (listfile, mean) if x)):
            remove_stale(p)
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
        self._writer = LmdbWriter(lmdb_path, commit_every=commit_every(record_bytes))
        self._tmp_index = temporary_sibling(index)
        self._index_handle = open(self._tmp_index, "w", newline="", encoding="utf-8")  # noqa: SIM115 (closed in finish/abort)
        self._rows = RowWriter(self._index_handle, index_header(columns, channels))
        self._tmp_list = temporary_sibling(listfile) if listfile else None
        self._list_handle = (open(self._tmp_list, "w", encoding="utf-8")  # noqa: SIM115 (closed in finish/abort)
                             if self._tmp_list else None)
        self._sum: np.ndarray | None = None
        self.count = 0
        self.keys: list[str] = []

    def add(self, rec: Record) -> None:
        """Write one record and its index row (and list line for untransformed records)."""
        key = record_key(self.count, rec.name)
        self._writer.put(key, array_to_datum(rec.image, rec.label))
        name = self.classes[rec.label] if rec.label >= 0 else ""
        meta = [rec.field.meta.get(c, "") for c in self.columns]
        self._rows.row([key.decode(), rec.label, name, *meta, *rec.field.files, rec.transform])
        if self._list_handle is not None and rec.transform == "none":
            self._list_handle.write(f"{rec.field.files[0]} {rec.label}\n")
        if self.mean is not None:
            if self._sum is None:
                self._sum = np.zeros(rec.image.shape, dtype=np.float64)
            self._sum += rec.image
        self.keys.append(key.decode())
        self.count += 1
        count_record()

    def finish(self) -> Path:
        """Rename the sidecars into place, then the LMDB; returns the LMDB path."""
        self._index_handle.close()
        os.replace(self._tmp_index, self.index)
        if self._list_handle is not None and self._tmp_list is not None and self.listfile is not None:
            self._list_handle.close()
            os.replace(self._tmp_list, self.listfile)
        if self.mean is not None and self._sum is not None:
            write_binaryproto(self.mean, (self._sum / self.count).astype(np.float32)[np.newaxis])
        try:
            return self._writer.close()
        except BaseException:  # the LMDB did not complete: no sidecar may stand under its final name
            for p in (self.index, self.listfile, self.mean):
                if p is not None:
                    p.unlink(missing_ok=True)
            self._writer.abort()
            raise

    def abort(self) -> None:
        """Remove everything this writer created."""
        for handle in (self._index_handle, self._list_handle):
            if handle is not None and not handle.closed:
                handle.close()
        for tmp in (self._tmp_index, self._tmp_list):
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        self._writer.abort()

    def __enter__(self) -> UnitWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()
