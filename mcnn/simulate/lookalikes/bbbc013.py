"""Look-alike of the BBBC013 download (https://bbbc.broadinstitute.org/BBBC013).

The plate map and the 192 BMPs in the real layout (:mod:`mcnn.datasets.bbbc013`); the FKHR-GFP
signal moves from the cytoplasm into the nucleus with the planted response of each well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, format_number, rng_for
from mcnn.datasets.bbbc013 import IMAGES, LY294002_UM, PLATEMAP, WORTMANNIN_NM, file_name, role_of
from mcnn.datasets.imageio import write_bmp
from mcnn.datasets.plates import write_platemap
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype


def _platemap_values() -> list[float]:
    """Plate-map value of each well, row-major: the dilution series, the positive controls, 0 elsewhere."""
    values = []
    for row in range(8):
        for col in range(1, 13):
            role = role_of(row, col)
            if role == "treatment":
                series = WORTMANNIN_NM if row < 4 else LY294002_UM
                values.append(series[col - 3])
            elif role == "positive_control":
                values.append(150.0 if row < 4 else 80.0)
            else:
                values.append(0.0)
    return values


def _response(row: int, col: int) -> float:
    """Planted translocation (0..1) of a well: 1 for positive controls, the series' response for treatments."""
    role = role_of(row, col)
    if role == "positive_control":
        return 1.0
    if role == "treatment":
        return looks.response((col - 3) / 8.0)
    return 0.0


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the BBBC013 look-alike (``height`` x ``width`` 8-bit BMPs) into ``out``; returns a summary."""
    write_platemap(out / PLATEMAP, "DESCRIPTION: BBBC013 plate map, row-major A01..H12 "
                   "(wortmannin nM rows A-D, LY294002 uM rows E-H)", [format_number(v) for v in _platemap_values()])
    count = 0
    for row in range(8):
        for col in range(1, 13):
            rng = rng_for(seed, ds.name, row, col)
            look = blend(looks.TRANSLOCATION_NEUTRAL, looks.TRANSLOCATION_POSITIVE, _response(row, col))
            planes = render(rng, height, width, look)
            write_bmp(out / IMAGES / file_name(1, row, col), to_dtype(planes["signal"], np.uint8, 150, 8))
            write_bmp(out / IMAGES / file_name(2, row, col), to_dtype(planes["nuclei"], np.uint8, 170, 6))
            count += 2
    return {"images": count, "height": height, "width": width, "folder": IMAGES}
