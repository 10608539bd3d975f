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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from mcnn.datasets.base import Choice, Dataset, Field, FileIndex, Labelled, Plan, Problems, format_number
from mcnn.datasets.plates import read_text
from mcnn.errors import ConfigError, DatasetLayoutError

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
    name = "simulated"
    title = "Simulated phenotype screen (mcnn.simulate)"
    default_channels = ("nuclei", "cytoplasm")
    dtypes = ("uint16",)
    small_size = (128, 128)
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "plate-dmso", "stat": "meanstd"}
    download_hint = "write one with: python data_prep/synthesize.py simulate --out RAW"

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        truth = read_ground_truth(raw / GROUND_TRUTH)
        path = raw / METADATA
        if not path.is_file():
            raise DatasetLayoutError(f"{path}: file missing, expected one row per field ({self.download_hint})")
        reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DatasetLayoutError(f"{path}: columns {', '.join(missing)} missing")
        file_cols = [c for c in header if c.startswith("Image_FileName_")]
        channels = truth["channels"] or [c[len("Image_FileName_"):] for c in file_cols]
        absent = [c for c in channels if f"Image_FileName_{c}" not in header]
        if absent or not channels:
            raise DatasetLayoutError(f"{path}: no Image_FileName_<channel> column for channel(s) "
                                     f"{', '.join(absent) or '(none)'}")
        self.channels = tuple(channels)
        classes = tuple(truth["classes"])
        label_of = {c: i for i, c in enumerate(classes)}
        compounds = truth["compounds"]
        index = FileIndex(raw)
        labelled: list[Labelled] = []
        dose: list[Field] = []
        controls: list[Field] = []
        for n, row in enumerate(reader, start=2):
            where = f"{METADATA} line {n}"
            role = row["Metadata_Role"].strip()
            if role not in ROLES:
                raise DatasetLayoutError(f"{path}: line {n}: Metadata_Role {role!r}, expected one of "
                                         f"{', '.join(ROLES)}")
            compound = row["Metadata_Compound"].strip()
            if compounds and role != "negative_control" and compound not in compounds:
                problems.bad(where, f"unknown compound {compound!r} (not in {GROUND_TRUTH})")
                continue
            phenotype = row["Metadata_Phenotype"].strip()
            if role == "positive_control" and phenotype not in label_of:
                problems.bad(where, f"unknown phenotype {phenotype!r} (classes in {GROUND_TRUTH}: "
                             f"{', '.join(classes)})")
                continue
            files = []
            for c in channels:
                rel = row[f"Image_FileName_{c}"].strip().replace("\\", "/")
                if check_files and not index.exists(rel):
                    problems.bad(rel, f"missing {c} channel file (named in {where})")
                    files.append(None)
                else:
                    files.append(rel)
            if None in files:
                continue
            try:
                concentration = format_number(float(row["Metadata_Concentration"]))
            except ValueError:
                raise DatasetLayoutError(f"{path}: line {n}: Metadata_Concentration "
                                         f"{row['Metadata_Concentration']!r} is not a number") from None
            meta = {c: row.get(c, "") for c in COLUMNS}
            meta["Metadata_Concentration"] = concentration
            plate, well, site = row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]
            f = Field(f"{plate}/{well}/s{site}", tuple(str(x) for x in files), meta, plate=plate,
                      control=role == "negative_control")
            if role == "negative_control":
                controls.append(f)
                labelled.append(Labelled(f, label_of[CONTROL], compound))
            elif role == "positive_control":
                labelled.append(Labelled(f, label_of[phenotype], compound))
            else:
                dose.append(f)
        columns = tuple(c for c in COLUMNS if c in header)
        plan = Plan(classes=classes, labelled=labelled, columns=columns, unlabelled={"dose": dose},
                    controls=controls, concentration_unit=truth["unit"])
        plan.choices.append(Choice("simulated classes", "control = negative-control wells; one class per phenotype "
                                   "= its positive-control wells; treatment wells = dose set"))
        plan.counts = {"fields": len(labelled) + len(dose), "seed": truth["seed"]}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        raise ConfigError("the simulated screen is written by the simulator: "
                          "python data_prep/synthesize.py simulate --out RAW [simulator options]")
