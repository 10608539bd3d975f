"""BBBC014: NF-kB cytoplasm-to-nucleus translocation in MCF7 and A549 cells (TNF-alpha).

Download (https://bbbc.broadinstitute.org/BBBC014): ``BBBC014_v1_images.zip`` and
``BBBC014_v1_platemap_all.txt``::

    RAW/BBBC014_v1_images/Channel <c>-<NN>-<R>-<CC>-00.Bmp   note the space and "-00"; 96 x 2 = 192
    RAW/BBBC014_v1_platemap_all.txt                          DESCRIPTION line + 96 tokens "10^<exp>"

Rows A-D MCF7, E-H A549; 12 TNF-alpha concentrations along the columns (highest in column 1), no
separate control wells. The paper's set: the two lowest (neutral) and two highest (positive)
concentrations of each cell line (16 + 16 images); dose set: all 96 wells.
"""

from __future__ import annotations

import re
from pathlib import Path

from mcnn.datasets.base import Choice, Field, FileIndex, Labelled, Option, Problems, format_number, lowest_highest
from mcnn.datasets.platemap import BASE_COLUMNS, PlateMapDataset, PlateRead
from mcnn.datasets.plates import ordinal, read_platemap, row_letter, well_name
from mcnn.errors import DatasetLayoutError
from mcnn.setsizes import cv_sizes

IMAGES = "BBBC014_v1_images"
PLATEMAP = "BBBC014_v1_platemap_all.txt"
PLATE = "BBBC014"
FILE_RE = re.compile(r"^Channel ([12])-(\d{2})-([A-H])-(\d{2})-(\d{2})\.bmp$", re.IGNORECASE)
TOKEN_RE = re.compile(r"^10\^\(?([-+]?\d+(?:\.\d+)?)\)?$")
COLUMNS = (*BASE_COLUMNS, "Metadata_CellLine")


def file_name(channel: int, row: int, col: int) -> str:
    """``Channel 1-01-A-01-00.Bmp`` (channel 1 or 2, 0-based row, 1-based column)."""
    return f"Channel {channel}-{ordinal(row, col):02d}-{row_letter(row)}-{col:02d}-00.Bmp"


def cell_line(row: int) -> str:
    """Cell line of a plate row: rows A-D MCF7, E-H A549."""
    return "MCF7" if row < 4 else "A549"


def parse_token(token: str, source: str) -> float:
    """The concentration of a plate-map token ``10^-7`` (also ``10^(-7.5)``)."""
    m = TOKEN_RE.match(token.strip())
    if not m:
        raise DatasetLayoutError(f"{source}: {token!r} is not of the form 10^<exponent>")
    return float(10.0 ** float(m.group(1)))


class BBBC014(PlateMapDataset):
    """BBBC014 read from its download: 96 wells, a TNF-alpha series along the columns, two cell lines."""

    name = "bbbc014"
    title = "BBBC014 NF-kB translocation (MCF7, A549; TNF-alpha)"
    default_channels = ("DAPI", "FITC")
    dtypes = ("uint8",)
    real_size = (1024, 1360)
    small_size = (64, 85)
    batch = 8
    set_sizes = cv_sizes([16, 16], 0.1)
    notes = ("16 images per class (two lowest/highest concentrations x 8 rows), derived",
             "channel order Channel 1/Channel 2 is uncertain in the sources")
    images = IMAGES
    images_what = "the unpacked BBBC014_v1_images.zip"
    columns = COLUMNS
    concentration_unit = "as in the plate map (10^x; g/mL or M, UNCERTAIN)"
    counts_fields = False
    options = (
        Option("channel1", "DAPI", "stain of the 'Channel 1' files (sources disagree); LMDB channel 0 is always "
               "Channel 1", ("DAPI", "FITC")),
    )
    download_hint = f"unzip BBBC014_v1_images.zip into RAW and put {PLATEMAP} next to it"

    def configure(self) -> None:
        """Channel order from ``--option channel1``."""
        self.channels = ("DAPI", "FITC") if self.opts["channel1"] == "DAPI" else ("FITC", "DAPI")

    def read_plate(self, raw: Path, folder: Path, problems: Problems, check_files: bool) -> PlateRead:
        """One field per well with both channel files, in well order."""
        tokens = read_platemap(raw / PLATEMAP, 96, parse=None, header_prefix="DESCRIPTION", latin1=True)
        values = [parse_token(t, str(raw / PLATEMAP)) for t in tokens]
        index = FileIndex(raw)
        if check_files:
            _check_names(folder, problems)
        fields: list[Field] = []
        kept: dict[str, float] = {}
        for i, value in enumerate(values):
            row, col = divmod(i, 12)
            col += 1
            well = well_name(row, col)
            files = []
            for ch in (1, 2):
                rel = f"{IMAGES}/{file_name(ch, row, col)}"
                found = index.find(rel) if check_files else rel
                if found is None:
                    problems.bad(rel, f"missing channel {ch} file of well {well}")
                files.append(found)
            if None in files:
                continue
            meta = {"Metadata_Plate": PLATE, "Metadata_Well": well, "Metadata_Site": 1,
                    "Metadata_Compound": "TNFalpha", "Metadata_Concentration": format_number(value),
                    "Metadata_Replicate": row % 4 + 1, "Metadata_CellLine": cell_line(row)}
            fields.append(Field(f"{PLATE}/{well}/s1", tuple(str(f) for f in files), meta, plate=PLATE))
            kept[fields[-1].name] = value
        return PlateRead(fields, {"values": kept})

    def label(self, read: PlateRead, protocol: str) -> list[Labelled]:
        """Per cell line, the two lowest concentrations are neutral and the two highest positive."""
        value = read.info["values"]
        by_line: dict[str, list[float]] = {}
        for f in read.fields:
            by_line.setdefault(str(f.meta["Metadata_CellLine"]), []).append(value[f.name])
        extremes = {line: lowest_highest(v) for line, v in by_line.items()}
        labelled = []
        for f in read.fields:
            low, high = extremes[str(f.meta["Metadata_CellLine"])]
            if value[f.name] in low:
                labelled.append(Labelled(f, 0))
            elif value[f.name] in high:
                labelled.append(Labelled(f, 1))
        return labelled

    def dose_fields(self, read: PlateRead) -> list[Field]:
        """All 96 wells (there are no separate control wells)."""
        return list(read.fields)

    def choices(self, read: PlateRead) -> list[Choice]:
        """The channel order, the class rule and the dose set."""
        return [
            Choice("BBBC014 channel order", f"Channel 1 = {self.channels[0]}, Channel 2 = {self.channels[1]}",
                   "--option channel1=FITC"),
            Choice("BBBC014 classes", "per cell line the two lowest concentrations (neutral) and the two highest "
                   "(positive) of the plate map"),
            Choice("BBBC014 dose set", "all 96 wells (there are no separate control wells)"),
        ]


def _check_names(folder: Path, problems: Problems) -> None:
    """Report BMPs whose well ordinal does not match their row and column."""
    for entry in sorted(p.name for p in folder.iterdir()):
        m = FILE_RE.match(entry)
        if not m:
            continue
        nn, row_l, cc = int(m.group(2)), m.group(3).upper(), int(m.group(4))
        row = ord(row_l) - ord("A")
        if nn != ordinal(row, cc):
            problems.bad(f"{IMAGES}/{entry}", f"well ordinal {nn:02d} does not match well {row_l}{cc:02d}")
