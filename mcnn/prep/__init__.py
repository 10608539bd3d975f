"""Turning raw downloads into Caffe LMDBs with the paper's protocols.

- :func:`prepare` / :class:`PrepOptions` / :class:`PrepResult`: the conversion behind
  ``data_prep/prepare.py`` (steps in :mod:`mcnn.prep.pipeline`); :func:`split_names`: the splits
  it would write.
- :func:`load_prepared`: what a prepared folder holds (geometry, classes, splits, set sizes).
- submodules, in the order a run uses them: ``options``, ``resume`` (re-runs into the same
  folder), ``planning`` and ``splits`` (cv / loco / full assignment), ``platestats`` (per-plate
  DMSO statistics), ``normalize`` (the 16 -> 8-bit mapping), ``decode`` (worker processes),
  ``augment`` (D4), ``cache``, ``build`` (every LMDB of a run), ``write`` (one LMDB unit with
  index CSV, list file, mean), ``finish`` (``dataset.json`` and the other final files),
  ``prepared`` (the layout's names and its reader).
"""

from __future__ import annotations

from mcnn.prep.pipeline import PrepOptions, PrepResult, prepare, split_names
from mcnn.prep.prepared import PreparedDataset, PreparedSplit, SplitPaths, UnlabelledSet, load_prepared

__all__ = ["PrepOptions", "PrepResult", "PreparedDataset", "PreparedSplit", "SplitPaths", "UnlabelledSet",
           "load_prepared", "prepare", "split_names"]
