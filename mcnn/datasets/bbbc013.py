"""BBBC013: FKHR-GFP cytoplasm-to-nucleus translocation in U2OS cells (wortmannin, LY294002).

Download (https://bbbc.broadinstitute.org/BBBC013): ``BBBC013_v1_images_bmp.zip`` and
``BBBC013_v1_platemap_all.txt``, unpacked side by side::

    RAW/BBBC013_v1_images_bmp/Channel<c>-<NN>-<R>-<CC>.BMP    c=1 GFP, c=2 DNA; 96 wells x 2 = 192
    RAW/BBBC013_v1_platemap_all.txt                          DESCRIPTION line + 96 values, A01..H12

Plate layout (the plate map of https://bbbc.broadinstitute.org/BBBC013): rows A-D wortmannin,
E-H LY294002; column 1 negative control (A-D) / positive control (E-H), column 12 positive control
(A-D) / negative control (E-H), column 2 empty (0), columns 3-11 a 2-fold dilution series (lowest
in column 3).

The paper's set: controls plus the highest and lowest concentration, 2 classes: ``neutral`` =
negative controls + lowest concentration of each drug, ``positive`` = positive controls +
highest concentration (16 + 16 images). Dose set: every well of columns 3-11 (72 images).
"""

from __future__ import annotations

import re
from pathlib import Path

from mcnn.datasets.base import Choice, Field, FileIndex, Labelled, Option, Problems, format_number
from mcnn.datasets.platemap import BASE_COLUMNS, PlateMapDataset, PlateRead
from mcnn.datasets.plates import ordinal, read_platemap, row_letter, well_name
from mcnn.setsizes import cv_sizes

IMAGES = "BBBC013_v1_images_bmp"
PLATEMAP = "BBBC013_v1_platemap_all.txt"
PLATE = "BBBC013"
FILE_RE = re.compile(r"^Channel([12])-(\d{2})-([A-H])-(\d{2})\.bmp$", re.IGNORECASE)
WORTMANNIN_NM = (0.977, 1.95, 3.91, 7.81, 15.63, 31.25, 62.5, 125.0, 250.0)
LY294002_UM = (0.31, 0.63, 1.25, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
COLUMNS = (*BASE_COLUMNS, "Metadata_Role")


def role_of(row: int, col: int) -> str:
    """Role of a well (0-based row, 1-based column) in the BBBC013 plate layout."""
    if col == 2:
        return "empty"
    if col in (1, 12):
        negative = (col == 1) == (row < 4)
        return "negative_control" if negative else "positive_control"
    return "treatment"


def drug_of(row: int) -> str:
    """Drug of a plate row: rows A-D wortmannin, E-H LY294002."""
    return "wortmannin" if row < 4 else "LY294002"


def file_name(channel: int, row: int, col: int) -> str:
    """``Channel1-01-A-01.BMP`` (channel 1 or 2, 0-based row, 1-based column)."""
    return f"Channel{channel}-{ordinal(row, col):02d}-{row_letter(row)}-{col:02d}.BMP"


class BBBC013(PlateMapDataset):
    """BBBC013 read from its download: 96 wells, controls in columns 1 and 12, two dilution series."""

    name = "bbbc013"
    title = "BBBC013 FKHR-GFP translocation (U2OS; wortmannin, LY294002)"
    default_channels = ("GFP", "DNA")
    dtypes = ("uint8",)
    real_size = (640, 640)
    small_size = (80, 80)
    batch = 16
    set_sizes = cv_sizes([16, 16], 0.1)
    notes = ("16 images per class (controls + lowest/highest concentration) derived from the plate map",)
    images = IMAGES
    images_what = "the unpacked BBBC013_v1_images_bmp.zip"
    columns = COLUMNS
    concentration_unit = "nM"
    counts_fields = False
    options = (
        Option("ly294002_unit", "uM", "unit of the LY294002 rows in the plate map; converted to nM", ("uM", "nM")),
        Option("col2", "exclude", "column 2 (empty, dose 0): leave out, or add to the neutral class",
               ("exclude", "neutral")),
    )
    download_hint = f"unzip BBBC013_v1_images_bmp.zip into RAW and put {PLATEMAP} next to it"

    def read_plate(self, raw: Path, folder: Path, problems: Problems, check_files: bool) -> PlateRead:
        """One field per well with both channel files; ``info`` has the plate-map values and extremes."""
        tokens = read_platemap(raw / PLATEMAP, 96, header_prefix="DESCRIPTION")
        found = _scan(folder, problems) if check_files else {}
        index = FileIndex(raw)
        fields: list[Field] = []
        for i, token in enumerate(tokens):
            row, col = divmod(i, 12)
            files = _channel_files(index, found, row, col + 1, problems, check_files)
            if files is not None:
                fields.append(self._field(row, col + 1, float(token), files))
        # lowest / highest treated concentration of each drug (columns 3-11)
        extremes: dict[str, tuple[float, float]] = {}
        for drug_rows in (range(0, 4), range(4, 8)):
            values = [float(tokens[r * 12 + c - 1]) for r in drug_rows for c in range(3, 12)]
            extremes[drug_of(drug_rows[0])] = (min(values), max(values))
        return PlateRead(fields, {"values": [float(t) for t in tokens], "extremes": extremes})

    def _field(self, row: int, col: int, value: float, files: tuple[str, ...]) -> Field:
        """The field of well (row, col) at plate-map ``value`` (LY294002 rows converted to nM)."""
        well = well_name(row, col)
        conc = value * 1000.0 if row >= 4 and self.opts["ly294002_unit"] == "uM" else value
        role = role_of(row, col)
        compound = "control" if role == "negative_control" else ("none" if role == "empty" else drug_of(row))
        meta = {"Metadata_Plate": PLATE, "Metadata_Well": well, "Metadata_Site": 1,
                "Metadata_Compound": compound, "Metadata_Concentration": format_number(conc),
                "Metadata_Replicate": row % 4 + 1, "Metadata_Role": role}
        return Field(f"{PLATE}/{well}/s1", files, meta, plate=PLATE, control=role == "negative_control")

    def label(self, read: PlateRead, protocol: str) -> list[Labelled]:
        """Controls by role, treatments at their drug's lowest (neutral) or highest (positive) concentration."""
        labelled = []
        for f in read.fields:
            label = self._label_of(f, read)
            if label is not None:
                labelled.append(Labelled(f, label))
        return labelled

    def _label_of(self, f: Field, read: PlateRead) -> int | None:
        role = f.meta["Metadata_Role"]
        if role == "negative_control" or (role == "empty" and self.opts["col2"] == "neutral"):
            return 0
        if role == "positive_control":
            return 1
        if role != "treatment":
            return None
        row, col = ord(f.meta["Metadata_Well"][0]) - ord("A"), int(f.meta["Metadata_Well"][1:])
        value = read.info["values"][row * 12 + col - 1]
        low, high = read.info["extremes"][drug_of(row)]
        return 0 if value == low else (1 if value == high else None)

    def dose_fields(self, read: PlateRead) -> list[Field]:
        """Every treated well (columns 3-11)."""
        return [f for f in read.fields if f.meta["Metadata_Role"] == "treatment"]

    def choices(self, read: PlateRead) -> list[Choice]:
        """The class rule, the plate-map units and the positive control of rows E-H."""
        return [
            Choice("BBBC013 classes (Suppl. Table 2 lost)",
                   "neutral = negative controls (A-D col 1, E-H col 12) + lowest concentration (col 3); "
                   "positive = positive controls (A-D col 12, E-H col 1) + highest concentration (col 11)",
                   "--option col2=neutral adds the dose-0 column 2"),
            Choice("BBBC013 plate-map units", "wortmannin rows in nM, LY294002 rows in uM (converted to nM)",
                   "--option ly294002_unit=nM"),
            Choice("BBBC013 positive control of rows E-H", "LY294002 at the plate map's value (sources disagree: "
                   "wortmannin 150 nM in the Logan CSV)"),
        ]


def _channel_files(index: FileIndex, found: dict[tuple[int, str], str], row: int, col: int, problems: Problems,
                   check_files: bool) -> tuple[str, ...] | None:
    """The two channel files of a well as found on disk (None, reported, if one is missing)."""
    well = well_name(row, col)
    files = []
    ok = True
    for ch in (1, 2):
        rel = f"{IMAGES}/{found.get((ch, well), file_name(ch, row, col))}"
        if check_files and index.find(rel) is None:
            problems.bad(rel, f"missing channel {ch} file of well {well}")
            ok = False
        files.append(index.find(rel) or rel if check_files else rel)
    return tuple(files) if ok else None


def _scan(folder: Path, problems: Problems) -> dict[tuple[int, str], str]:
    """(channel, well) -> file name of every BMP in the image folder, checking the ordinals."""
    out: dict[tuple[int, str], str] = {}
    for entry in sorted(p.name for p in folder.iterdir()):
        m = FILE_RE.match(entry)
        if not m:
            continue
        channel, nn, row_l, cc = int(m.group(1)), int(m.group(2)), m.group(3).upper(), int(m.group(4))
        row = ord(row_l) - ord("A")
        if not 1 <= cc <= 12 or nn != ordinal(row, cc):
            problems.bad(f"{IMAGES}/{entry}", f"well ordinal {nn:02d} does not match well {row_l}{cc:02d} "
                         f"(expected {ordinal(row, cc):02d})")
            continue
        out[(channel, well_name(row, cc))] = entry
    return out
