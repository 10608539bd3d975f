"""Plate layout of a simulated screen: which well holds which treatment, and the fields imaged.

Wells are filled column by column (A01, B01, ..., H01, A02, ...) in this order on every plate:
the negative-control (DMSO) wells, the positive-control wells of each phenotype in class order,
then the treatment replicates placed on that plate (replicate r on plate ``(r - 1) % plates``),
compound by compound, from the lowest to the highest concentration. Control wells are numbered
as replicates 1, 2, ... of their compound across the whole screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcnn.simulate.config import CONTROL, DMSO, PLATE_FORMATS, ScreenConfig
from mcnn.simulate.hill import hill_fraction

NEGATIVE, POSITIVE, TREATMENT = "negative_control", "positive_control", "treatment"


@dataclass(frozen=True)
class Well:
    """One well: position, treatment and the expected fraction of affected cells (Hill curve)."""

    plate_index: int
    well_index: int
    plate: str
    well: str
    compound: str
    concentration: float
    replicate: int
    role: str
    phenotype: str
    expected_fraction: float


@dataclass(frozen=True)
class Field:
    """One imaged field (site, 1-based) of a well."""

    well: Well
    site: int

    @property
    def folder(self) -> str:
        """Folder of the field's TIFFs relative to the screen folder: ``images/<plate>``."""
        return f"images/{self.well.plate}"

    def image_name(self, channel: str) -> str:
        """Name of the channel's TIFF inside :attr:`folder`: ``<plate>_<well>_s<site>_<channel>.tif``."""
        return f"{self.well.plate}_{self.well.well}_s{self.site}_{channel}.tif"

    def file_name(self, channel: str) -> str:
        """Path of the channel's TIFF relative to the screen folder (forward slashes)."""
        return f"{self.folder}/{self.image_name(channel)}"


def well_name(index: int, plate_format: int = 96) -> str:
    """Name of the ``index``-th well (0-based, column by column): 0 -> ``A01``, 8 -> ``A02`` on 96 wells."""
    rows, cols = PLATE_FORMATS[plate_format]
    if not 0 <= index < rows * cols:
        raise ValueError(f"well index {index} outside a {plate_format}-well plate")
    return f"{chr(ord('A') + index % rows)}{index // rows + 1:02d}"


def plan_wells(config: ScreenConfig) -> list[Well]:
    """Every well of the screen, plate by plate in well order."""
    config.validate()
    per_plate: list[list[tuple]] = [[] for _ in range(config.plates)]
    control_replicate: dict[str, int] = {}

    def control(plate: int, compound: str, concentration: float, role: str, phenotype: str, fraction: float) -> None:
        control_replicate[compound] = control_replicate.get(compound, 0) + 1
        per_plate[plate].append((compound, concentration, control_replicate[compound], role, phenotype, fraction))

    pc_fraction = hill_fraction(config.positive_control_concentration, config.positive_control_ec50,
                                config.positive_control_slope)
    for plate in range(config.plates):
        for _ in range(config.negative_control_wells):
            control(plate, DMSO, 0.0, NEGATIVE, CONTROL, 0.0)
        for phenotype in config.phenotypes:
            for _ in range(config.positive_control_wells):
                control(plate, config.positive_control_name(phenotype), config.positive_control_concentration,
                        POSITIVE, phenotype, pc_fraction)
    concentrations = sorted(config.concentrations)
    for replicate in range(1, config.replicates + 1):
        plate = (replicate - 1) % config.plates
        for compound in config.compounds:
            for concentration in concentrations:
                fraction = hill_fraction(concentration, compound.ec50, compound.hill_slope)
                per_plate[plate].append((compound.name, concentration, replicate, TREATMENT,
                                         compound.phenotype, fraction))
    wells = []
    for plate, entries in enumerate(per_plate):
        name = config.plate_name(plate)
        for index, (compound, concentration, replicate, role, phenotype, fraction) in enumerate(entries):
            wells.append(Well(plate, index, name, well_name(index, config.plate_format), compound,
                              float(concentration), replicate, role, phenotype, float(fraction)))
    return wells


def plan_fields(config: ScreenConfig) -> list[Field]:
    """Every field of the screen: the wells of :func:`plan_wells`, each at sites 1..``config.sites``."""
    return [Field(well, site) for well in plan_wells(config) for site in range(1, config.sites + 1)]


def training_class(well: Well) -> str | None:
    """Training class of a control well (``control`` or its phenotype); ``None`` for treatments."""
    return None if well.role == TREATMENT else well.phenotype
