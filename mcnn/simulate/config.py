"""Configuration of a simulated screen: image geometry, phenotypes, plate layout, compounds, presets.

All concentrations and EC50s are in µM; sizes in pixels; intensities in camera ADU (uint16 counts).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcnn.errors import ConfigError

#: Class name of untreated cells and of negative-control (DMSO) fields.
CONTROL = "control"
#: Every phenotype the simulator renders, with the spatial scale it lives at.
PHENOTYPES: dict[str, str] = {
    "translocation": "cell scale: the cytoplasmic marker moves into the nucleus",
    "spots": "1-2 px: bright vesicle puncta in the cytoplasm",
    "elongation": "large scale: cells become elongated (aspect ratio about 3)",
    "fragmentation": "2-4 px: the nucleus breaks into several small bright fragments",
    "density": "field scale: affected cells die and mostly detach, fewer cells per field",
}
DEFAULT_PHENOTYPES = ("translocation", "spots", "elongation")
#: Name of the negative-control compound in ``platemap.csv``.
DMSO = "DMSO"
#: Plate formats: wells -> (rows, columns).
PLATE_FORMATS = {96: (8, 12), 384: (16, 24)}
#: Characters allowed in plate, channel and compound names (they become parts of file names).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


@dataclass(frozen=True)
class Compound:
    """A treatment: ``phenotype`` it induces, ``ec50`` (µM) and ``hill_slope`` of its Hill curve."""

    name: str
    phenotype: str
    ec50: float
    hill_slope: float


@dataclass(frozen=True)
class Appearance:
    """How cells and the microscope look; the defaults are tuned for 128x128 fields.

    Lengths in pixels, intensities in ADU before the per-plate/well/cell gains. Set ``noise=False``
    for noise-free renderings (tests), ``nuisance=False`` to switch off every per-plate, per-well
    and per-field variation (gains, background, illumination, texture).
    """

    cell_radius: float = 10.0
    """Equivalent radius sqrt(a*b) of an untreated cell (px)."""
    nucleus_radius: float = 4.8
    """Equivalent radius of an untreated nucleus (px)."""
    nuclear_level: float = 1800.0
    """Median nuclear stain intensity above background (ADU)."""
    cytoplasm_level: float = 700.0
    """Median cytoplasmic marker intensity above background (ADU)."""
    cell_intensity_sd: float = 0.25
    """Log-normal sd of a cell's intensities around the medians."""
    camera_offset: float = 100.0
    """Camera dark level added to every pixel (ADU)."""
    background: tuple[float, float] = (20.0, 150.0)
    """Range of the per-field, per-channel autofluorescence background (ADU, uniform)."""
    adu_per_photon: float = 1.5
    """Camera gain: Poisson noise is drawn on ``signal / adu_per_photon`` photons."""
    read_noise: float = 5.0
    """Gaussian read noise sd (ADU)."""
    gradient: float = 0.3
    """Largest linear illumination gradient across a field (fraction of the mean)."""
    vignetting: float = 0.15
    """Largest illumination fall-off from the centre to the corners (fraction)."""
    texture: float = 0.2
    """Amplitude of the smooth multiplicative texture of cytoplasm and chromatin."""
    plate_gain_sd: float = 0.08
    """Log-normal sd of the per-plate, per-channel intensity gain."""
    well_gain_sd: float = 0.1
    """Log-normal sd of the per-well, per-channel intensity gain."""
    well_count_sd: float = 0.15
    """Log-normal sd of the per-well cell-count factor (seeding variation)."""
    noise: bool = True
    nuisance: bool = True


@dataclass(frozen=True)
class ScreenConfig:
    """A whole simulated screen.

    Per plate: ``negative_control_wells`` DMSO wells and ``positive_control_wells`` wells of each
    phenotype's positive control (a compound with EC50 ``positive_control_ec50`` at
    ``positive_control_concentration``, so essentially every cell shows the phenotype). Treatment
    wells: every compound at every concentration of ``concentrations``, ``replicates`` times;
    replicate r (1-based) lies on plate ``(r - 1) % plates``. Each well is imaged at ``sites`` fields.
    """

    height: int = 128
    width: int = 128
    channels: tuple[str, str] = ("nuclei", "cytoplasm")
    cells_per_field: float = 14.0
    """Mean number of cells seeded in one field of ``height`` x ``width`` pixels."""
    phenotypes: tuple[str, ...] = DEFAULT_PHENOTYPES
    plates: int = 3
    plate_format: int = 96
    plate_prefix: str = "P"
    sites: int = 2
    negative_control_wells: int = 10
    positive_control_wells: int = 10
    positive_control_concentration: float = 10.0
    positive_control_ec50: float = 0.01
    positive_control_slope: float = 3.0
    compounds: tuple[Compound, ...] = ()
    concentrations: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
    replicates: int = 3
    seed: int = 0
    appearance: Appearance = field(default_factory=Appearance)
    preset: str | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names in label order: ``control``, then the phenotypes."""
        return (CONTROL, *self.phenotypes)

    def positive_control_name(self, phenotype: str) -> str:
        """Compound name of the positive control of ``phenotype`` (``PC-<phenotype>``)."""
        return f"PC-{phenotype}"

    def plate_name(self, index: int) -> str:
        """Name of plate ``index`` (0-based): ``<prefix>01``, ``<prefix>02``, ..."""
        return f"{self.plate_prefix}{index + 1:02d}"

    def validate(self) -> ScreenConfig:
        """Raise :class:`ConfigError` naming the first invalid field; return ``self`` otherwise."""
        self._check_image()
        self._check_phenotypes()
        for name, valid, message in _FIELD_RULES:
            value = getattr(self, name)
            if not valid(value):
                raise ConfigError(message.format(name=name, value=value))
        self._check_concentrations()
        self._check_compounds()
        self._check_capacity()
        return self

    def _check_image(self) -> None:
        if self.height < 32 or self.width < 32:
            raise ConfigError(f"image size must be at least 32x32 pixels, got {self.height}x{self.width}")
        if len(self.channels) != 2 or len(set(self.channels)) != 2:
            raise ConfigError(f"channels must be two distinct names (nuclear stain, cytoplasm), got {self.channels}")
        for name in self.channels:
            _check_name(name, "channel")
        _check_name(self.plate_prefix, "plate prefix")
        if not (self.cells_per_field >= 0 and math.isfinite(self.cells_per_field)):
            raise ConfigError(f"cells_per_field must be a non-negative number, got {self.cells_per_field!r}")

    def _check_phenotypes(self) -> None:
        if not self.phenotypes:
            raise ConfigError("at least one phenotype is needed")
        for name in self.phenotypes:
            if name not in PHENOTYPES:
                raise ConfigError(f"unknown phenotype {name!r}; choose from {', '.join(PHENOTYPES)}")
        if len(set(self.phenotypes)) != len(self.phenotypes):
            raise ConfigError(f"phenotypes listed twice: {self.phenotypes}")

    def _check_concentrations(self) -> None:
        if self.compounds and not self.concentrations:
            raise ConfigError("compounds need at least one concentration")
        if not all(map(_positive, self.concentrations)):
            raise ConfigError(f"concentrations must be positive numbers of µM, got {self.concentrations}")
        if len(set(self.concentrations)) != len(self.concentrations):
            raise ConfigError(f"concentrations listed twice: {self.concentrations}")

    def _check_compounds(self) -> None:
        names = {DMSO, *(self.positive_control_name(p) for p in self.phenotypes)}
        for compound in self.compounds:
            _check_name(compound.name, "compound")
            if compound.name in names:
                raise ConfigError(f"compound name {compound.name!r} is used twice (or is a control's name)")
            names.add(compound.name)
            if compound.phenotype not in self.phenotypes:
                raise ConfigError(f"compound {compound.name!r}: phenotype {compound.phenotype!r} is not among "
                                  f"the simulated phenotypes {self.phenotypes}")
            if not _positive(compound.ec50):
                raise ConfigError(f"compound {compound.name!r}: EC50 must be a positive number of µM")
            if not _positive(compound.hill_slope):
                raise ConfigError(f"compound {compound.name!r}: Hill slope must be positive")

    def _check_capacity(self) -> None:
        rows, cols = PLATE_FORMATS[self.plate_format]
        needed = self.wells_per_plate()
        if max(needed) > rows * cols:
            raise ConfigError(
                f"plate {self.plate_name(needed.index(max(needed)))} needs {max(needed)} wells but a "
                f"{self.plate_format}-well plate has {rows * cols}; use more plates, fewer wells or plate_format 384")

    def wells_per_plate(self) -> list[int]:
        """Number of wells used on each plate (controls plus the treatment replicates placed there)."""
        controls = self.negative_control_wells + self.positive_control_wells * len(self.phenotypes)
        counts = [controls] * self.plates
        for replicate in range(self.replicates):
            counts[replicate % self.plates] += len(self.compounds) * len(self.concentrations)
        return counts

    def to_dict(self) -> dict:
        """JSON-ready dictionary of every field (tuples become lists)."""
        return dataclasses.asdict(self)


def _positive(value: float) -> bool:
    """Whether ``value`` is a positive finite number."""
    return value > 0 and math.isfinite(value)


#: Range checks of the numeric fields of :class:`ScreenConfig`, in the order they are checked:
#: (field, test, message; ``{name}`` and ``{value}`` are filled in).
_FIELD_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    *((name, lambda v: v >= 1, "{name} must be at least 1, got {value}") for name in ("plates", "sites", "replicates")),
    *((name, lambda v: v >= 0, "{name} must not be negative, got {value}")
      for name in ("negative_control_wells", "positive_control_wells")),
    ("plate_format", lambda v: v in PLATE_FORMATS,
     "{name} must be one of " + str(sorted(PLATE_FORMATS)) + ", got {value}"),
    *((name, _positive, "{name} must be a positive number, got {value!r}")
      for name in ("positive_control_concentration", "positive_control_ec50", "positive_control_slope")),
)


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{what} name {name!r} must be letters, digits, '.' or '-' (it becomes part of file "
                          f"names; no '_' or spaces)")


# --------------------------------------------------------------------------------------------------
# Presets

#: The demo dilution series: 8 half-log concentrations, 0.01 to 30 µM.
DEMO_CONCENTRATIONS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)

#: Six compounds, two per phenotype; CPD-04's EC50 lies above the tested range.
DEMO_COMPOUNDS = (
    Compound("CPD-01", "translocation", 0.08, 2.0),
    Compound("CPD-02", "translocation", 2.0, 2.5),
    Compound("CPD-03", "spots", 0.5, 2.5),
    Compound("CPD-04", "spots", 100.0, 2.0),
    Compound("CPD-05", "elongation", 0.6, 3.0),
    Compound("CPD-06", "elongation", 5.0, 2.0),
)


def _presets() -> dict[str, ScreenConfig]:
    demo = ScreenConfig(
        plates=3, sites=2, negative_control_wells=10, positive_control_wells=10,
        compounds=DEMO_COMPOUNDS, concentrations=DEMO_CONCENTRATIONS, replicates=3, preset="demo",
    )
    small = ScreenConfig(
        plates=1, sites=2, negative_control_wells=8, positive_control_wells=8,
        compounds=(Compound("CPD-01", "translocation", 0.3, 2.0), Compound("CPD-02", "spots", 1.0, 1.5),
                   Compound("CPD-03", "elongation", 3.0, 2.0)),
        concentrations=DEMO_CONCENTRATIONS, replicates=2, preset="small",
    )
    test = ScreenConfig(
        height=64, width=64, cells_per_field=4.0, plates=1, sites=2, negative_control_wells=2,
        positive_control_wells=2,
        compounds=(Compound("CPD-01", "translocation", 1.0, 2.0), Compound("CPD-02", "spots", 0.3, 1.0)),
        concentrations=(0.1, 1.0, 10.0), replicates=1, preset="test",
    )
    return {"demo": demo, "small": small, "test": test}


PRESETS: dict[str, ScreenConfig] = _presets()
PRESET_HELP = {
    "demo": "3 plates x 88 wells x 2 sites of 128x128: 60 fields per class (control + 3 phenotypes), "
            "6 compounds x 8 concentrations x 3 replicates (528 fields)",
    "small": "1 plate, 128x128: 16 fields per class, 3 compounds x 8 concentrations x 2 replicates (160 fields)",
    "test": "1 plate, 64x64: 4 fields per class, 2 compounds x 3 concentrations (28 fields); for tests",
}


def get_preset(name: str) -> ScreenConfig:
    """The preset called ``name`` (``demo``, ``small`` or ``test``); :class:`ConfigError` otherwise."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None


def with_overrides(config: ScreenConfig, *, size: int | None = None, plates: int | None = None,
                   sites: int | None = None, seed: int | None = None,
                   phenotypes: tuple[str, ...] | None = None) -> ScreenConfig:
    """``config`` with some fields replaced.

    ``size`` makes square ``size`` x ``size`` fields and scales ``cells_per_field`` with the area,
    so that the cell density stays the same. ``phenotypes`` keeps only the compounds whose
    phenotype is still simulated.
    """
    changes: dict = {}
    if size is not None:
        if size < 32:
            raise ConfigError(f"--size must be at least 32, got {size}")
        area = size * size / (config.height * config.width)
        changes.update(height=size, width=size, cells_per_field=config.cells_per_field * area)
    if plates is not None:
        changes["plates"] = plates
    if sites is not None:
        changes["sites"] = sites
    if seed is not None:
        changes["seed"] = seed
    if phenotypes is not None:
        changes["phenotypes"] = tuple(phenotypes)
        changes["compounds"] = tuple(c for c in config.compounds if c.phenotype in phenotypes)
    return dataclasses.replace(config, **changes).validate() if changes else config.validate()
