"""Synthetic predictions CSVs in the formats.md layout, with known dose-response parameters."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mcnn.dose.fit import ll4

CONCENTRATIONS = tuple(float(f"{v:.6g}") for v in np.logspace(-2, 2, 8))
INDEX_COLUMNS = ("key", "label", "class_name", "Metadata_Plate", "Metadata_Well", "Metadata_Site",
                 "Metadata_Compound", "Metadata_Concentration", "Metadata_Replicate")


def write_predictions(path: Path, compounds: dict[str, tuple[float, float, float, float]],
                      class_names: Sequence[str] = ("negative", "positive"), *, replicates: int = 3,
                      sites: int = 3, controls_per_plate: int = 2, noise: float = 0.0, seed: int = 0,
                      concentrations: Sequence[float] = CONCENTRATIONS, target: dict[str, int] | None = None) -> Path:
    """Write a predictions CSV: per compound, LL.4 ``(b, c, d, e)`` for the probability of its target class
    (default: class 1), the rest of the probability mass on class 0. Each replicate is a plate; each
    (compound, concentration) a well; ``sites`` fields per well; DMSO control wells at concentration 0."""
    rng = np.random.default_rng(seed)
    k = len(class_names)
    rows = []
    wells = iter(f"{r}{c:02d}" for r in "BCDEFGHIJKLMNOP" for c in range(2, 24))
    plan = [(name, conc) for name in compounds for conc in concentrations]
    plan += [("DMSO", 0.0)] * controls_per_plate
    well_of = {i: next(wells) for i in range(len(plan))}
    for rep in range(1, replicates + 1):
        plate = f"P{rep}"
        for i, (name, conc) in enumerate(plan):
            cls = (target or {}).get(name, 1)
            base = 0.02 if name == "DMSO" else float(ll4(conc, *compounds[name]))
            rep_shift = rng.normal(0, noise)
            for site in range(1, sites + 1):
                p = float(np.clip(base + rep_shift + rng.normal(0, noise / 2), 0, 1))
                probs = np.zeros(k)
                probs[cls] = p
                probs[0] += 1 - p
                label = int(np.argmax(probs))
                rows.append({
                    "key": f"{len(rows):08d}_{plate}/{well_of[i]}/s{site}", "label": "-1", "class_name": "",
                    "Metadata_Plate": plate, "Metadata_Well": well_of[i], "Metadata_Site": str(site),
                    "Metadata_Compound": name, "Metadata_Concentration": f"{conc:g}", "Metadata_Replicate": str(rep),
                    "predicted_label": str(label), "predicted_class": class_names[label],
                    **{f"prob_{c}": f"{v:.6f}" for c, v in zip(class_names, probs, strict=True)},
                })
    columns = [*INDEX_COLUMNS, "predicted_label", "predicted_class", *(f"prob_{c}" for c in class_names)]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path
