"""Synthetic look-alike downloads shared by the dataset and data_prep tests (written once per test process).

Tests must not modify these folders; :func:`copy_raw` gives a private copy to damage.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

from mcnn.simulate.lookalikes.registry import synthesize
from tests.support import ROOT

#: The two copies of the real BBBC021 metadata CSVs (https://bbbc.broadinstitute.org/BBBC021), one per
#: line-end/quoting dialect.
BBBC021_CSV = ROOT.parent / "shared" / "data" / "bbbc021"
DIALECTS = ("crlf_unquoted", "quoted_cr")

_root: Path | None = None
_done: dict[str, Path] = {}


def real_csv_dir(dialect: str = "crlf_unquoted") -> Path:
    """The folder of one copy of the real BBBC021 CSVs (the test is skipped without it)."""
    path = BBBC021_CSV / dialect
    if not (path / "BBBC021_v1_image.csv").is_file():
        pytest.skip(f"real BBBC021 metadata not found in {path}")
    return path


def lookalike(name: str) -> Path:
    """RAW folder of the small look-alike of ``name`` (bbbc021: the 3 Week1 taxol plates)."""
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="mcnn-lookalikes-"))
        atexit.register(shutil.rmtree, _root, True)
    if name not in _done:
        extra = {"metadata": real_csv_dir()} if name == "bbbc021" else {}
        synthesize(name, _root / name, "small", 0, **extra)
        _done[name] = _root / name
    return _done[name]


def copy_raw(name: str, dest: Path, copy: tuple[str, ...] = ()) -> Path:
    """A private RAW folder for ``name``: files are symlinked, except the sub-folders and files
    named in ``copy`` (relative paths), which are real copies that a test may change."""
    src = lookalike(name)
    dest.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dest / entry.name
        if entry.name in copy:
            if entry.is_dir():
                shutil.copytree(entry, target)
            else:
                shutil.copy2(entry, target)
        elif entry.is_dir() and any(c.startswith(entry.name + "/") for c in copy):
            target.mkdir()
            inner = tuple(c[len(entry.name) + 1:] for c in copy if c.startswith(entry.name + "/"))
            for sub in entry.iterdir():
                if sub.name in inner:
                    shutil.copy2(sub, target / sub.name)
                else:
                    (target / sub.name).symlink_to(sub)
        else:
            target.symlink_to(entry)
    return dest
