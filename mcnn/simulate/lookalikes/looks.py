"""Looks of the synthetic look-alikes: which structure each channel shows per class or dose.

Kept apart from the dataset modules so that every look-alike uses the same vocabulary
(:mod:`mcnn.simulate.lookalikes.render`).
"""

from __future__ import annotations

from mcnn.simulate.hill import hill_fraction_log
from mcnn.simulate.lookalikes.render import Look

#: Translocation assays (BBBC013 FKHR-GFP, BBBC014 NF-kB): the signal channel moves from the
#: cytoplasm (neutral) into the nucleus (positive); the second channel is the nuclear stain.
TRANSLOCATION_NEUTRAL = Look({"signal": {"cytoplasm": 0.9, "nucleus": 0.1}, "nuclei": {"nucleus": 1.0}})
TRANSLOCATION_POSITIVE = Look({"signal": {"cytoplasm": 0.15, "nucleus": 1.1}, "nuclei": {"nucleus": 1.0}})

#: Transfluor assays (BBBC015, BBBC016): arrestin-GFP diffuse (neutral) or in vesicle spots (positive).
TRANSFLUOR_NEUTRAL = Look({"signal": {"cytoplasm": 0.7, "membrane": 0.3}, "nuclei": {"nucleus": 1.0}}, spots=2)
TRANSFLUOR_POSITIVE = Look({"signal": {"cytoplasm": 0.25, "spots": 1.0}, "nuclei": {"nucleus": 1.0}}, spots=14)


def response(position: float, ec50: float = 0.5, slope: float = 8.0) -> float:
    """Fraction of the way from the neutral to the positive look at ``position`` along a dilution series.

    ``position`` runs from 0 (first well) to 1 (last well) in equal steps of log concentration,
    so the planted dose response is the simulator's Hill curve on that log scale
    (:func:`mcnn.simulate.hill.hill_fraction_log`), half-maximal at ``ec50`` with Hill slope ``slope``.
    """
    return float(hill_fraction_log(position, ec50, slope))


#: Sub-cellular patterns (HeLa, CHO, HPA protein channel): structure weights per pattern.
PATTERNS: dict[str, dict[str, float]] = {
    "actin": {"filaments": 1.0, "membrane": 0.4},
    "dna": {"nucleus": 1.0},
    "endosome": {"spots": 1.0, "cytoplasm": 0.1},
    "er": {"reticular": 1.0, "cytoplasm": 0.1},
    "golgi_giantin": {"perinuclear": 1.0},
    "golgi_gpp130": {"perinuclear": 0.8, "spots": 0.3},
    "lysosome": {"spots": 0.8, "perinuclear": 0.3},
    "microtubules": {"filaments": 0.8, "cytoplasm": 0.3},
    "mitochondria": {"mitochondria": 1.0},
    "nucleolus": {"nucleoli": 1.0, "nucleus": 0.1},
    "cytoplasm": {"cytoplasm": 1.0},
    "centrosome": {"centrosome": 1.0, "cytoplasm": 0.05},
    "intermediate_filaments": {"filaments": 0.6, "reticular": 0.4},
    "nucleus_no_nucleoli": {"nucleus": 1.0, "nucleoli": -0.6},
    "membrane": {"membrane": 1.0},
    "vesicles": {"spots": 1.0},
}


def pattern_look(pattern: str, extra_channels: dict[str, dict[str, float]] | None = None, *,
                 cells: float = 6.0, spots: int = 8, spread: float = 1.0) -> Look:
    """A look whose ``protein`` channel shows ``pattern`` (a key of :data:`PATTERNS`)."""
    channels = {"protein": PATTERNS[pattern]}
    channels.update(extra_channels or {})
    return Look(channels, cells=cells, cell_radius=0.16, spots=spots, spread=spread)
