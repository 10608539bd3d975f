"""Look-alike of the BBBC016 download (https://bbbc.broadinstitute.org/BBBC016).

A per-field dose plate map and 144 TIFFs (wells O01-O24 x 3 fields x d0/d2) in the layout
:mod:`mcnn.datasets.bbbc016` reads; wells O01-O12 and O13-O24 are two replicates of one series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, format_number, rng_for
from mcnn.datasets.bbbc016 import BARCODE, DOSES, IMAGES, PLATEMAP
from mcnn.datasets.imageio import write_tiff
from mcnn.datasets.plates import write_platemap
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the BBBC016 look-alike (``height`` x ``width`` 8-bit TIFFs) into ``out``; returns a summary."""
    doses = []
    count = 0
    for w in range(1, 25):
        k = (w - 1) % 12
        t = looks.response(k / 11.0) if k else 0.0
        for site in range(3):
            doses.append(format_number(DOSES[k]))
            rng = rng_for(seed, ds.name, w, site)
            planes = render(rng, height, width, blend(looks.TRANSFLUOR_NEUTRAL, looks.TRANSFLUOR_POSITIVE, t))
            stem = f"{BARCODE}_O{w:02d}f{site:02d}"
            write_tiff(out / IMAGES / f"{stem}d0.TIF", to_dtype(planes["nuclei"], np.uint8, 170, 6))
            write_tiff(out / IMAGES / f"{stem}d2.TIF", to_dtype(planes["signal"], np.uint8, 140, 8))
            count += 2
    write_platemap(out / PLATEMAP, "Dose", doses)
    return {"images": count, "height": height, "width": width, "folder": IMAGES}
