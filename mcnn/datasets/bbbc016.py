"""BBBC016: orphan-GPCR Transfluor assay in U2OS cells (undisclosed compound).

Download (https://data.broadinstitute.org/bbbc/BBBC016/): ``BBBC016_v1_images.zip`` and
``BBBC016_v1_platemap.txt``::

    RAW/BBBC016_v1_images/AS_09047_050428030001_O<WW>f<FF>d<C>.TIF   8-bit, 512 x 512
        wells O01-O24 (row O of a 384-well plate), fields f00-f02, d0 = DNA (Hoechst), d2 = GFP
    RAW/BBBC016_v1_platemap.txt    a header line, then 72 doses, one per field, sorted by well then field

24 wells x 3 fields x 2 channels = 144 TIFFs; dose 0 = control. The paper's set: the two lowest
(neutral) and two highest (positive) concentrations, one field per well in cross-validation
(4 + 4 images); dose set: every field with a dose above 0.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import (
    Choice,
    Dataset,
    Field,
    Labelled,
    Option,
    Plan,
    Problems,
    format_number,
    lowest_highest,
    require_dir,
    rng_for,
    select_fields,
    with_meta,
)
from mcnn.datasets.imageio import write_tiff
from mcnn.datasets.plates import read_platemap, replicate_numbers, well_name, write_platemap
from mcnn.errors import ConfigError, DatasetLayoutError
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype

IMAGES = "BBBC016_v1_images"
PLATEMAP = "BBBC016_v1_platemap.txt"
BARCODE = "AS_09047_050428030001"
FILE_RE = re.compile(r"^(.+)_([A-P])(\d{2})f(\d{2})d(\d)\.tiff?$", re.IGNORECASE)
CHANNEL_CODES = {"GFP": 2, "DNA": 0}
CLASSES = ("neutral", "positive")
COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
           "Metadata_Replicate", "Metadata_Role")
#: Look-alike doses: 0 (control) and an 11-step series; wells O01-O12 replicate 1, O13-O24 replicate 2.
DOSES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


class BBBC016(Dataset):
    name = "bbbc016"
    title = "BBBC016 orphan-GPCR Transfluor (U2OS; undisclosed compound)"
    default_channels = ("GFP", "DNA")
    dtypes = ("uint8",)
    real_size = (512, 512)
    small_size = (64, 64)
    options = (
        Option("cv_field", "first", "field used per well in cross-validation: first (f00), last, a field number, "
               "or all"),
    )
    download_hint = f"unzip BBBC016_v1_images.zip into RAW and put {PLATEMAP} next to it"

    def configure(self) -> None:
        value = self.opts["cv_field"]
        if value not in ("first", "last", "all") and not value.isdigit():
            raise ConfigError(f"--option cv_field={value}: expected first, last, all or a field number")

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        folder = require_dir(raw / IMAGES, "the unpacked BBBC016_v1_images.zip", self.download_hint)
        found: dict[tuple[str, int, int], str] = {}
        barcodes = set()
        for entry in sorted(p.name for p in folder.iterdir()):
            m = FILE_RE.match(entry)
            if m:
                barcodes.add(m.group(1))
                well = well_name(ord(m.group(2).upper()) - ord("A"), int(m.group(3)))
                found[(well, int(m.group(4)), int(m.group(5)))] = entry
        if not found:
            raise DatasetLayoutError(f"{folder}: no <plate>_<row><col>f<field>d<channel>.TIF files")
        if len(barcodes) > 1:
            raise DatasetLayoutError(f"{folder}: files of several plates ({', '.join(sorted(barcodes))})")
        barcode = barcodes.pop()
        wells = sorted({w for w, _, _ in found})
        sites = sorted({s for _, s, _ in found})
        pairs = [(w, s) for w in wells for s in sites]
        doses = [float(t) for t in read_platemap(raw / PLATEMAP, len(pairs))]
        fields: list[Field] = []
        for (well, site), dose in zip(pairs, doses, strict=True):
            files = []
            for name, code in CHANNEL_CODES.items():
                entry = found.get((well, site, code))
                if entry is None:
                    problems.bad(f"{IMAGES}/{barcode}_{well}f{site:02d}d{code}.TIF",
                                 f"missing {name} channel file (d{code}) of well {well} field f{site:02d}")
                    files.append(None)
                else:
                    files.append(f"{IMAGES}/{entry}")
            if None in files:
                continue
            meta = {"Metadata_Plate": barcode, "Metadata_Well": well, "Metadata_Site": site,
                    "Metadata_Compound": "undisclosed", "Metadata_Concentration": format_number(dose),
                    "Metadata_Replicate": 0, "Metadata_Role": "negative_control" if dose == 0 else "treatment"}
            fields.append(Field(f"{barcode}/{well}/s{site}", tuple(files), meta, plate=barcode, control=dose == 0))
        well_dose: dict[str, float] = {}
        for f in fields:
            well_dose.setdefault(f.meta["Metadata_Well"], float(f.meta["Metadata_Concentration"]))
        by_dose: dict[float, list[str]] = defaultdict(list)
        for w, d in well_dose.items():
            by_dose[d].append(w)
        replicate = replicate_numbers(dict(by_dose))
        fields = [with_meta(f, Metadata_Replicate=replicate[f.meta["Metadata_Well"]]) for f in fields]
        low, high = lowest_highest([float(f.meta["Metadata_Concentration"]) for f in fields])
        labelled = []
        for f in select_fields(fields, self.opts["cv_field"] if protocol == "cv" else "all"):
            d = float(f.meta["Metadata_Concentration"])
            if d in low:
                labelled.append(Labelled(f, 0))
            elif d in high:
                labelled.append(Labelled(f, 1))
        plan = Plan(classes=CLASSES, labelled=labelled, columns=COLUMNS,
                    unlabelled={"dose": [f for f in fields if float(f.meta["Metadata_Concentration"]) > 0]},
                    controls=[f for f in fields if f.control],
                    concentration_unit="as in BBBC016_v1_platemap.txt (not documented)")
        plan.choices += [
            Choice("BBBC016 field used in cross-validation", f"{self.opts['cv_field']} field of each well "
                   "(the paper uses one field per well; which one is not stated)",
                   "--option cv_field=N|first|last|all"),
            Choice("BBBC016 classes", "the two lowest doses of the plate map (0 = control included) are neutral, the "
                   "two highest positive; each field takes the dose the plate map gives it"),
        ]
        plan.counts = {"wells": len(well_dose), "fields": len(fields)}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        height, width = self.image_size(size)
        doses = []
        count = 0
        for w in range(1, 25):
            k = (w - 1) % 12
            t = looks.response(k / 11.0) if k else 0.0
            for site in range(3):
                doses.append(format_number(DOSES[k]))
                rng = rng_for(seed, self.name, w, site)
                planes = render(rng, height, width, blend(looks.TRANSFLUOR_NEUTRAL, looks.TRANSFLUOR_POSITIVE, t))
                stem = f"{BARCODE}_O{w:02d}f{site:02d}"
                write_tiff(out / IMAGES / f"{stem}d0.TIF", to_dtype(planes["nuclei"], np.uint8, 170, 6))
                write_tiff(out / IMAGES / f"{stem}d2.TIF", to_dtype(planes["signal"], np.uint8, 140, 8))
                count += 2
        write_platemap(out / PLATEMAP, "Dose", doses)
        return {"images": count, "height": height, "width": width, "folder": IMAGES}
