"""Look-alikes of the IICBU-2008 HeLa and CHO downloads (https://ome.grc.nia.nih.gov/iicbu2008/).

One folder of single-channel 16-bit TIFFs per class, with the documented number of images, in the
layout :mod:`mcnn.datasets.classfolders` reads; each class shows its subcellular pattern.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import rng_for
from mcnn.datasets.classfolders import ClassFolders
from mcnn.datasets.imageio import write_tiff
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import render, to_dtype

#: Look-alike pattern (a key of :data:`looks.PATTERNS`) of each class folder, per dataset.
PATTERNS: dict[str, dict[str, str]] = {
    "hela": {"actin": "actin", "dna": "dna", "endosome": "endosome", "er": "er", "golgia": "golgi_giantin",
             "golgpp": "golgi_gpp130", "lysosome": "lysosome", "microtubules": "microtubules",
             "mitochondria": "mitochondria", "nucleolus": "nucleolus"},
    "cho": {"giantin": "golgi_giantin", "hoechst": "dna", "lamp2": "lysosome", "nop4": "nucleolus",
            "tubulin": "microtubules"},
}


def file_name(folder: str, index: int) -> str:
    """Look-alike file name of image ``index`` of class ``folder`` (the real names are not documented)."""
    return f"{folder}_{index:03d}.tif"


def synthesize(ds: ClassFolders, out: Path, height: int, width: int, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Write the look-alike of ``ds`` (HeLa or CHO; ``height`` x ``width`` 16-bit TIFFs) into ``out``."""
    count = 0
    for folder, n in ds.classes_doc:
        look = looks.pattern_look(PATTERNS[ds.name][folder], cells=1.3, spots=10, spread=0.4)
        for i in range(1, n + 1):
            rng = rng_for(seed, ds.name, folder, i)
            plane = render(rng, height, width, look)["protein"]
            write_tiff(out / ds.top / folder / file_name(folder, i), to_dtype(plane, np.uint16, 2500, 180))
            count += 1
    return {"images": count, "height": height, "width": width, "folder": ds.top}
