"""The simulated phenotype screen written by ``mcnn.simulate`` (layout in docs/formats.md)::

    RAW/images/<plate>/<plate>_<well>_s<site>_<channel>.tif    uint16, one file per channel
    RAW/metadata.csv                                            one row per field
    RAW/ground_truth.json                                       phenotypes, channels, image size, compounds

Classes: ``control`` (negative-control wells, ``Metadata_Role`` = ``negative_control``) and one
class per phenotype (its positive-control wells); treatment wells form the unlabelled dose set.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from mcnn.datasets.base import Choice, Dataset, Field, FileIndex, Labelled, Plan, Problems, format_number
from mcnn.datasets.plates import read_text
from mcnn.errors import DatasetLayoutError
from mcnn.setsizes import cv_sizes

METADATA = "metadata.csv"
GROUND_TRUTH = "ground_truth.json"
CONTROL = "control"
ROLES = ("negative_control", "positive_control", "treatment")
REQUIRED = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
            "Metadata_Replicate", "Metadata_Role", "Metadata_Phenotype")
COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
           "Metadata_Replicate", "Metadata_Role", "Metadata_Phenotype", "Metadata_AffectedFraction")


def _first(data: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in data:
            return data[k]
    return None


def read_ground_truth(path: Path) -> dict[str, Any]:
    """Phenotypes (class order, ``control`` first), channels, compounds and image size of a
    simulated screen's ``ground_truth.json``."""
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: file missing, expected the simulator's ground truth")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path}: not JSON ({exc})") from None
    classes = _first(data, "classes", "phenotypes", "phenotype_names")
    if not isinstance(classes, list) or not classes:
        raise DatasetLayoutError(f"{path}: no phenotype list ('classes' or 'phenotypes')")
    names = [c if isinstance(c, str) else str(_first(c, "name")) for c in classes]
    if names[0] != CONTROL:
        names = [CONTROL, *[n for n in names if n != CONTROL]]
    channels = _first(data, "channels", "channel_names")
    compounds = _first(data, "compounds") or {}
    if isinstance(compounds, list):
        compounds = {str(c.get("name")): c for c in compounds if isinstance(c, dict)}
    size = _first(data, "image_size", "size")
    if isinstance(size, dict):
        size = [size.get("height"), size.get("width")]
    if size is None and "height" in data:
        size = [data["height"], data["width"]]
    return {"classes": names, "channels": list(channels) if channels else None, "compounds": compounds,
            "size": size, "seed": data.get("seed"), "unit": str(data.get("concentration_unit") or "uM")}


class Simulated(Dataset):
    """A screen written by mcnn's phenotype simulator (``python data_prep/synthesize.py simulate``).

    Its preset is ``demo``: the simulator's demo screen (128 x 128 fields, 4 classes, 60 images each).
    """

    name = "simulated"
    title = "Simulated phenotype screen (mcnn.simulate)"
    default_channels = ("nuclei", "cytoplasm")
    dtypes = ("uint16",)
    small_size = (128, 128)
    preset_name = "demo"
    preset_title = "Simulated phenotype screen (mcnn's simulator): tiny, for the CPU demo and tests"
    class_names = ("control", "translocation", "spots", "elongation")
    net_size = (128, 128)
    batch = 16
    set_sizes = cv_sizes([60, 60, 60, 60], 0.1)
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "plate-dmso", "stat": "meanstd"}
    download_hint = "write one with: python data_prep/synthesize.py simulate --out RAW"

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        """Every field of ``metadata.csv`` under ``raw``: controls and positive controls labelled, treatments the
        dose set."""
        self.check_protocol(protocol)
        truth = read_ground_truth(raw / GROUND_TRUTH)
        path = raw / METADATA
        if not path.is_file():
            raise DatasetLayoutError(f"{path}: file missing, expected one row per field ({self.download_hint})")
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        header = reader.fieldnames or []
        self.channels = _channels(path, header, truth)
        classes = tuple(truth["classes"])
        label_of = {c: i for i, c in enumerate(classes)}
        index = FileIndex(raw)
        labelled: list[Labelled] = []
        dose: list[Field] = []
        controls: list[Field] = []
        for n, row in enumerate(reader, start=2):
            role, compound = row["Metadata_Role"].strip(), row["Metadata_Compound"].strip()
            if not _known(path, n, row, truth, label_of, problems):
                continue
            files = _channel_files(row, self.channels, f"{METADATA} line {n}", index, problems, check_files)
            if files is None:
                continue
            f = _field(path, n, row, files)
            if role == "negative_control":
                controls.append(f)
                labelled.append(Labelled(f, label_of[CONTROL], compound))
            elif role == "positive_control":
                labelled.append(Labelled(f, label_of[row["Metadata_Phenotype"].strip()], compound))
            else:
                dose.append(f)
        columns = tuple(c for c in COLUMNS if c in header)
        plan = Plan(classes=classes, labelled=labelled, columns=columns, unlabelled={"dose": dose},
                    controls=controls, concentration_unit=truth["unit"])
        plan.choices.append(Choice("simulated classes", "control = negative-control wells; one class per phenotype "
                                   "= its positive-control wells; treatment wells = dose set"))
        plan.counts = {"fields": len(labelled) + len(dose), "seed": truth["seed"]}
        return plan


def _channels(path: Path, header: Sequence[str], truth: dict[str, Any]) -> tuple[str, ...]:
    """The channels of the screen (ground truth, else the Image_FileName_* columns); checks the columns."""
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DatasetLayoutError(f"{path}: columns {', '.join(missing)} missing")
    file_cols = [c for c in header if c.startswith("Image_FileName_")]
    channels = truth["channels"] or [c[len("Image_FileName_"):] for c in file_cols]
    absent = [c for c in channels if f"Image_FileName_{c}" not in header]
    if absent or not channels:
        raise DatasetLayoutError(f"{path}: no Image_FileName_<channel> column for channel(s) "
                                 f"{', '.join(absent) or '(none)'}")
    return tuple(channels)


def _known(path: Path, n: int, row: dict[str, str], truth: dict[str, Any], label_of: dict[str, int],
           problems: Problems) -> bool:
    """Whether row ``n`` has a valid role, a known compound and (positive controls) a known phenotype."""
    role = row["Metadata_Role"].strip()
    if role not in ROLES:
        raise DatasetLayoutError(f"{path}: line {n}: Metadata_Role {role!r}, expected one of {', '.join(ROLES)}")
    where = f"{METADATA} line {n}"
    compound = row["Metadata_Compound"].strip()
    compounds = truth["compounds"]
    if compounds and role != "negative_control" and compound not in compounds:
        problems.bad(where, f"unknown compound {compound!r} (not in {GROUND_TRUTH})")
        return False
    phenotype = row["Metadata_Phenotype"].strip()
    if role == "positive_control" and phenotype not in label_of:
        problems.bad(where, f"unknown phenotype {phenotype!r} (classes in {GROUND_TRUTH}: "
                     f"{', '.join(truth['classes'])})")
        return False
    return True


def _channel_files(row: dict[str, str], channels: Sequence[str], where: str, index: FileIndex, problems: Problems,
                   check_files: bool) -> tuple[str, ...] | None:
    """The channel files a row names (None, reported, if one is missing)."""
    files = []
    for c in channels:
        rel = row[f"Image_FileName_{c}"].strip().replace("\\", "/")
        if check_files and not index.exists(rel):
            problems.bad(rel, f"missing {c} channel file (named in {where})")
        else:
            files.append(rel)
    return tuple(files) if len(files) == len(channels) else None


def _field(path: Path, n: int, row: dict[str, str], files: tuple[str, ...]) -> Field:
    """The field of metadata row ``n`` (concentration normalised to a plain number)."""
    try:
        concentration = format_number(float(row["Metadata_Concentration"]))
    except ValueError:
        raise DatasetLayoutError(f"{path}: line {n}: Metadata_Concentration "
                                 f"{row['Metadata_Concentration']!r} is not a number") from None
    meta = {c: row.get(c, "") for c in COLUMNS}
    meta["Metadata_Concentration"] = concentration
    plate, well, site = row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]
    return Field(f"{plate}/{well}/s{site}", files, meta, plate=plate,
                 control=row["Metadata_Role"].strip() == "negative_control")
