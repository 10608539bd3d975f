"""Turning raw downloads into Caffe LMDBs with the paper's protocols.

- :func:`prepare` / :class:`PrepOptions`: the conversion behind ``data_prep/prepare.py``.
- :func:`load_prepared`: what a prepared folder holds (geometry, classes, splits, set sizes).
- submodules: ``splits`` (cv / loco / full), ``normalize`` (per-plate DMSO statistics and the
  16 -> 8-bit mapping), ``augment`` (D4), ``decode`` (worker processes), ``write`` (LMDB units
  with index CSV, list file, mean), ``cache``.
"""

from __future__ import annotations

from mcnn.prep.pipeline import PrepOptions, PrepResult, prepare
from mcnn.prep.prepared import PreparedDataset, PreparedSplit, SplitPaths, UnlabelledSet, load_prepared

__all__ = ["PrepOptions", "PrepResult", "PreparedDataset", "PreparedSplit", "SplitPaths", "UnlabelledSet",
           "load_prepared", "prepare"]
