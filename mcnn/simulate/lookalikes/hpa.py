"""Look-alike of the HPA re-annotation download (http://murphylab.web.cmu.edu/software/2012_PLoS_ONE_Reannotation/).

The metadata .mat files (Murphy-lab absolute paths, single- and multi-location classes, one field
listed twice) and four 8-bit TIFFs per field, in the layout :mod:`mcnn.datasets.hpa` reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, rng_for
from mcnn.datasets.hpa import ENSEMBL, INFO, LISTS, PAPER_CLASSES, SUFFIX
from mcnn.datasets.imageio import write_tiff
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import render, to_dtype

#: Look-alike pattern of each class.
PATTERN = {"Actin filaments": "actin", "Centrosome": "centrosome", "Cytoplasm": "cytoplasm", "ER": "er",
           "Golgi": "golgi_giantin", "Intermediate filaments": "intermediate_filaments",
           "Microtubules": "microtubules", "Mitochondria": "mitochondria", "Nuclei": "dna",
           "Nuclei but not nucleoli": "nucleus_no_nucleoli", "Nucleoli": "nucleolus",
           "Plasma membrane": "membrane", "Vesicles": "vesicles"}
#: Site prefix as in the Murphy lab paths; single-location fields per class.
MURPHY_PREFIX = "/share/images/HPA/images/IFconfocal"
PER_CLASS = 6
#: Multi-location classes (left out by the reader).
MULTI = ("Cytoplasm,Nuclei", "Golgi,Vesicles", "Mitochondria,Cytoplasm")


def _entries() -> list[tuple[str, int, int]]:
    """(stem, 1-based class index, antibody id) of every listed field; the first is listed twice."""
    entries: list[tuple[str, int, int]] = []
    antibody = 1000
    for k in range(1, len(PAPER_CLASSES) + len(MULTI) + 1):
        count = PER_CLASS if k <= len(PAPER_CLASSES) else 2
        for i in range(count):
            antibody += 1
            entries.append((f"A-431/{antibody}/{antibody}_{'ABCDEFGH'[i % 8]}{i + 1}_1", k, antibody))
    entries.append(entries[0])  # listed twice (the loader skips repeated protein paths)
    return entries


def _cells(values: list[str]) -> np.ndarray:
    """A MATLAB cell column of strings (as scipy's savemat writes an object array)."""
    cell = np.empty((len(values), 1), dtype=object)
    for i, v in enumerate(values):
        cell[i, 0] = v
    return cell


def _write_mats(out: Path, entries: list[tuple[str, int, int]]) -> None:
    """The Info .mat (path lists, labels, classes) and the EnsEMBL .mat of the look-alike."""
    from scipy.io import savemat

    mat: dict[str, Any] = {"antibodyids": np.array([[a] for _, _, a in entries], dtype=np.float64),
                           "classlabels": np.array([[k] for _, k, _ in entries], dtype=np.float64)}
    for key in LISTS:
        mat[key] = _cells([f"{MURPHY_PREFIX}/{stem}_{SUFFIX[key]}.tif" for stem, _, _ in entries])
    mat["readlist_mask"] = _cells(["./data/masks/" + f"{MURPHY_PREFIX}/{stem}_green.png".replace("/", "_")
                                   for stem, _, _ in entries])
    mat["classes"] = _cells([*PAPER_CLASSES, *MULTI])
    out.mkdir(parents=True, exist_ok=True)
    savemat(str(out / INFO), mat)
    unique = sorted({a for _, _, a in entries})
    savemat(str(out / ENSEMBL), {"antibodyids": np.array([[a] for a in unique], dtype=np.float64),
                                 "EnsEMBL_ID": _cells([f"ENSG{a:011d}" for a in unique]),
                                 "proteinnames_uniprot2": _cells([f"P{a:05d}" for a in unique])})


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the HPA look-alike (``height`` x ``width`` 8-bit TIFFs and the .mat files) into ``out``."""
    entries = _entries()
    mat_classes = [*PAPER_CLASSES, *MULTI]
    count = 0
    written = set()
    for stem, k, _ in entries:
        if stem in written:
            continue
        written.add(stem)
        pattern = PATTERN.get(mat_classes[k - 1], "cytoplasm") if k <= len(PAPER_CLASSES) else "cytoplasm"
        look = looks.pattern_look(pattern, {"nucleus": {"nucleus": 1.0}, "microtubules": {"filaments": 0.8},
                                            "ER": {"reticular": 1.0}}, cells=5.0, spread=0.7)
        planes = render(rng_for(seed, ds.name, stem), height, width, look)
        base = out / "images/HPA/images/IFconfocal" / stem
        for key, channel in zip(LISTS, ds.default_channels, strict=True):
            write_tiff(base.with_name(f"{base.name}_{SUFFIX[key]}.tif"), to_dtype(planes[channel], np.uint8, 160, 4))
            count += 1
    _write_mats(out, entries)
    return {"images": count, "height": height, "width": width, "folder": "images/HPA/images/IFconfocal"}
