"""BBBC016: orphan-GPCR Transfluor assay in U2OS cells (undisclosed compound).

Download (https://bbbc.broadinstitute.org/BBBC016): ``BBBC016_v1_images.zip`` and
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
from pathlib import Path

from mcnn.datasets.base import Choice, Field, Option, Problems, format_number
from mcnn.datasets.platemap import BASE_COLUMNS, PlateMapDataset, PlateRead, check_cv_field, number_replicates
from mcnn.datasets.plates import read_platemap, well_name
from mcnn.errors import DatasetLayoutError
from mcnn.setsizes import cv_sizes

IMAGES = "BBBC016_v1_images"
PLATEMAP = "BBBC016_v1_platemap.txt"
BARCODE = "AS_09047_050428030001"
FILE_RE = re.compile(r"^(.+)_([A-P])(\d{2})f(\d{2})d(\d)\.tiff?$", re.IGNORECASE)
CHANNEL_CODES = {"GFP": 2, "DNA": 0}
COLUMNS = (*BASE_COLUMNS, "Metadata_Role")
#: Look-alike doses: 0 (control) and an 11-step series; wells O01-O12 replicate 1, O13-O24 replicate 2.
DOSES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


class BBBC016(PlateMapDataset):
    """BBBC016 read from its download: row O of a 384-well plate, 3 fields per well, one dose per field."""

    name = "bbbc016"
    title = "BBBC016 orphan-GPCR Transfluor (U2OS; undisclosed compound)"
    default_channels = ("GFP", "DNA")
    dtypes = ("uint8",)
    real_size = (512, 512)
    small_size = (64, 64)
    batch = 16
    set_sizes = cv_sizes([4, 4], 0.1)
    notes = ("4 images per class (2 lowest/highest concentrations x 2 replicates, one field per well), derived",)
    images = IMAGES
    images_what = "the unpacked BBBC016_v1_images.zip"
    columns = COLUMNS
    concentration_unit = "as in BBBC016_v1_platemap.txt (not documented)"
    options = (
        Option("cv_field", "first", "field used per well in cross-validation: first (f00), last, a field number, "
               "or all"),
    )
    download_hint = f"unzip BBBC016_v1_images.zip into RAW and put {PLATEMAP} next to it"

    def configure(self) -> None:
        """Validate ``cv_field``."""
        check_cv_field(self.opts["cv_field"])

    def read_plate(self, raw: Path, folder: Path, problems: Problems, check_files: bool) -> PlateRead:
        """Every field with both channel files, each at the dose the plate map gives it."""
        found, barcode = _scan(folder)
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
                else:
                    files.append(f"{IMAGES}/{entry}")
            if len(files) < len(CHANNEL_CODES):
                continue
            meta = {"Metadata_Plate": barcode, "Metadata_Well": well, "Metadata_Site": site,
                    "Metadata_Compound": "undisclosed", "Metadata_Concentration": format_number(dose),
                    "Metadata_Replicate": 0, "Metadata_Role": "negative_control" if dose == 0 else "treatment"}
            fields.append(Field(f"{barcode}/{well}/s{site}", tuple(files), meta, plate=barcode, control=dose == 0))
        return PlateRead(number_replicates(fields))

    def choices(self, read: PlateRead) -> list[Choice]:
        """The field used in cross-validation and the class rule."""
        return [
            Choice("BBBC016 field used in cross-validation", f"{self.opts['cv_field']} field of each well "
                   "(the paper uses one field per well; which one is not stated)",
                   "--option cv_field=N|first|last|all"),
            Choice("BBBC016 classes", "the two lowest doses of the plate map (0 = control included) are neutral, the "
                   "two highest positive; each field takes the dose the plate map gives it"),
        ]


def _scan(folder: Path) -> tuple[dict[tuple[str, int, int], str], str]:
    """(well, field, channel code) -> file name of every TIFF in ``folder``, and the plate's barcode."""
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
    return found, barcodes.pop()
