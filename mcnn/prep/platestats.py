"""Per-plate negative-control statistics for ``--norm-scope plate-dmso``.

Each channel of every field is standardised against the (center, scale) of all pixels of its
plate's negative-control (DMSO) images, computed from summed intensity histograms
(:func:`mcnn.prep.normalize.center_scale`). The statistics are saved in ``OUT/normalization.json``
(per plate: the number of control images and, per channel, center and scale) and reused by a
re-run with the same intensity mapping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, Field, Plan, Problems
from mcnn.errors import BadInputError
from mcnn.fsutil import atomic_write_text
from mcnn.prep.decode import WorkerPool
from mcnn.prep.normalize import IntensityMapping, center_scale
from mcnn.prep.options import Progress
from mcnn.prep.prepared import NORMALIZATION

#: (center, scale) of each channel, in the dataset's channel order, per plate name.
StatsByPlate = dict[str, list[tuple[float, float]]]


class _ControlSums:
    """Sums the control histograms of one plate at a time (controls arrive grouped by plate) and
    turns each finished plate into its statistics, so only one plate's histograms are held."""

    def __init__(self, channels: tuple[str, ...], mapping: IntensityMapping):
        self.channels, self.mapping = channels, mapping
        self.stats: StatsByPlate = {}
        self.saved: dict[str, Any] = {}
        self._plate: str | None = None
        self._sums: list[np.ndarray] = []
        self._count = 0

    def add(self, plate: str, histograms: list[np.ndarray]) -> None:
        """Add one control image's per-channel histograms to ``plate``'s sums."""
        if plate != self._plate:
            self.close()
            self._plate, self._sums, self._count = plate, [h.copy() for h in histograms], 0
        else:
            for total, h in zip(self._sums, histograms, strict=True):
                total += h
        self._count += 1

    def close(self) -> None:
        """Turn the sums of the current plate into its statistics."""
        if self._plate is None or not self._count:
            return
        values = [center_scale(h, self.mapping) for h in self._sums]
        self.stats[self._plate] = values
        self.saved[self._plate] = {"images": self._count, "channels": {
            ch: {"center": c, "scale": s} for ch, (c, s) in zip(self.channels, values, strict=True)}}
        self._plate, self._sums, self._count = None, [], 0


def _saved(path: Path, description: dict[str, Any], plates: list[str]) -> StatsByPlate | None:
    """The statistics of ``plates`` from an earlier run's file, if it used the same mapping."""
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    if saved.get("intensity") != description or not set(plates) <= set(saved.get("plates", {})):
        return None
    return {p: [(c["center"], c["scale"]) for c in saved["plates"][p]["channels"].values()] for p in plates}


def _sum_controls(ds: Dataset, controls: list[Field], pool: WorkerPool, mapping: IntensityMapping,
                  problems: Problems, progress: Progress) -> _ControlSums:
    """Decode the histograms of ``controls`` (sorted by plate) and sum them per plate."""
    sums = _ControlSums(ds.channels, mapping)
    with progress.bar(len(controls), f"{ds.name} control statistics") as bar:
        for f, res in pool.map("histograms", ((f, ()) for f in controls)):
            bar.update(1)
            if isinstance(res, BadInputError):
                problems.add(res)
                continue
            sums.add(f.plate, res)
        sums.close()
    return sums


def _report_missing(plan: Plan, fields: list[Field], plates: list[str], stats: StatsByPlate,
                    problems: Problems) -> set[str]:
    """Report each plate without statistics as a bad input; the names of its fields."""
    dropped: set[str] = set()
    listed = {f.plate for f in plan.controls}
    for p in plates:
        if p in stats:
            continue
        n = sum(1 for f in fields if f.plate == p)
        what = "no readable DMSO (negative-control) image" if p in listed else \
            "no DMSO (negative-control) wells in the metadata"
        problems.bad(f"plate {p}", f"{what}; per-plate normalisation (--norm-scope plate-dmso) needs them "
                     f"(use --norm-scope image, or --skip-bad to leave out its {n} fields)")
        dropped |= {f.name for f in fields if f.plate == p}
    return dropped


def plate_stats(out: Path, ds: Dataset, plan: Plan, pool: WorkerPool, mapping: IntensityMapping, dtype: str,
                problems: Problems, progress: Progress) -> tuple[StatsByPlate, set[str]]:
    """(center, scale) per plate and channel from the plate's negative controls, and the names of
    the fields of plates that have none (left out with ``--skip-bad``, an error otherwise).

    ``dtype`` is the source bit depth (``uint8``/``uint16``) the mapping is described for.
    """
    fields = plan.all_fields()
    plates = sorted({f.plate for f in fields})
    description = mapping.describe(dtype)
    path = out / NORMALIZATION
    saved = _saved(path, description, plates)
    if saved is not None:
        return saved, set()
    wanted = set(plates)
    controls = sorted((f for f in plan.controls if f.plate in wanted), key=lambda f: (f.plate, f.name))
    sums = _sum_controls(ds, controls, pool, mapping, problems, progress)
    dropped = _report_missing(plan, fields, plates, sums.stats, problems)
    atomic_write_text(path, json.dumps({"intensity": description, "plates": sums.saved}, indent=1) + "\n")
    return sums.stats, dropped
