"""BBBC021 v1: MCF-7 compound profiling (Caie et al. 2010), 12 mechanisms of action (Ljosa et al. 2013).

Download (https://data.broadinstitute.org/bbbc/BBBC021/): 55 zips ``BBBC021_v1_images_<Plate>.zip``
and the metadata CSVs, unpacked into RAW::

    RAW/<Plate>/<prefix><Well>_s<site>_w<c><UUID>.tif   16-bit, 1280 x 1024; w1 DAPI, w2 tubulin, w4 actin
    RAW/BBBC021_v1_image.csv                           one row per field (13,200), 13 columns
    RAW/BBBC021_v1_moa.csv                             compound, concentration, moa (103 + DMSO)
    RAW/BBBC021_v1_compound.csv                        (not read)

A plate folder may also sit where ``Image_PathName_*`` says (``RAW/Week1/Week1_22123/``).
The CSVs are read with any line ends (CR, LF, CRLF), quoted or not; treatments are joined on
(compound, concentration) with concentrations compared as numbers.

Protocols: ``loco`` (the paper's): the 103 annotated treatments of 38 compounds, 12 MoA classes,
one fold per compound; ``full``: the 13-class model of §3.3 (12 MoAs + DMSO) and the screen set of
every field; ``cv``: a per-class random split of the annotated fields (not the paper's).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

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
    require_file,
    rng_for,
)
from mcnn.datasets.imageio import write_tiff
from mcnn.datasets.plates import normalise_well, read_text
from mcnn.errors import ConfigError, DatasetLayoutError
from mcnn.simulate.lookalikes.render import Look, blend, render, to_dtype

IMAGE_CSV = "BBBC021_v1_image.csv"
MOA_CSV = "BBBC021_v1_moa.csv"
COMPOUND_CSV = "BBBC021_v1_compound.csv"
#: image.csv channel columns, in LMDB channel order, and the channel names.
CHANNEL_COLUMNS = (("DAPI", "DNA"), ("Tubulin", "tubulin"), ("Actin", "actin"))
IMAGE_COLUMNS = ("TableNumber", "ImageNumber", "Image_FileName_DAPI", "Image_PathName_DAPI", "Image_FileName_Tubulin",
                 "Image_PathName_Tubulin", "Image_FileName_Actin", "Image_PathName_Actin", "Image_Metadata_Plate_DAPI",
                 "Image_Metadata_Well_DAPI", "Replicate", "Image_Metadata_Compound", "Image_Metadata_Concentration")
MOA_COLUMNS = ("compound", "concentration", "moa")
FILE_RE = re.compile(r"(.*)([A-H]\d{2})_s(\d)_w(\d)(.+)\.tif$", re.IGNORECASE)
DMSO = "DMSO"
TAXOL = "taxol"
#: Wells holding the on-plate taxol 0.3 uM positive control on every plate (datasets.md §5.2).
TAXOL_CONTROL_WELLS = frozenset({"B11", "C11", "D11", "E02", "F02", "G02"})
TAXOL_CONTROL_CONCENTRATION = 0.3
#: Training images of the paper's single 13-class model (§3.3).
PAPER_FULL_IMAGES = 1684
SMALL_PLATES = ("Week1_22123", "Week1_22141", "Week1_22161")
COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
           "Metadata_Replicate", "Metadata_Batch", "Metadata_MoA", "Metadata_Role", "Metadata_TableNumber",
           "Metadata_ImageNumber")


def read_csv(path: Path, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with any line ends, quoted or not; checks the ``required`` columns."""
    require_file(path, "a BBBC021 metadata CSV", "download it from https://data.broadinstitute.org/bbbc/BBBC021/")
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DatasetLayoutError(f"{path}: empty file") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DatasetLayoutError(f"{path}: columns {', '.join(missing)} missing (has {', '.join(header)})")
    rows = []
    for values in reader:
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DatasetLayoutError(f"{path}: line {reader.line_num}: {len(values)} values, expected {len(header)}")
        rows.append((reader.line_num, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    return rows


def number(text: str, path: Path, line: int, column: str) -> float:
    """A numeric CSV value, or a one-line error naming file, line and column."""
    try:
        return float(text)
    except ValueError:
        raise DatasetLayoutError(f"{path}: line {line}: {column} {text!r} is not a number") from None


def read_moa(path: Path) -> dict[tuple[str, float], tuple[str, int]]:
    """(compound, concentration) -> (MoA, line) of ``BBBC021_v1_moa.csv`` (DMSO included)."""
    out: dict[tuple[str, float], tuple[str, int]] = {}
    for line, row in read_csv(path, MOA_COLUMNS):
        key = (row["compound"], number(row["concentration"], path, line, "concentration"))
        if key in out:
            raise DatasetLayoutError(f"{path}: line {line}: treatment {key[0]} {key[1]:g} listed twice")
        out[key] = (row["moa"], line)
    return out


class BBBC021(Dataset):
    name = "bbbc021"
    title = "BBBC021 MCF-7 compound profiling, 12 mechanisms of action"
    default_channels = tuple(name for _, name in CHANNEL_COLUMNS)
    protocols = ("loco", "full", "cv")
    default_protocol = "loco"
    dtypes = ("uint16",)
    real_size = (1024, 1280)
    small_size = (64, 80)
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "plate-dmso", "stat": "meanstd"}
    options = (
        Option("taxol", "series", "taxol 0.3 uM images in the labelled set: 'series' = only its dilution-series "
               "wells (D05 of the Week1 taxol plates, 3 wells like every other treatment), 'all' = also the "
               "on-plate positive controls (1,320 more images)", ("series", "all")),
        Option("full_dmso", "paper", "DMSO fields in the --protocol full training set: 'paper' = as many as make "
               "the paper's 1684 training images, 'all', or a number"),
    )
    download_hint = "unzip the 55 BBBC021_v1_images_<Plate>.zip into RAW next to the metadata CSVs"
    uncertain = (
        Choice("BBBC021 normalisation (the paper's Supplementary Note is lost)", "per plate and channel, z-score "
               "against the mean and standard deviation of all pixels of that plate's DMSO images (pooled)",
               "--norm-scope, --norm-stat, --transform"),
        Choice("BBBC021 16 -> 8 bit", "z in [-2, 10] mapped linearly onto 0..255, clipped", "--range LO,HI"),
    )

    def configure(self) -> None:
        value = self.opts["full_dmso"]
        if value not in ("paper", "all") and not value.isdigit():
            raise ConfigError(f"--option full_dmso={value}: expected paper, all or a number")

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        image_csv, moa_csv = raw / IMAGE_CSV, raw / MOA_CSV
        rows = read_csv(image_csv, IMAGE_COLUMNS)
        moa = read_moa(moa_csv)
        present = {(r["Image_Metadata_Compound"], number(r["Image_Metadata_Concentration"], image_csv, n,
                                                         "Image_Metadata_Concentration")) for n, r in rows}
        unknown = set()
        for key, (_, line) in sorted(moa.items(), key=lambda kv: kv[1][1]):
            if key not in present and key[0] != DMSO:
                problems.bad(f"{MOA_CSV} line {line}", f"unknown compound: treatment {key[0]} {format_number(key[1])} "
                             f"has no field in {IMAGE_CSV}")
                unknown.add(key)
        index = FileIndex(raw)
        folders: dict[str, str | None] = {}
        fields: list[Field] = []
        for n, r in rows:
            plate = r["Image_Metadata_Plate_DAPI"]
            compound = r["Image_Metadata_Compound"]
            conc = number(r["Image_Metadata_Concentration"], image_csv, n, "Image_Metadata_Concentration")
            try:
                well = normalise_well(r["Image_Metadata_Well_DAPI"])
            except ValueError:
                raise DatasetLayoutError(f"{image_csv}: line {n}: Image_Metadata_Well_DAPI "
                                         f"{r['Image_Metadata_Well_DAPI']!r} is not a well") from None
            m = FILE_RE.match(r["Image_FileName_DAPI"])
            if not m:
                raise DatasetLayoutError(f"{image_csv}: line {n}: Image_FileName_DAPI {r['Image_FileName_DAPI']!r} "
                                         "does not match <prefix><Well>_s<site>_w<channel><UUID>.tif")
            site = int(m.group(3))
            if check_files:
                if plate not in folders:
                    folders[plate] = _plate_folder(index, plate, r["Image_PathName_DAPI"])
                    if folders[plate] is None:
                        problems.bad(f"{plate}/", f"plate folder missing (unzip BBBC021_v1_images_{plate}.zip in RAW; "
                                     f"{IMAGE_CSV} names its files)")
                folder = folders[plate]
                if folder is None:
                    continue
            else:
                folder = plate
            files = []
            for column, channel in CHANNEL_COLUMNS:
                rel = f"{folder}/{r[f'Image_FileName_{column}']}"
                if check_files and not index.exists(rel):
                    problems.bad(rel, f"missing {channel} channel file (named in {IMAGE_CSV} line {n})")
                    files.append(None)
                else:
                    files.append(rel)
            if None in files:
                continue
            annotated = moa.get((compound, conc))
            if compound == DMSO:
                role = "negative_control"
            elif compound == TAXOL and conc == TAXOL_CONTROL_CONCENTRATION and well in TAXOL_CONTROL_WELLS:
                role = "positive_control"
            else:
                role = "treatment"
            meta = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": site,
                    "Metadata_Compound": compound, "Metadata_Concentration": format_number(conc),
                    "Metadata_Replicate": r["Replicate"], "Metadata_Batch": plate.split("_")[0],
                    "Metadata_MoA": annotated[0] if annotated else "", "Metadata_Role": role,
                    "Metadata_TableNumber": r["TableNumber"], "Metadata_ImageNumber": r["ImageNumber"]}
            fields.append(Field(f"{plate}/{well}/s{site}", tuple(str(f) for f in files), meta, plate=plate,
                                control=compound == DMSO))
        fields.sort(key=lambda f: (f.plate, f.meta["Metadata_Well"], f.meta["Metadata_Site"]))
        return self._apply_protocol(protocol, fields, moa, unknown)

    def _apply_protocol(self, protocol: str, fields: list[Field], moa: dict[tuple[str, float], tuple[str, int]],
                        unknown: set[tuple[str, float]]) -> Plan:
        annotated: list[Field] = []
        taxol_controls: list[Field] = []
        dmso: list[Field] = []
        for f in fields:
            compound = str(f.meta["Metadata_Compound"])
            if compound == DMSO:
                dmso.append(f)
            elif f.meta["Metadata_MoA"]:
                if f.meta["Metadata_Role"] == "positive_control" and self.opts["taxol"] == "series":
                    taxol_controls.append(f)
                else:
                    annotated.append(f)
        moas = sorted({str(f.meta["Metadata_MoA"]) for f in annotated})
        treatments = {(str(f.meta["Metadata_Compound"]), float(f.meta["Metadata_Concentration"])) for f in annotated}
        compounds = sorted({t[0] for t in treatments})
        choices = [
            Choice("BBBC021 taxol 0.3 uM", f"taxol={self.opts['taxol']}: " + (
                "only its dilution-series wells are labelled (12 fields, like the other treatments); the on-plate "
                "positive-control wells (B11, C11, D11, E02, F02, G02 of every plate) are not"
                if self.opts["taxol"] == "series" else "every taxol 0.3 uM field is labelled, the on-plate positive "
                "controls included"), "--option taxol=all|series"),
        ]
        counts: dict[str, Any] = {"fields": len(fields), "plates": len({f.plate for f in fields}),
                                  "annotated_treatments": len(treatments), "annotated_compounds": len(compounds),
                                  "moas": len(moas), "dmso_fields": len(dmso), "annotated_fields": len(annotated),
                                  "taxol_control_fields_left_out": len(taxol_controls)}
        if protocol in ("loco", "cv"):
            label_of = {m: i for i, m in enumerate(moas)}
            labelled = [Labelled(f, label_of[str(f.meta["Metadata_MoA"])], str(f.meta["Metadata_Compound"]))
                        for f in annotated]
            plan = Plan(classes=tuple(moas), labelled=labelled, columns=COLUMNS, controls=dmso,
                        concentration_unit="uM", choices=choices, counts=counts)
            return plan
        classes = (*moas, DMSO)
        label_of = {m: i for i, m in enumerate(classes)}
        wanted = self.opts["full_dmso"]
        if wanted == "all":
            take = len(dmso)
        elif wanted == "paper":
            take = max(0, min(len(dmso), PAPER_FULL_IMAGES - len(annotated)))
        else:
            take = min(len(dmso), int(wanted))
        chosen = _spread(len(dmso), take)
        train = [Labelled(f, label_of[str(f.meta["Metadata_MoA"])], str(f.meta["Metadata_Compound"]))
                 for f in annotated]
        train += [Labelled(dmso[i], label_of[DMSO], DMSO) for i in chosen]
        test = [Labelled(f, label_of[str(f.meta["Metadata_MoA"])], TAXOL) for f in taxol_controls]
        picked = set(chosen)
        test += [Labelled(f, label_of[DMSO], DMSO) for i, f in enumerate(dmso) if i not in picked]
        choices.append(Choice("BBBC021 13-class training set (1684 images in the paper, composition not stated)",
                              f"full_dmso={wanted}: all {len(annotated)} annotated fields plus {take} DMSO fields "
                              "spread evenly over the plates (every k-th in plate/well/site order); the test set holds "
                              "the labelled fields left out (DMSO not chosen, on-plate taxol controls)",
                              "--option full_dmso=paper|all|N"))
        counts.update({"full_train": len(train), "full_test": len(test), "full_dmso_train": take})
        return Plan(classes=classes, labelled=train, full_test=test, columns=COLUMNS, unlabelled={"screen": fields},
                    controls=dmso, concentration_unit="uM", choices=choices, counts=counts)

    # -- look-alike --------------------------------------------------------------------------

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, metadata: Path | None = None,
                   plates: Sequence[str] | None = None, fields_per_plate: int | None = None,
                   **kwargs: Any) -> dict[str, Any]:
        """Write the look-alike: the real metadata CSVs (rows of ``plates`` only, bytes and dialect
        kept) and one 16-bit TIFF per channel file they name.

        ``fields_per_plate`` keeps, per plate, its DMSO fields and the first N other fields of the
        CSV (a quick real-size trial without the 104 GB of a full look-alike).
        """
        if metadata is None:
            raise ConfigError("bbbc021 look-alike needs the real metadata CSVs: pass --metadata DIR holding "
                              f"{IMAGE_CSV} and {MOA_CSV} (from https://data.broadinstitute.org/bbbc/BBBC021/)")
        height, width = self.image_size(size)
        src_image, src_moa = Path(metadata) / IMAGE_CSV, Path(metadata) / MOA_CSV
        all_rows = read_csv(src_image, IMAGE_COLUMNS)
        all_plates = sorted({r["Image_Metadata_Plate_DAPI"] for _, r in all_rows})
        if plates is None:
            chosen = set(SMALL_PLATES) if size == "small" else set(all_plates)
        else:
            chosen = set(plates)
            bad = sorted(chosen - set(all_plates))
            if bad:
                raise ConfigError(f"--plates: {', '.join(bad)} not in {src_image}")
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
        out.mkdir(parents=True, exist_ok=True)
        if chosen == set(all_plates) and fields_per_plate is None:
            shutil.copyfile(src_image, out / IMAGE_CSV)
            shutil.copyfile(src_moa, out / MOA_CSV)
        else:
            ti, ii = IMAGE_COLUMNS.index("TableNumber"), IMAGE_COLUMNS.index("ImageNumber")
            (out / IMAGE_CSV).write_bytes(_filter_lines(src_image, lambda row: (row[ti], row[ii]) in kept))
            treatments = {(r["Image_Metadata_Compound"], float(r["Image_Metadata_Concentration"]))
                          for _, r in all_rows if (r["TableNumber"], r["ImageNumber"]) in kept}
            moa_header = [h.strip() for h in next(csv.reader(io.StringIO(read_text(src_moa), newline="")))]
            ci, ki = moa_header.index("compound"), moa_header.index("concentration")
            (out / MOA_CSV).write_bytes(_filter_lines(src_moa, lambda row: (row[ci], float(row[ki])) in treatments))
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
            rng = rng_for(seed, self.name, plate, r["Image_FileName_DAPI"])
            planes = render(rng, height, width, look)
            for (column, channel), peak in zip(CHANNEL_COLUMNS, (2600.0, 1500.0, 1800.0), strict=True):
                gain = float(rng_for(seed, "gain", plate, channel).lognormal(0.0, 0.25))
                write_tiff(out / plate / r[f"Image_FileName_{column}"],
                           to_dtype(planes[channel], np.uint16, peak * gain, 180.0 * gain))
                count += 1
        return {"images": count, "height": height, "width": width, "plates": sorted(chosen), "fields": len(rows)}


def _plate_folder(index: FileIndex, plate: str, path_name: str) -> str | None:
    for candidate in (plate, path_name.replace("\\", "/").strip("/")):
        if candidate and index.names(candidate) is not None:
            return candidate
    return None


def _spread(total: int, take: int) -> list[int]:
    """``take`` indices of ``range(total)``, evenly spread (every k-th)."""
    if take <= 0:
        return []
    return sorted({min(total - 1, (i * total) // take) for i in range(take)})


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
    import zlib

    names = sorted(_MOA_LOOKS)
    target = _MOA_LOOKS[names[zlib.crc32(compound.encode()) % len(names)]]
    return blend(_BASE, target, 1.0 / (1.0 + np.exp(-8.0 * (rank - 0.6))))
