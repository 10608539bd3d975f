"""BBBC021 v1: MCF-7 compound profiling (Caie et al. 2010), 12 mechanisms of action (Ljosa et al. 2013).

Download (https://bbbc.broadinstitute.org/BBBC021): 55 zips ``BBBC021_v1_images_<Plate>.zip``
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

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
)
from mcnn.datasets.plates import normalise_well, read_text
from mcnn.errors import ConfigError, DatasetLayoutError

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
#: Wells holding the on-plate taxol 0.3 uM positive control on every plate (the plate layout of
#: https://bbbc.broadinstitute.org/BBBC021; Caie et al. 2010).
TAXOL_CONTROL_WELLS = frozenset({"B11", "C11", "D11", "E02", "F02", "G02"})
TAXOL_CONTROL_CONCENTRATION = 0.3
#: Training images of the paper's single 13-class model (§3.3).
PAPER_FULL_IMAGES = 1684
#: The 12 mechanism-of-action classes of Ljosa et al. 2013, in label order (sorted).
MOAS = ("Actin disruptors", "Aurora kinase inhibitors", "Cholesterol-lowering", "DNA damage", "DNA replication",
        "Eg5 inhibitors", "Epithelial", "Kinase inhibitors", "Microtubule destabilizers", "Microtubule stabilizers",
        "Protein degradation", "Protein synthesis")
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
    """BBBC021 v1 read from its download: 55 plates, the metadata CSVs, the paper's three protocols."""

    name = "bbbc021"
    title = "BBBC021 MCF-7 compound profiling, 12 mechanisms of action"
    default_channels = tuple(name for _, name in CHANNEL_COLUMNS)
    protocols = ("loco", "full", "cv")
    default_protocol = "loco"
    dtypes = ("uint16",)
    real_size = (1024, 1280)
    small_size = (64, 80)
    class_names = MOAS
    batch = 8
    # 103 annotated treatments: 95 x 12 + 7 x 8 = 1196 fields, plus the 12 fields of the taxol
    # 0.3 uM dilution-series wells = 1208; one fold holds out one of 38 compounds (31.8 fields
    # on average, 8 to 84).
    set_sizes = (1176, 32)
    notes = ("fold sizes are the average leave-one-compound-out fold of the 1208 annotated fields; "
             "make_solver.py takes the exact sizes of a prepared fold",)
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
        """Validate ``--option full_dmso``."""
        value = self.opts["full_dmso"]
        if value not in ("paper", "all") and not value.isdigit():
            raise ConfigError(f"--option full_dmso={value}: expected paper, all or a number")

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        """Every field of image.csv whose files exist, annotated from moa.csv, split for ``protocol``."""
        self.check_protocol(protocol)
        image_csv, moa_csv = raw / IMAGE_CSV, raw / MOA_CSV
        rows = read_csv(image_csv, IMAGE_COLUMNS)
        moa = read_moa(moa_csv)
        _check_treatments(rows, moa, image_csv, problems)
        index = FileIndex(raw)
        folders: dict[str, str | None] = {}
        fields: list[Field] = []
        for n, r in rows:
            plate = r["Image_Metadata_Plate_DAPI"]
            well, site = _well_site(r, image_csv, n)
            if check_files and plate not in folders:
                folders[plate] = _plate_folder(index, plate, r["Image_PathName_DAPI"])
                if folders[plate] is None:
                    problems.bad(f"{plate}/", f"plate folder missing (unzip BBBC021_v1_images_{plate}.zip in RAW; "
                                 f"{IMAGE_CSV} names its files)")
            folder = folders[plate] if check_files else plate
            if folder is None:
                continue
            files = _channel_files(r, folder, n, index, problems, check_files)
            if files is not None:
                fields.append(_field(r, number(r["Image_Metadata_Concentration"], image_csv, n,
                                               "Image_Metadata_Concentration"), well, site, files, moa))
        fields.sort(key=lambda f: (f.plate, f.meta["Metadata_Well"], f.meta["Metadata_Site"]))
        return self._apply_protocol(protocol, fields)

    def _apply_protocol(self, protocol: str, fields: list[Field]) -> Plan:
        """The labelled sets of ``protocol``: 12 MoAs (loco, cv) or 12 MoAs + DMSO with a test and screen set (full)."""
        dmso = [f for f in fields if f.meta["Metadata_Compound"] == DMSO]
        annotated_all = [f for f in fields if f.meta["Metadata_Compound"] != DMSO and f.meta["Metadata_MoA"]]
        series_only = self.opts["taxol"] == "series"
        taxol_controls = [f for f in annotated_all if series_only and f.meta["Metadata_Role"] == "positive_control"]
        annotated = [f for f in annotated_all if not (series_only and f.meta["Metadata_Role"] == "positive_control")]
        moas = sorted({str(f.meta["Metadata_MoA"]) for f in annotated})
        treatments = {(str(f.meta["Metadata_Compound"]), float(f.meta["Metadata_Concentration"])) for f in annotated}
        choices = [Choice("BBBC021 taxol 0.3 uM", f"taxol={self.opts['taxol']}: " + (
            "only its dilution-series wells are labelled (12 fields, like the other treatments); the on-plate "
            "positive-control wells (B11, C11, D11, E02, F02, G02 of every plate) are not"
            if series_only else "every taxol 0.3 uM field is labelled, the on-plate positive controls included"),
            "--option taxol=all|series")]
        counts: dict[str, Any] = {"fields": len(fields), "plates": len({f.plate for f in fields}),
                                  "annotated_treatments": len(treatments),
                                  "annotated_compounds": len({t[0] for t in treatments}),
                                  "moas": len(moas), "dmso_fields": len(dmso), "annotated_fields": len(annotated),
                                  "taxol_control_fields_left_out": len(taxol_controls)}
        if protocol in ("loco", "cv"):
            label_of = {m: i for i, m in enumerate(moas)}
            # loco: the DMSO fields as their own unlabelled set, the reference of the phenotypic activity (mAP)
            return Plan(classes=tuple(moas), labelled=_by_moa(annotated, label_of), columns=COLUMNS, controls=dmso,
                        unlabelled={"controls": dmso} if protocol == "loco" else {}, concentration_unit="uM",
                        choices=choices, counts=counts)
        return self._full_plan(fields, annotated, taxol_controls, dmso, moas, choices, counts)

    def _full_plan(self, fields: list[Field], annotated: list[Field], taxol_controls: list[Field], dmso: list[Field],
                   moas: list[str], choices: list[Choice], counts: dict[str, Any]) -> Plan:
        """``--protocol full``: the 13-class training set (annotated + some DMSO), the rest as test set."""
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
        train = _by_moa(annotated, label_of) + [Labelled(dmso[i], label_of[DMSO], DMSO) for i in chosen]
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


def _check_treatments(rows: list[tuple[int, dict[str, str]]], moa: dict[tuple[str, float], tuple[str, int]],
                      image_csv: Path, problems: Problems) -> None:
    """Report every annotated treatment of moa.csv (DMSO aside) that has no field in image.csv."""
    present = {(r["Image_Metadata_Compound"], number(r["Image_Metadata_Concentration"], image_csv, n,
                                                     "Image_Metadata_Concentration")) for n, r in rows}
    for key, (_, line) in sorted(moa.items(), key=lambda kv: kv[1][1]):
        if key not in present and key[0] != DMSO:
            problems.bad(f"{MOA_CSV} line {line}", f"unknown compound: treatment {key[0]} {format_number(key[1])} "
                         f"has no field in {IMAGE_CSV}")


def _well_site(r: dict[str, str], image_csv: Path, n: int) -> tuple[str, int]:
    """The normalised well and the site number of image.csv row ``r`` (line ``n``)."""
    try:
        well = normalise_well(r["Image_Metadata_Well_DAPI"])
    except ValueError:
        raise DatasetLayoutError(f"{image_csv}: line {n}: Image_Metadata_Well_DAPI "
                                 f"{r['Image_Metadata_Well_DAPI']!r} is not a well") from None
    m = FILE_RE.match(r["Image_FileName_DAPI"])
    if not m:
        raise DatasetLayoutError(f"{image_csv}: line {n}: Image_FileName_DAPI {r['Image_FileName_DAPI']!r} "
                                 "does not match <prefix><Well>_s<site>_w<channel><UUID>.tif")
    return well, int(m.group(3))


def _channel_files(r: dict[str, str], folder: str, n: int, index: FileIndex, problems: Problems,
                   check_files: bool) -> tuple[str, ...] | None:
    """The three channel files of row ``r`` in the plate ``folder`` (None, reported, if one is missing)."""
    files = []
    for column, channel in CHANNEL_COLUMNS:
        rel = f"{folder}/{r[f'Image_FileName_{column}']}"
        if check_files and not index.exists(rel):
            problems.bad(rel, f"missing {channel} channel file (named in {IMAGE_CSV} line {n})")
        else:
            files.append(rel)
    return tuple(files) if len(files) == len(CHANNEL_COLUMNS) else None


def _role(compound: str, conc: float, well: str) -> str:
    """DMSO is the negative control, taxol 0.3 uM in the control wells the positive control."""
    if compound == DMSO:
        return "negative_control"
    if compound == TAXOL and conc == TAXOL_CONTROL_CONCENTRATION and well in TAXOL_CONTROL_WELLS:
        return "positive_control"
    return "treatment"


def _field(r: dict[str, str], conc: float, well: str, site: int, files: tuple[str, ...],
           moa: dict[tuple[str, float], tuple[str, int]]) -> Field:
    """The field of image.csv row ``r`` with its metadata (MoA from moa.csv, "" if not annotated)."""
    plate, compound = r["Image_Metadata_Plate_DAPI"], r["Image_Metadata_Compound"]
    annotated = moa.get((compound, conc))
    meta = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": site,
            "Metadata_Compound": compound, "Metadata_Concentration": format_number(conc),
            "Metadata_Replicate": r["Replicate"], "Metadata_Batch": plate.split("_")[0],
            "Metadata_MoA": annotated[0] if annotated else "", "Metadata_Role": _role(compound, conc, well),
            "Metadata_TableNumber": r["TableNumber"], "Metadata_ImageNumber": r["ImageNumber"]}
    return Field(f"{plate}/{well}/s{site}", files, meta, plate=plate, control=compound == DMSO)


def _by_moa(fields: list[Field], label_of: dict[str, int]) -> list[Labelled]:
    """``fields`` labelled by their MoA, grouped by compound (what leave-one-compound-out holds out)."""
    return [Labelled(f, label_of[str(f.meta["Metadata_MoA"])], str(f.meta["Metadata_Compound"])) for f in fields]


def _plate_folder(index: FileIndex, plate: str, path_name: str) -> str | None:
    """The folder of ``plate`` under RAW: ``<plate>/`` or the ``Image_PathName_*`` folder; None if neither."""
    for candidate in (plate, path_name.replace("\\", "/").strip("/")):
        if candidate and index.names(candidate) is not None:
            return candidate
    return None


def _spread(total: int, take: int) -> list[int]:
    """``take`` indices of ``range(total)``, evenly spread (every k-th)."""
    if take <= 0:
        return []
    return sorted({min(total - 1, (i * total) // take) for i in range(take)})
