"""Write a whole simulated screen in the generic screen format of ``docs/formats.md`` ("A simulated screen").

::

    OUT/images/<plate>/<plate>_<well>_s<site>_<channel>.tif   uint16, one file per channel
    OUT/load_data.csv             one row per field: CellProfiler LoadData columns (FileName_/PathName_<channel>)
    OUT/platemap.csv              one row per well: compound, concentration, replicate, role, training class
    OUT/ground_truth_fields.csv   one row per field: the true affected fraction and phenotype
    OUT/plates/<plate>.ome.zarr   with ome_zarr=True: one OME-Zarr HCS plate per plate (same pixels)
    OUT/ground_truth.json         written last: its presence marks a complete screen

The image table and the plate map are what a user's own screen comes as (``prepare.py screen``
reads them); what only a simulation can know (EC50s, affected fractions, the phenotype of each
treatment) is kept in the two ``ground_truth`` files.

Every random draw comes from a generator seeded by ``(seed, plate, well, site)``, so a field's
pixels do not depend on the order fields are rendered in or on the number of workers.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tifffile

import mcnn
from mcnn.errors import ConfigError
from mcnn.fsutil import atomic_write_bytes, atomic_write_text
from mcnn.simulate.cells import FieldState, sample_field
from mcnn.simulate.config import CONTROL, DMSO, ScreenConfig
from mcnn.simulate.hill import HILL_MODEL_TEXT, ec50_in_range
from mcnn.simulate.layout import NEGATIVE, POSITIVE, TREATMENT, Field, Well, plan_fields, plan_wells, training_class
from mcnn.simulate.omezarr import require_ome_zarr, write_hcs_plate
from mcnn.simulate.render import RenderedField, draw_nuisance, render_field
from mcnn.tables import write_table

FORMAT_NAME = "mcnn-simulated-screen"
#: 2: the generic format (load_data.csv + platemap.csv); 1 had a bespoke metadata.csv.
FORMAT_VERSION = 2
GROUND_TRUTH = "ground_truth.json"
IMAGE_TABLE = "load_data.csv"
PLATEMAP = "platemap.csv"
FIELD_TRUTH = "ground_truth_fields.csv"
PLATES = "plates"
UNIT = "uM"
KEY_COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")
PLATEMAP_COLUMNS = (
    "Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration", "Metadata_ConcentrationUnit",
    "Metadata_Replicate", "Metadata_Role", "Metadata_Phenotype",
)
FIELD_TRUTH_COLUMNS = (*KEY_COLUMNS, "Metadata_AffectedFraction", "Metadata_TruePhenotype")
#: The options of ``prepare.py screen`` that read a simulated screen (also in ``ground_truth.json``).
PREPARE_FLAGS = {
    "label_column": "Metadata_Phenotype",
    "negative_control": f"Metadata_Role={NEGATIVE}",
    "positive_control": f"Metadata_Role={POSITIVE}",
    "unit": UNIT,
}
#: What a screen consists of; an overwrite removes these first (``metadata.csv``: format 1).
OUTPUTS = (GROUND_TRUTH, IMAGE_TABLE, PLATEMAP, FIELD_TRUTH, "metadata.csv", "images", PLATES)


def format_number(value: float) -> str:
    """A number as written in the CSVs: shortest form up to 10 significant digits (``0``, ``0.03``)."""
    return f"{value:.10g}"


def _generator(config: ScreenConfig, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=key))


def well_conditions(config: ScreenConfig, well: Well) -> tuple[tuple[float, float], float]:
    """The per-channel gain (plate x well) and the cell-count factor shared by a well's fields."""
    appearance = config.appearance
    if not appearance.nuisance:
        return (1.0, 1.0), 1.0
    plate_rng = _generator(config, 0, well.plate_index)
    well_rng = _generator(config, 1, well.plate_index, well.well_index)
    plate_gain = plate_rng.lognormal(0.0, appearance.plate_gain_sd, 2)
    well_gain = well_rng.lognormal(0.0, appearance.well_gain_sd, 2)
    count = float(well_rng.lognormal(0.0, appearance.well_count_sd))
    return (float(plate_gain[0] * well_gain[0]), float(plate_gain[1] * well_gain[1])), count


def simulate_field(config: ScreenConfig, field: Field) -> tuple[FieldState, RenderedField]:
    """Cells and image of one field of the screen (pure: nothing is written)."""
    gain, count = well_conditions(config, field.well)
    rng = _generator(config, 2, field.well.plate_index, field.well.well_index, field.site)
    state = sample_field(rng, field.well.phenotype, field.well.expected_fraction, config.cells_per_field * count,
                         config.height, config.width, config.appearance)
    nuisance = draw_nuisance(rng, config.appearance, gain)
    return state, render_field(state.cells, config.height, config.width, nuisance, config.appearance, rng)


def tiff_bytes(image: np.ndarray) -> bytes:
    """An (H, W) uint16 array as an uncompressed single-page greyscale TIFF."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.ascontiguousarray(image, dtype=np.uint16), photometric="minisblack", metadata=None)
    return buffer.getvalue()


def _write_field(task: tuple[ScreenConfig, Field, str]) -> dict[str, str]:
    config, field, out = task
    state, rendered = simulate_field(config, field)
    for channel, plane in zip(config.channels, rendered.image, strict=True):
        atomic_write_bytes(Path(out) / field.file_name(channel), tiff_bytes(plane))
    return field_truth_row(field, state)


def _key(field: Field) -> dict[str, str]:
    return {"Metadata_Plate": field.well.plate, "Metadata_Well": field.well.well, "Metadata_Site": str(field.site)}


def load_data_row(config: ScreenConfig, field: Field) -> dict[str, str]:
    """The ``load_data.csv`` row of a field: plate, well, site, then ``FileName_``/``PathName_`` per channel."""
    row = _key(field)
    for channel in config.channels:
        row[f"FileName_{channel}"] = field.image_name(channel)
        row[f"PathName_{channel}"] = field.folder
    return row


def load_data_columns(config: ScreenConfig) -> tuple[str, ...]:
    """Column order of ``load_data.csv`` (CellProfiler LoadData: ``FileName_<channel>``, ``PathName_<channel>``)."""
    return (*KEY_COLUMNS, *(f"{kind}_{channel}" for channel in config.channels for kind in ("FileName", "PathName")))


def platemap_row(well: Well) -> dict[str, str]:
    """The ``platemap.csv`` row of a well; ``Metadata_Phenotype`` is the training class, blank on treatments."""
    return {
        "Metadata_Plate": well.plate,
        "Metadata_Well": well.well,
        "Metadata_Compound": well.compound,
        "Metadata_Concentration": format_number(well.concentration),
        "Metadata_ConcentrationUnit": UNIT,
        "Metadata_Replicate": str(well.replicate),
        "Metadata_Role": well.role,
        "Metadata_Phenotype": training_class(well) or "",
    }


def field_truth_row(field: Field, state: FieldState) -> dict[str, str]:
    """The ``ground_truth_fields.csv`` row of a field: realised affected fraction and the true phenotype."""
    return {**_key(field), "Metadata_AffectedFraction": format_number(state.affected_fraction),
            "Metadata_TruePhenotype": field.well.phenotype}


def plate_paths(config: ScreenConfig) -> list[str]:
    """The OME-Zarr plates of a screen written with ``ome_zarr=True``, relative to it: ``plates/<plate>.ome.zarr``."""
    return [f"{PLATES}/{config.plate_name(i)}.ome.zarr" for i in range(config.plates)]


def ground_truth(config: ScreenConfig, fields: list[Field] | None = None, *, ome_zarr: bool = False) -> dict:
    """The content of ``ground_truth.json`` (see ``docs/simulator.md``); ``ome_zarr``: plates were written."""
    fields = plan_fields(config) if fields is None else fields
    compounds: dict[str, dict] = {
        DMSO: {"phenotype": CONTROL, "role": NEGATIVE, "ec50": None, "hill_slope": None, "concentrations": [0.0],
               "ec50_in_tested_range": None},
    }
    for phenotype in config.phenotypes:
        compounds[config.positive_control_name(phenotype)] = {
            "phenotype": phenotype, "role": POSITIVE, "ec50": config.positive_control_ec50,
            "hill_slope": config.positive_control_slope, "concentrations": [config.positive_control_concentration],
            "ec50_in_tested_range": None,
        }
    tested = sorted(config.concentrations)
    for compound in config.compounds:
        compounds[compound.name] = {
            "phenotype": compound.phenotype, "role": TREATMENT, "ec50": compound.ec50,
            "hill_slope": compound.hill_slope, "concentrations": tested,
            "ec50_in_tested_range": ec50_in_range(compound.ec50, tested),
        }
    per_class = {name: 0 for name in config.classes}
    for field in fields:
        name = training_class(field.well)
        if name is not None:
            per_class[name] += 1
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "generator": f"mcnn {mcnn.__version__} (mcnn.simulate)",
        "preset": config.preset,
        "seed": config.seed,
        "phenotypes": list(config.classes),
        "channels": list(config.channels),
        "image_size": {"height": config.height, "width": config.width},
        "dtype": "uint16",
        "concentration_unit": UNIT,
        "image_table": IMAGE_TABLE,
        "platemap": PLATEMAP,
        "field_truth": FIELD_TRUTH,
        "ome_zarr_plates": plate_paths(config) if ome_zarr else [],
        "prepare": dict(PREPARE_FLAGS),
        "hill_model": HILL_MODEL_TEXT,
        "compounds": compounds,
        "plates": [config.plate_name(i) for i in range(config.plates)],
        "counts": {
            "fields": len(fields),
            "training_fields_per_class": per_class,
            "treatment_fields": sum(f.well.role == TREATMENT for f in fields),
        },
        "config": config.to_dict(),
    }


def _prepare(out: Path, overwrite: bool) -> None:
    existing = [name for name in OUTPUTS if (out / name).exists()]
    if existing and not overwrite:
        raise ConfigError(f"{out} already holds a simulated screen ({', '.join(existing)}); "
                          f"choose another folder or pass --overwrite")
    # ground_truth.json goes first so that an interrupted overwrite never looks complete.
    for name in OUTPUTS:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _rows(tasks: list[tuple[ScreenConfig, Field, str]], workers: int) -> Iterator[dict[str, str]]:
    if workers <= 1:
        yield from map(_write_field, tasks)
        return
    chunk = max(1, math.ceil(len(tasks) / (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_write_field, tasks, chunksize=chunk)


def _write_plates(config: ScreenConfig, out: Path, fields: list[Field]) -> None:
    """One OME-Zarr HCS plate per plate, from the TIFFs just written (one field in memory at a time)."""
    for index, path in enumerate(plate_paths(config)):
        plate = config.plate_name(index)
        series = ((f.well.well, f.site, np.stack([tifffile.imread(out / f.file_name(c)) for c in config.channels]))
                  for f in fields if f.well.plate == plate)
        write_hcs_plate(out / path, plate, series, config.channels, np.uint16, plate_format=config.plate_format)


def simulate_screen(config: ScreenConfig, out_dir: str | os.PathLike[str], *, workers: int = 1,
                    overwrite: bool = False, ome_zarr: bool = False,
                    progress: Callable[[int], None] | None = None) -> Path:
    """Simulate ``config`` into ``out_dir`` and return its path.

    Writes the images, the OME-Zarr plates (``ome_zarr``; needs the ``screen`` extra), then
    ``load_data.csv``, ``platemap.csv``, ``ground_truth_fields.csv`` and last ``ground_truth.json``.
    ``workers`` > 1 renders fields in that many processes (same output). ``progress(n)`` is
    called after every ``n`` fields. An ``out_dir`` that already holds a screen is refused unless
    ``overwrite``, which first removes everything a screen consists of (``OUTPUTS``).
    """
    config.validate()
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    if ome_zarr:
        require_ome_zarr()  # a missing extra is reported before anything is rendered
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    fields = plan_fields(config)
    _prepare(out, overwrite)
    truth = []
    for row in _rows([(config, field, str(out)) for field in fields], workers):
        truth.append(row)
        if progress is not None:
            progress(1)
    if ome_zarr:
        _write_plates(config, out, fields)
    write_table(out / IMAGE_TABLE, [load_data_row(config, f) for f in fields], load_data_columns(config))
    write_table(out / PLATEMAP, [platemap_row(w) for w in plan_wells(config)], PLATEMAP_COLUMNS)
    write_table(out / FIELD_TRUTH, truth, FIELD_TRUTH_COLUMNS)
    atomic_write_text(out / GROUND_TRUTH, json.dumps(ground_truth(config, fields, ome_zarr=ome_zarr), indent=2) + "\n")
    return out
