"""Look-alike of the BBBC014 download (https://bbbc.broadinstitute.org/BBBC014).

The ``10^x`` plate map (CRLF line ends) and the 192 BMPs in the real layout
(:mod:`mcnn.datasets.bbbc014`); NF-kB translocates with the TNF-alpha concentration, highest in
column 1. ``--option channel1=FITC`` writes FITC as Channel 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, rng_for
from mcnn.datasets.bbbc014 import IMAGES, PLATEMAP, file_name
from mcnn.datasets.imageio import write_bmp
from mcnn.datasets.plates import write_platemap
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the BBBC014 look-alike (``height`` x ``width`` 8-bit BMPs) into ``out``; returns a summary."""
    exponents = [-7.0 - 0.5 * c for c in range(12)]
    tokens = [f"10^{e:g}" for _ in range(8) for e in exponents]
    write_platemap(out / PLATEMAP, "DESCRIPTION: TNF-alpha concentration per well, row-major A01..H12",
                   tokens, newline="\r\n")
    count = 0
    for row in range(8):
        for col in range(1, 13):
            t = looks.response((12 - col) / 11.0)
            rng = rng_for(seed, ds.name, row, col)
            planes = render(rng, height, width, blend(looks.TRANSLOCATION_NEUTRAL, looks.TRANSLOCATION_POSITIVE, t))
            dapi = to_dtype(planes["nuclei"], np.uint8, 160, 5)
            fitc = to_dtype(planes["signal"], np.uint8, 120, 10)
            first, second = (dapi, fitc) if ds.opts["channel1"] == "DAPI" else (fitc, dapi)
            write_bmp(out / IMAGES / file_name(1, row, col), first)
            write_bmp(out / IMAGES / file_name(2, row, col), second)
            count += 2
    return {"images": count, "height": height, "width": width, "folder": IMAGES}
