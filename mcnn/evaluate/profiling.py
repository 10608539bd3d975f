"""Nearest-neighbour MoA prediction on treatment profiles: NSC and NSCB (Ljosa et al. 2013, Ando et al. 2017).

A treatment's profile is the aggregated (median over fields per well, then over wells)
penultimate-layer feature vector of the network. Each query treatment takes the MoA of its
nearest profile by cosine distance among the candidates:

- NSC (not same compound): candidates are treatments of other compounds;
- NSCB (not same compound or batch): additionally, treatments that share a batch (BBBC021:
  the week) with the query are excluded. A query whose MoA occurs in no other batch cannot be
  matched and is left out of NSCB (in BBBC021 these are Cholesterol-lowering and Kinase
  inhibitors, the usual exclusion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcnn.evaluate.aggregate import Treatment


@dataclass
class NeighbourResult:
    """Outcome for one query treatment."""

    query: Treatment
    neighbour: Treatment
    distance: float

    @property
    def correct(self) -> bool:
        """Whether the nearest neighbour has the query's MoA."""
        return self.neighbour.moa == self.query.moa


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def nearest_moa(queries: Sequence[Treatment], candidates: Sequence[Treatment],
                mode: str = "NSC") -> list[NeighbourResult]:
    """1-NN by cosine distance under the NSC or NSCB hold-out; see the module docstring."""
    if mode not in ("NSC", "NSCB"):
        raise ValueError(f"mode must be NSC or NSCB, got {mode!r}")
    if not candidates:
        return []
    cand = _unit(np.stack([c.vector for c in candidates]).astype(np.float64))
    results = []
    for q in queries:
        allowed = np.array([c.compound != q.compound and (mode == "NSC" or not set(c.batches) & set(q.batches))
                            for c in candidates])
        if mode == "NSCB" and not any(allowed[i] and c.moa == q.moa for i, c in enumerate(candidates)):
            continue
        if not allowed.any():
            continue
        similarity = cand @ _unit(q.vector[None].astype(np.float64))[0]
        similarity[~allowed] = -np.inf
        best = int(np.argmax(similarity))
        results.append(NeighbourResult(q, candidates[best], float(1 - similarity[best])))
    return results


def nn_accuracy(results: Sequence[NeighbourResult]) -> float:
    """Fraction of queries whose nearest neighbour has their MoA (NaN without queries)."""
    return float(np.mean([r.correct for r in results])) if results else float("nan")
