"""BBBC014: NF-kB cytoplasm-to-nucleus translocation in MCF7 and A549 cells (TNF-alpha).

Download (https://data.broadinstitute.org/bbbc/BBBC014/): ``BBBC014_v1_images.zip`` and
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
    lowest_highest,
    require_dir,
    rng_for,
)
from mcnn.datasets.imageio import write_bmp
from mcnn.datasets.plates import ordinal, read_platemap, row_letter, well_name, write_platemap
from mcnn.errors import DatasetLayoutError
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import blend, render, to_dtype

IMAGES = "BBBC014_v1_images"
PLATEMAP = "BBBC014_v1_platemap_all.txt"
PLATE = "BBBC014"
FILE_RE = re.compile(r"^Channel ([12])-(\d{2})-([A-H])-(\d{2})-(\d{2})\.bmp$", re.IGNORECASE)
TOKEN_RE = re.compile(r"^10\^\(?([-+]?\d+(?:\.\d+)?)\)?$")
CLASSES = ("neutral", "positive")
COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
           "Metadata_Replicate", "Metadata_CellLine")


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


class BBBC014(Dataset):
    name = "bbbc014"
    title = "BBBC014 NF-kB translocation (MCF7, A549; TNF-alpha)"
    default_channels = ("DAPI", "FITC")
    dtypes = ("uint8",)
    real_size = (1024, 1360)
    small_size = (64, 85)
    options = (
        Option("channel1", "DAPI", "stain of the 'Channel 1' files (sources disagree); LMDB channel 0 is always "
               "Channel 1", ("DAPI", "FITC")),
    )
    download_hint = f"unzip BBBC014_v1_images.zip into RAW and put {PLATEMAP} next to it"

    def configure(self) -> None:
        self.channels = ("DAPI", "FITC") if self.opts["channel1"] == "DAPI" else ("FITC", "DAPI")

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        require_dir(raw / IMAGES, "the unpacked BBBC014_v1_images.zip", self.download_hint)
        tokens = read_platemap(raw / PLATEMAP, 96, parse=None, header_prefix="DESCRIPTION")
        values = [parse_token(t, str(raw / PLATEMAP)) for t in tokens]
        index = FileIndex(raw)
        if check_files:
            _check_names(raw / IMAGES, problems)
        by_line: dict[str, list[float]] = {"MCF7": [], "A549": []}
        fields: list[tuple[Field, float, str]] = []
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
            line = cell_line(row)
            by_line[line].append(value)
            meta = {"Metadata_Plate": PLATE, "Metadata_Well": well, "Metadata_Site": 1,
                    "Metadata_Compound": "TNFalpha", "Metadata_Concentration": format_number(value),
                    "Metadata_Replicate": row % 4 + 1, "Metadata_CellLine": line}
            fields.append((Field(f"{PLATE}/{well}/s1", tuple(files), meta, plate=PLATE), value, line))
        extremes = {line: lowest_highest(v) for line, v in by_line.items() if v}
        labelled = []
        for f, value, line in fields:
            low, high = extremes[line]
            if value in low:
                labelled.append(Labelled(f, 0))
            elif value in high:
                labelled.append(Labelled(f, 1))
        plan = Plan(classes=CLASSES, labelled=labelled, columns=COLUMNS,
                    unlabelled={"dose": [f for f, _, _ in fields]}, concentration_unit="as in the plate map "
                    "(10^x; g/mL or M, UNCERTAIN)")
        plan.choices += [
            Choice("BBBC014 channel order", f"Channel 1 = {self.channels[0]}, Channel 2 = {self.channels[1]}",
                   "--option channel1=FITC"),
            Choice("BBBC014 classes", "per cell line the two lowest concentrations (neutral) and the two highest "
                   "(positive) of the plate map"),
            Choice("BBBC014 dose set", "all 96 wells (there are no separate control wells)"),
        ]
        plan.counts = {"wells": len(fields)}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        height, width = self.image_size(size)
        exponents = [-7.0 - 0.5 * c for c in range(12)]
        tokens = [f"10^{e:g}" for _ in range(8) for e in exponents]
        write_platemap(out / PLATEMAP, "DESCRIPTION: TNF-alpha concentration per well, row-major A01..H12",
                       tokens, newline="\r\n")
        count = 0
        for row in range(8):
            for col in range(1, 13):
                t = looks.response((12 - col) / 11.0)
                rng = rng_for(seed, self.name, row, col)
                planes = render(rng, height, width, blend(looks.TRANSLOCATION_NEUTRAL, looks.TRANSLOCATION_POSITIVE, t))
                dapi = to_dtype(planes["nuclei"], np.uint8, 160, 5)
                fitc = to_dtype(planes["signal"], np.uint8, 120, 10)
                first, second = (dapi, fitc) if self.opts["channel1"] == "DAPI" else (fitc, dapi)
                write_bmp(out / IMAGES / file_name(1, row, col), first)
                write_bmp(out / IMAGES / file_name(2, row, col), second)
                count += 2
        return {"images": count, "height": height, "width": width, "folder": IMAGES}


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
