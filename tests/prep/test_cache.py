"""The field cache: a complete one is read back, a damaged one is rebuilt rather than read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mcnn.prep import cache


def write_cache(out: Path, n: int = 40) -> None:
    """A complete cache of ``n`` 3x64x64 fields named f0.., with one bad input listed."""
    writer = cache.CacheWriter(out, record_bytes=3 * 64 * 64)
    for i in range(n):
        writer.put(f"f{i}", np.full((3, 64, 64), i, np.uint8))
    writer.bad.append(("g", "raw/g.tif", "not a TIFF"))
    writer.finish()


def test_a_complete_cache_is_read_back(tmp_path: Path) -> None:
    write_cache(tmp_path)
    held = cache.load(tmp_path)
    assert held is not None
    names, bad = held
    assert names == {f"f{i}" for i in range(40)} and bad == [("g", "raw/g.tif", "not a TIFF")]
    reader = cache.CacheReader(tmp_path)
    assert (reader.get("f17") == 17).all() and reader.get("f17").shape == (3, 64, 64)
    reader.close()


def test_a_truncated_cache_counts_as_missing(tmp_path: Path) -> None:
    """A cache cut short (a full disk, a copy stopped half-way) would crash the first read past its
    end (SIGBUS); it is reported as absent, so the run decodes the fields again."""
    write_cache(tmp_path)
    data = cache.cache_dir(tmp_path) / cache.FIELDS / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    assert cache.load(tmp_path) is None
