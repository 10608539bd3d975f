"""BBBC013: FKHR-GFP cytoplasm-to-nucleus translocation in U2OS cells (wortmannin, LY294002).

Download (https://data.broadinstitute.org/bbbc/BBBC013/): ``BBBC013_v1_images_bmp.zip`` and
``BBBC013_v1_platemap_all.txt``, unpacked side by side::

    RAW/BBBC013_v1_images_bmp/Channel<c>-<NN>-<R>-<CC>.BMP    c=1 GFP, c=2 DNA; 96 wells x 2 = 192
    RAW/BBBC013_v1_platemap_all.txt                          DESCRIPTION line + 96 values, A01..H12

Plate layout (datasets.md §1): rows A-D wortmannin, E-H LY294002; column 1 negative control
(A-D) / positive control (E-H), column 12 positive control (A-D) / negative control (E-H),
column 2 empty (0), columns 3-11 a 2-fold dilution series (lowest in column 3).

The paper's set: controls plus the highest and lowest concentration, 2 classes: ``neutral`` =
negative controls + lowest concentration of each drug, ``positive`` = positive controls +
highest concentration (16 + 16 images). Dose set: every well of columns 3-11 (72 images).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import (
    Choice,
    Dataset,
    Field,
    FileIndex,
    Labelled,
    Option,
    Plan,
    Problems,
    format_number,
    require_dir,
    rng_for,
)
from mcnn.datasets.imageio import write_bmp
from mcnn.datasets.plates import ordinal, read_platemap, row_letter, well_name, write_platemap
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype

IMAGES = "BBBC013_v1_images_bmp"
PLATEMAP = "BBBC013_v1_platemap_all.txt"
PLATE = "BBBC013"
FILE_RE = re.compile(r"^Channel([12])-(\d{2})-([A-H])-(\d{2})\.bmp$", re.IGNORECASE)
WORTMANNIN_NM = (0.977, 1.95, 3.91, 7.81, 15.63, 31.25, 62.5, 125.0, 250.0)
LY294002_UM = (0.31, 0.63, 1.25, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0)
CLASSES = ("neutral", "positive")
COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
           "Metadata_Replicate", "Metadata_Role")


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


class BBBC013(Dataset):
    name = "bbbc013"
    title = "BBBC013 FKHR-GFP translocation (U2OS; wortmannin, LY294002)"
    default_channels = ("GFP", "DNA")
    dtypes = ("uint8",)
    real_size = (640, 640)
    small_size = (80, 80)
    options = (
        Option("ly294002_unit", "uM", "unit of the LY294002 rows in the plate map; converted to nM", ("uM", "nM")),
        Option("col2", "exclude", "column 2 (empty, dose 0): leave out, or add to the neutral class",
               ("exclude", "neutral")),
    )
    download_hint = f"unzip BBBC013_v1_images_bmp.zip into RAW and put {PLATEMAP} next to it"

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        folder = require_dir(raw / IMAGES, "the unpacked BBBC013_v1_images_bmp.zip", self.download_hint)
        tokens = read_platemap(raw / PLATEMAP, 96, header_prefix="DESCRIPTION")
        found = _scan(folder, problems) if check_files else {}
        index = FileIndex(raw)
        fields: dict[str, tuple[Field, str]] = {}
        for i, token in enumerate(tokens):
            row, col = divmod(i, 12)
            col += 1
            well = well_name(row, col)
            files = []
            ok = True
            for ch in (1, 2):
                rel = f"{IMAGES}/{found.get((ch, well), file_name(ch, row, col))}"
                if check_files and index.find(rel) is None:
                    problems.bad(rel, f"missing channel {ch} file of well {well}")
                    ok = False
                files.append(index.find(rel) or rel if check_files else rel)
            if not ok:
                continue
            conc = float(token)
            if row >= 4 and self.opts["ly294002_unit"] == "uM":
                conc *= 1000.0
            role = role_of(row, col)
            compound = "control" if role == "negative_control" else ("none" if role == "empty" else drug_of(row))
            meta = {"Metadata_Plate": PLATE, "Metadata_Well": well, "Metadata_Site": 1,
                    "Metadata_Compound": compound, "Metadata_Concentration": format_number(conc),
                    "Metadata_Replicate": row % 4 + 1, "Metadata_Role": role}
            f = Field(f"{PLATE}/{well}/s1", tuple(files), meta, plate=PLATE, control=role == "negative_control")
            fields[well] = (f, role)
        # lowest / highest treated concentration of each drug (columns 3-11)
        extremes: dict[str, tuple[float, float]] = {}
        for drug_rows in (range(0, 4), range(4, 8)):
            values = [float(tokens[r * 12 + c - 1]) for r in drug_rows for c in range(3, 12)]
            extremes[drug_of(drug_rows[0])] = (min(values), max(values))
        labelled: list[Labelled] = []
        dose: list[Field] = []
        for well, (f, role) in fields.items():
            row = ord(well[0]) - ord("A")
            col = int(well[1:])
            label = None
            if role == "negative_control" or (role == "empty" and self.opts["col2"] == "neutral"):
                label = 0
            elif role == "positive_control":
                label = 1
            elif role == "treatment":
                value = float(tokens[row * 12 + col - 1])
                low, high = extremes[drug_of(row)]
                label = 0 if value == low else (1 if value == high else None)
                dose.append(f)
            if label is not None:
                labelled.append(Labelled(f, label))
        plan = Plan(classes=CLASSES, labelled=labelled, columns=COLUMNS, unlabelled={"dose": dose},
                    controls=[f for f, role in fields.values() if role == "negative_control"],
                    concentration_unit="nM")
        plan.choices += [
            Choice("BBBC013 classes (Suppl. Table 2 lost)",
                   "neutral = negative controls (A-D col 1, E-H col 12) + lowest concentration (col 3); "
                   "positive = positive controls (A-D col 12, E-H col 1) + highest concentration (col 11)",
                   "--option col2=neutral adds the dose-0 column 2"),
            Choice("BBBC013 plate-map units", "wortmannin rows in nM, LY294002 rows in uM (converted to nM)",
                   "--option ly294002_unit=nM"),
            Choice("BBBC013 positive control of rows E-H", "LY294002 at the plate map's value (sources disagree: "
                   "wortmannin 150 nM in the Logan CSV)"),
        ]
        plan.counts = {"wells": len(fields)}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        height, width = self.image_size(size)
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
        write_platemap(out / PLATEMAP, "DESCRIPTION: BBBC013 plate map, row-major A01..H12 "
                       "(wortmannin nM rows A-D, LY294002 uM rows E-H)", [format_number(v) for v in values])
        count = 0
        for row in range(8):
            for col in range(1, 13):
                role = role_of(row, col)
                if role == "positive_control":
                    t = 1.0
                elif role == "treatment":
                    t = looks.response((col - 3) / 8.0)
                else:
                    t = 0.0
                rng = rng_for(seed, self.name, row, col)
                look = blend(looks.TRANSLOCATION_NEUTRAL, looks.TRANSLOCATION_POSITIVE, t)
                planes = render(rng, height, width, look)
                write_bmp(out / IMAGES / file_name(1, row, col), to_dtype(planes["signal"], np.uint8, 150, 8))
                write_bmp(out / IMAGES / file_name(2, row, col), to_dtype(planes["nuclei"], np.uint8, 170, 6))
                count += 2
        return {"images": count, "height": height, "width": width, "folder": IMAGES}


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
