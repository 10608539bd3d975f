"""The paper's aggregation of per-image predictions to treatments (BBBC021, §2.4, §3.3).

For each treatment (compound, concentration): the element-wise median of the vectors over the
fields of each replicate well, then the element-wise median over the replicate wells. Used for
probability vectors (MoA prediction, Supplementary Table 4) and for feature vectors (profiles
for nearest-neighbour MoA prediction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcnn.errors import TableError

COMPOUND = "Metadata_Compound"
CONCENTRATION = "Metadata_Concentration"
PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
REPLICATE = "Metadata_Replicate"
MOA = "Metadata_MoA"
BATCH = "Metadata_Batch"


@dataclass
class Treatment:
    """One compound at one concentration, with its aggregated vector."""

    compound: str
    concentration: float
    vector: np.ndarray
    wells: int
    fields: int
    moa: str = ""
    batches: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, float]:
        """(compound, concentration)."""
        return (self.compound, self.concentration)


def _replicate(row: Mapping[str, str]) -> tuple[str, ...]:
    if PLATE in row or WELL in row:
        return (row.get(PLATE, ""), row.get(WELL, ""))
    return (row.get(REPLICATE, ""),)


def aggregate_treatments(rows: Sequence[Mapping[str, str]], vectors: np.ndarray,
                         source: str = "index") -> list[Treatment]:
    """Median over fields per replicate well, then median over wells, per (compound, concentration).

    ``rows`` are index/predictions rows (``Metadata_Compound``, ``Metadata_Concentration`` and
    ``Metadata_Plate``/``Metadata_Well`` or ``Metadata_Replicate``); ``vectors`` has one row per
    row. Treatments come out sorted by compound, then concentration.
    """
    if len(rows) != len(vectors):
        raise ValueError(f"{len(rows)} rows for {len(vectors)} vectors")
    for column in (COMPOUND, CONCENTRATION):
        if rows and column not in rows[0]:
            raise TableError(f"{source}: no column {column!r} (needed to aggregate treatments)")
    wells: dict[tuple[str, float], dict[tuple[str, ...], list[int]]] = {}
    info: dict[tuple[str, float], Mapping[str, str]] = {}
    for i, row in enumerate(rows):
        try:
            conc = float(row[CONCENTRATION])
        except ValueError:
            raise TableError(f"{source}: row {i + 1}: {CONCENTRATION} {row[CONCENTRATION]!r} is not a number") from None
        key = (row[COMPOUND], conc)
        wells.setdefault(key, {}).setdefault(_replicate(row), []).append(i)
        info.setdefault(key, row)
    treatments = []
    for key in sorted(wells, key=lambda k: (k[0].lower(), k[1])):
        per_well = [np.median(vectors[idx], axis=0) for idx in wells[key].values()]
        vector = np.median(np.stack(per_well), axis=0)
        batches = sorted({rows[i].get(BATCH, "") for idx in wells[key].values() for i in idx} - {""})
        treatments.append(Treatment(compound=key[0], concentration=key[1], vector=vector, wells=len(per_well),
                                    fields=sum(len(idx) for idx in wells[key].values()),
                                    moa=info[key].get(MOA, ""), batches=tuple(batches)))
    return treatments
