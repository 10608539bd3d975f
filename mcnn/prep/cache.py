"""The field cache: every labelled field decoded once, shared by all splits of a run.

Cross-validation writes each image into 50 repeats and BBBC021's leave-one-compound-out into 37
of 38 folds; decoding the 16-bit TIFFs once into ``OUT/.cache/fields_lmdb`` (uint8 Datum records
keyed by field name) and copying from there keeps that cheap. The cache is an LMDB like the others
(temporary name, renamed when complete); the fields that could not be read are listed in
``OUT/.cache/bad.json``. It is removed when the run completes unless ``--keep-cache``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.caffe.datum import LmdbWriter, array_to_datum, datum_to_array, open_lmdb
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import CaffeFormatError
from mcnn.fsutil import atomic_write_text
from mcnn.prep.write import commit_every, count_record, remove_stale

CACHE = ".cache"
FIELDS = "fields_lmdb"
BAD = "bad.json"


def cache_dir(out: Path) -> Path:
    """``OUT/.cache``."""
    return out / CACHE


def load(out: Path) -> tuple[set[str], list[tuple[str, str, str]]] | None:
    """(field names held, bad inputs as (field name, file, problem)) of a complete cache, or None."""
    path = cache_dir(out) / FIELDS
    bad_path = cache_dir(out) / BAD
    if not (path / "data.mdb").is_file() or not bad_path.is_file():
        return None
    try:
        env = open_lmdb(path)
    except CaffeFormatError:  # damaged (e.g. truncated by a full disk): rebuilt like an incomplete one
        return None
    try:
        with env.begin() as txn:
            names = {bytes(k).decode() for k, _ in txn.cursor()}
    finally:
        env.close()
    bad = [tuple(x) for x in json.loads(bad_path.read_text(encoding="utf-8"))["bad"]]
    return names, bad  # type: ignore[return-value]


class CacheWriter:
    """Builds ``OUT/.cache/fields_lmdb`` (replacing an incomplete or outdated one)."""

    def __init__(self, out: Path, record_bytes: int):
        self.dir = cache_dir(out)
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / FIELDS
        remove_stale(path)
        if path.exists():
            shutil.rmtree(path)
        self.writer = LmdbWriter(path, commit_every=commit_every(record_bytes))
        self.bad: list[tuple[str, str, str]] = []

    def put(self, name: str, image: np.ndarray) -> None:
        """Store the uint8 image of field ``name``."""
        self.writer.put(name.encode(), array_to_datum(image, 0))
        count_record()

    def finish(self) -> None:
        """Write the bad-input list, then rename the LMDB into place."""
        atomic_write_text(self.dir / BAD, json.dumps({"bad": self.bad}, indent=1) + "\n")
        self.writer.close()

    def abort(self) -> None:
        """Remove the partial cache."""
        self.writer.abort()


class CacheReader:
    """Random access to the cached images by field name."""

    def __init__(self, out: Path):
        self.env: Any = open_lmdb(cache_dir(out) / FIELDS)

    def get(self, name: str) -> np.ndarray:
        """The uint8 C x H x W image of field ``name`` (KeyError if not cached)."""
        with self.env.begin() as txn:
            value = txn.get(name.encode())
        if value is None:
            raise KeyError(name)
        datum = pb.Datum()
        datum.ParseFromString(value)
        return datum_to_array(datum, source=name)

    def close(self) -> None:
        """Close the LMDB."""
        self.env.close()


def remove(out: Path) -> None:
    """Delete the cache folder."""
    shutil.rmtree(cache_dir(out), ignore_errors=True)


def missing(names: Iterable[str], held: set[str], bad: list[tuple[str, str, str]]) -> bool:
    """Whether some of ``names`` are neither cached nor known bad."""
    known_bad = {b[0] for b in bad}
    return any(n not in held and n not in known_bad for n in names)
