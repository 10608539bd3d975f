"""Look-alike of the BBBC021 v1 download (https://bbbc.broadinstitute.org/BBBC021).

The real metadata CSVs are needed (``--metadata DIR``): they are copied (only the rows of the chosen
plates, bytes and dialect kept) and one 16-bit TIFF is rendered per channel file they name, in the
layout :mod:`mcnn.datasets.bbbc021` reads. Annotated treatments show their MoA's look; other
compounds blend towards a compound-specific MoA look along their concentration series.
"""

from __future__ import annotations

import csv
import io
import shutil
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Dataset, rng_for
from mcnn.datasets.bbbc021 import (
    CHANNEL_COLUMNS,
    COMPOUND_CSV,
    DMSO,
    IMAGE_COLUMNS,
    IMAGE_CSV,
    MOA_CSV,
    read_csv,
    read_moa,
)
from mcnn.datasets.imageio import write_tiff
from mcnn.datasets.plates import read_text
from mcnn.errors import ConfigError
from mcnn.simulate.lookalikes.render import Look, blend, render, to_dtype

#: The plates of the ``--size small`` look-alike: the three Week1 taxol plates.
SMALL_PLATES = ("Week1_22123", "Week1_22141", "Week1_22161")


def synthesize(ds: Dataset, out: Path, height: int, width: int, seed: int = 0, metadata: Path | None = None,
               plates: Sequence[str] | None = None, fields_per_plate: int | None = None, size: str = "small",
               **kwargs: Any) -> dict[str, Any]:
    """Write the look-alike: the real metadata CSVs (rows of ``plates`` only, bytes and dialect
    kept) and one 16-bit ``height`` x ``width`` TIFF per channel file they name.

    ``plates`` defaults to :data:`SMALL_PLATES` for ``size`` small and to every plate for real.
    ``fields_per_plate`` keeps, per plate, its DMSO fields and the first N other fields of the
    CSV (a quick real-size trial without the 104 GB of a full look-alike).
    """
    if metadata is None:
        raise ConfigError("bbbc021 look-alike needs the real metadata CSVs: pass --metadata DIR holding "
                          f"{IMAGE_CSV} and {MOA_CSV} (from https://bbbc.broadinstitute.org/BBBC021)")
    src_image, src_moa = Path(metadata) / IMAGE_CSV, Path(metadata) / MOA_CSV
    all_rows = read_csv(src_image, IMAGE_COLUMNS)
    all_plates = sorted({r["Image_Metadata_Plate_DAPI"] for _, r in all_rows})
    chosen = _chosen_plates(plates, size, all_plates, src_image)
    kept = _kept_fields(all_rows, chosen, fields_per_plate)
    out.mkdir(parents=True, exist_ok=True)
    if chosen == set(all_plates) and fields_per_plate is None:
        shutil.copyfile(src_image, out / IMAGE_CSV)
        shutil.copyfile(src_moa, out / MOA_CSV)
    else:
        _write_filtered_csvs(out, src_image, src_moa, all_rows, kept)
    rows = [r for _, r in all_rows if (r["TableNumber"], r["ImageNumber"]) in kept]
    compounds = sorted({r["Image_Metadata_Compound"] for r in rows})
    (out / COMPOUND_CSV).write_text("compound,smiles\n" + "".join(f"{_csv_cell(c)},\n" for c in compounds))
    moa = read_moa(out / MOA_CSV)
    rank = _concentration_ranks(rows)
    count = 0
    for r in rows:
        plate = r["Image_Metadata_Plate_DAPI"]
        compound = r["Image_Metadata_Compound"]
        conc = float(r["Image_Metadata_Concentration"])
        look = _look(compound, conc, moa.get((compound, conc), ("", 0))[0], rank.get((compound, conc), 0.0))
        rng = rng_for(seed, ds.name, plate, r["Image_FileName_DAPI"])
        planes = render(rng, height, width, look)
        for (column, channel), peak in zip(CHANNEL_COLUMNS, (2600.0, 1500.0, 1800.0), strict=True):
            gain = float(rng_for(seed, "gain", plate, channel).lognormal(0.0, 0.25))
            write_tiff(out / plate / r[f"Image_FileName_{column}"],
                       to_dtype(planes[channel], np.uint16, peak * gain, 180.0 * gain))
            count += 1
    return {"images": count, "height": height, "width": width, "plates": sorted(chosen), "fields": len(rows)}


def _chosen_plates(plates: Sequence[str] | None, size: str, all_plates: list[str], src_image: Path) -> set[str]:
    """The plates to write; :class:`ConfigError` for a plate the CSV does not have."""
    if plates is None:
        return set(SMALL_PLATES) if size == "small" else set(all_plates)
    chosen = set(plates)
    bad = sorted(chosen - set(all_plates))
    if bad:
        raise ConfigError(f"--plates: {', '.join(bad)} not in {src_image}")
    return chosen


def _kept_fields(all_rows: list[tuple[int, dict[str, str]]], chosen: set[str],
                 fields_per_plate: int | None) -> set[tuple[str, str]]:
    """(TableNumber, ImageNumber) of the fields kept: every field of the chosen plates, or per plate its
    DMSO fields and its first ``fields_per_plate`` other fields."""
    kept: set[tuple[str, str]] = set()
    others: dict[str, int] = defaultdict(int)
    for _, r in all_rows:
        plate = r["Image_Metadata_Plate_DAPI"]
        if plate not in chosen:
            continue
        if r["Image_Metadata_Compound"] != DMSO:
            others[plate] += 1
            if fields_per_plate is not None and others[plate] > fields_per_plate:
                continue
        kept.add((r["TableNumber"], r["ImageNumber"]))
    return kept


def _write_filtered_csvs(out: Path, src_image: Path, src_moa: Path, all_rows: list[tuple[int, dict[str, str]]],
                         kept: set[tuple[str, str]]) -> None:
    """image.csv with the kept rows only and moa.csv with the treatments they use, bytes kept."""
    ti, ii = IMAGE_COLUMNS.index("TableNumber"), IMAGE_COLUMNS.index("ImageNumber")
    (out / IMAGE_CSV).write_bytes(_filter_lines(src_image, lambda row: (row[ti], row[ii]) in kept))
    treatments = {(r["Image_Metadata_Compound"], float(r["Image_Metadata_Concentration"]))
                  for _, r in all_rows if (r["TableNumber"], r["ImageNumber"]) in kept}
    moa_header = [h.strip() for h in next(csv.reader(io.StringIO(read_text(src_moa), newline="")))]
    ci, ki = moa_header.index("compound"), moa_header.index("concentration")
    (out / MOA_CSV).write_bytes(_filter_lines(src_moa, lambda row: (row[ci], float(row[ki])) in treatments))


def _filter_lines(path: Path, keep: Any) -> bytes:
    """The bytes of a CSV with only the header and the data lines ``keep(row)`` accepts; line ends,
    quoting and a missing final line end are kept as they are."""
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:]:
        text = line.decode("utf-8", errors="replace")
        values = next(csv.reader([text.rstrip("\r\n")]), [])
        if values and keep([v.strip() for v in values]):
            out.append(line)
    ending = lines[0][len(lines[0].rstrip(b"\r\n")):] or b"\n"
    body = [line if line.endswith((b"\n", b"\r")) else line + ending for line in out]
    if not data.endswith((b"\n", b"\r")):
        body[-1] = body[-1].rstrip(b"\r\n")
    return b"".join(body)


def _csv_cell(text: str) -> str:
    """``text`` as a CSV cell (quoted if it holds a comma or quote)."""
    return f'"{text}"' if "," in text or '"' in text else text


def _concentration_ranks(rows: list[dict[str, str]]) -> dict[tuple[str, float], float]:
    """Position (0..1) of each concentration in its compound's series."""
    series: dict[str, set[float]] = defaultdict(set)
    for r in rows:
        series[r["Image_Metadata_Compound"]].add(float(r["Image_Metadata_Concentration"]))
    out = {}
    for compound, values in series.items():
        ordered = sorted(values)
        for i, v in enumerate(ordered):
            out[(compound, v)] = i / max(1, len(ordered) - 1)
    return out


_BASE = Look({"DNA": {"nucleus": 1.0}, "tubulin": {"filaments": 0.6, "cytoplasm": 0.4},
              "actin": {"membrane": 0.6, "filaments": 0.3, "cytoplasm": 0.2}}, cells=14)
_MOA_LOOKS: dict[str, Look] = {
    "Actin disruptors": Look({"DNA": {"nucleus": 1.0}, "tubulin": {"filaments": 0.5, "cytoplasm": 0.4},
                              "actin": {"spots": 1.2, "cytoplasm": 0.1}}, cells=14, spots=10),
    "Aurora kinase inhibitors": Look({"DNA": {"nucleus": 1.3}, "tubulin": {"filaments": 0.5, "cytoplasm": 0.4},
                                      "actin": {"membrane": 0.6, "cytoplasm": 0.2}}, cells=7, cell_radius=0.12,
                                     nucleus_fraction=0.62),
    "Cholesterol-lowering": Look({"DNA": {"nucleus": 1.0}, "tubulin": {"filaments": 0.4, "cytoplasm": 0.5},
                                  "actin": {"cytoplasm": 0.7, "membrane": 0.2}}, cells=12, elongation=1.4),
    "DNA damage": Look({"DNA": {"nucleus": 0.9, "nucleoli": 0.8}, "tubulin": {"filaments": 0.6, "cytoplasm": 0.4},
                        "actin": {"membrane": 0.6, "filaments": 0.3}}, cells=8, cell_radius=0.11,
                       nucleus_fraction=0.55),
    "DNA replication": Look({"DNA": {"nucleus": 1.6}, "tubulin": {"filaments": 0.6, "cytoplasm": 0.4},
                             "actin": {"membrane": 0.6, "filaments": 0.3}}, cells=10, nucleus_fraction=0.55),
    "Eg5 inhibitors": Look({"DNA": {"nucleus": 1.8}, "tubulin": {"centrosome": 1.5, "cytoplasm": 0.3},
                            "actin": {"membrane": 0.9}}, cells=16, cell_radius=0.06, nucleus_fraction=0.5),
    "Epithelial": Look({"DNA": {"nucleus": 1.0}, "tubulin": {"filaments": 0.6, "cytoplasm": 0.4},
                        "actin": {"membrane": 1.4}}, cells=20, cell_radius=0.07),
    "Kinase inhibitors": Look({"DNA": {"nucleus": 1.0}, "tubulin": {"filaments": 0.8, "cytoplasm": 0.3},
                               "actin": {"filaments": 0.8, "membrane": 0.3}}, cells=10, elongation=2.6),
    "Microtubule destabilizers": Look({"DNA": {"nucleus": 1.4}, "tubulin": {"cytoplasm": 1.0},
                                       "actin": {"membrane": 0.7, "cytoplasm": 0.3}}, cells=14, cell_radius=0.065),
    "Microtubule stabilizers": Look({"DNA": {"nucleus": 1.2, "nucleoli": 0.4}, "tubulin": {"filaments": 1.6},
                                     "actin": {"membrane": 0.6, "cytoplasm": 0.2}}, cells=12, cell_radius=0.075),
    "Protein degradation": Look({"DNA": {"nucleus": 1.0}, "tubulin": {"perinuclear": 1.4, "cytoplasm": 0.3},
                                 "actin": {"membrane": 0.5, "cytoplasm": 0.3}}, cells=12),
    "Protein synthesis": Look({"DNA": {"nucleus": 0.7}, "tubulin": {"cytoplasm": 0.5},
                               "actin": {"cytoplasm": 0.4}}, cells=8, cell_radius=0.07),
}


def _look(compound: str, conc: float, moa: str, rank: float) -> Look:
    """Look-alike look of a treatment: its MoA's look if annotated, else a compound-specific
    MoA look blended in along the concentration series; DMSO the untreated look."""
    if compound == DMSO or not compound:
        return _BASE
    if moa and moa in _MOA_LOOKS:
        return _MOA_LOOKS[moa]
    names = sorted(_MOA_LOOKS)
    target = _MOA_LOOKS[names[zlib.crc32(compound.encode()) % len(names)]]
    return blend(_BASE, target, 1.0 / (1.0 + np.exp(-8.0 * (rank - 0.6))))
