"""The shared skeleton of the plate-map datasets BBBC013-016: one plate, two classes, a dose set.

Each of these downloads is an image folder plus a plate-map text file giving a concentration per
well (or field). The paper (Godinez et al. 2017, Table 1) trains a ``neutral``/``positive`` model
on the lowest and highest concentrations (or the controls) and predicts every treated field for
the dose-response curves. :class:`PlateMapDataset` holds that skeleton; a subclass reads its layout
(:meth:`PlateMapDataset.read_plate`) and changes only the rules that differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mcnn.datasets.base import (
    Choice,
    Dataset,
    Field,
    Labelled,
    Plan,
    Problems,
    lowest_highest,
    require_dir,
    select_fields,
    with_meta,
)
from mcnn.datasets.plates import replicate_numbers
from mcnn.errors import ConfigError

CLASSES = ("neutral", "positive")
#: Index-CSV columns every plate-map dataset writes (a subclass may add one, e.g. Metadata_Role).
BASE_COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
                "Metadata_Replicate")


@dataclass
class PlateRead:
    """The fields read from a plate-map download, in plate order, and what the labelling needs of it."""

    fields: list[Field]
    info: dict[str, Any] = field(default_factory=dict)


def concentration(f: Field) -> float:
    """The ``Metadata_Concentration`` of ``f`` as a number."""
    return float(f.meta["Metadata_Concentration"])


def label_extremes(fields: Sequence[Field], low: set[float], high: set[float]) -> list[Labelled]:
    """``neutral`` (0) for fields at a ``low`` concentration, ``positive`` (1) at a ``high`` one; others unlabelled."""
    labelled = []
    for f in fields:
        value = concentration(f)
        if value in low:
            labelled.append(Labelled(f, 0))
        elif value in high:
            labelled.append(Labelled(f, 1))
    return labelled


def number_replicates(fields: Sequence[Field]) -> list[Field]:
    """``fields`` with ``Metadata_Replicate`` set: the rank of the well among the wells of its concentration."""
    well_conc: dict[str, float] = {}
    for f in fields:
        well_conc.setdefault(str(f.meta["Metadata_Well"]), concentration(f))
    by_conc: dict[float, list[str]] = defaultdict(list)
    for well, value in well_conc.items():
        by_conc[value].append(well)
    replicate = replicate_numbers(dict(by_conc))
    return [with_meta(f, Metadata_Replicate=replicate[f.meta["Metadata_Well"]]) for f in fields]


def check_cv_field(value: str) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a valid ``--option cv_field`` (first, last, all, N)."""
    if value not in ("first", "last", "all") and not value.isdigit():
        raise ConfigError(f"--option cv_field={value}: expected first, last, all or a field number")


class PlateMapDataset(Dataset):
    """Base of BBBC013-016: reads the image folder and plate map, labels the extremes, keeps the dose set.

    The default rules are those of BBBC015/016: the two lowest (neutral) and two highest
    (positive) concentrations, one field per well in cross-validation (``cv_field``), the dose
    set every field with a concentration above 0, the controls the fields at dose 0.
    """

    #: Folder of the unpacked image zip, relative to RAW, and what it holds (for error messages).
    images: ClassVar[str] = ""
    images_what: ClassVar[str] = ""
    columns: ClassVar[tuple[str, ...]] = BASE_COLUMNS
    concentration_unit: ClassVar[str] = ""
    #: Whether the plan counts fields besides wells (several fields per well).
    counts_fields: ClassVar[bool] = True
    class_names = CLASSES

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        """Read the image folder and plate map under ``raw`` and label the fields for ``protocol``."""
        self.check_protocol(protocol)
        folder = require_dir(raw / self.images, self.images_what, self.download_hint)
        read = self.read_plate(raw, folder, problems, check_files)
        plan = Plan(classes=CLASSES, labelled=self.label(read, protocol), columns=self.columns,
                    unlabelled={"dose": self.dose_fields(read)}, controls=[f for f in read.fields if f.control],
                    concentration_unit=self.concentration_unit)
        plan.choices += self.choices(read)
        wells = len({f.meta["Metadata_Well"] for f in read.fields})
        plan.counts = {"wells": wells, "fields": len(read.fields)} if self.counts_fields else {"wells": wells}
        return plan

    def read_plate(self, raw: Path, folder: Path, problems: Problems, check_files: bool) -> PlateRead:
        """The fields of the download (image ``folder`` under ``raw``); missing files go to ``problems``."""
        raise NotImplementedError

    def label(self, read: PlateRead, protocol: str) -> list[Labelled]:
        """The labelled set: the extremes of the fields chosen for ``protocol`` (one per well in ``cv``)."""
        low, high = lowest_highest([concentration(f) for f in read.fields])
        return label_extremes(select_fields(read.fields, self.opts["cv_field"] if protocol == "cv" else "all"),
                              low, high)

    def dose_fields(self, read: PlateRead) -> list[Field]:
        """The unlabelled dose-response set: every field with a concentration above 0."""
        return [f for f in read.fields if concentration(f) > 0]

    def choices(self, read: PlateRead) -> list[Choice]:
        """The open facts and the defaults this plan took (written to dataset.json)."""
        return []
