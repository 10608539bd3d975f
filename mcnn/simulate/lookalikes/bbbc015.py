"""Look-alike of the BBBC015 download (https://bbbc.broadinstitute.org/BBBC015).

A per-well plate map (CRLF line ends) and 288 JPEGs (36 wells x 4 fields x green/crimson) in the
layout :mod:`mcnn.datasets.bbbc015` reads; arrestin-GFP forms pits along the half-log series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, format_number, rng_for
from mcnn.datasets.bbbc015 import IMAGES, PLATEMAP, SERIES
from mcnn.datasets.imageio import write_jpeg
from mcnn.datasets.plates import write_platemap
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the BBBC015 look-alike (``height`` x ``width`` 8-bit JPEGs) into ``out``; returns a summary."""
    values = [SERIES[(w - 1) % 12] for w in range(1, 37)]
    write_platemap(out / PLATEMAP, "Isoproterenol concentration per well (wells 01-36)",
                   [format_number(v) for v in values], newline="\r\n")
    count = 0
    for w in range(1, 37):
        t = looks.response(((w - 1) % 12) / 11.0)
        for s in range(1, 5):
            rng = rng_for(seed, ds.name, w, s)
            planes = render(rng, height, width, blend(looks.TRANSFLUOR_NEUTRAL, looks.TRANSFLUOR_POSITIVE, t))
            write_jpeg(out / IMAGES / f"{w:02d}_{s}_green.JPG", to_dtype(planes["signal"], np.uint8, 140, 8))
            write_jpeg(out / IMAGES / f"{w:02d}_{s}_crimson.JPG", to_dtype(planes["nuclei"], np.uint8, 150, 6))
            count += 2
    return {"images": count, "height": height, "width": width, "folder": IMAGES}
