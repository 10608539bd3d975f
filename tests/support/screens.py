"""Small "your own screen" inputs for tests: LoadData image tables, plate maps, TIFFs and OME-Zarr plates.

The default screen (:data:`WELLS`, :data:`PLATES`, :data:`CHANNELS`) has 2 plates x 8 wells x 2 sites
of 3 channels, 32 x 32 uint16; its pixels depend only on (plate, well, site, channel)
(:func:`field_pixels`), so the same screen written as TIFFs + LoadData CSV (:func:`write_tiff_screen`),
as multi-channel TIFFs with ``Frame_`` columns (``multichannel=True``) or as OME-Zarr plates written with
ome-zarr's own writer (:func:`write_zarr_screen`) must prepare to identical LMDB records.

Typical use::

    screen = write_tiff_screen(tmp_path / "raw")
    prepare("screen", screen.raw, out, PrepOptions(dataset_options=screen.options(), workers=1, quiet=True))
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHANNELS = ("DNA", "Actin", "Tubulin")
PLATES = ("P1", "P2")
SITES = 2
SIZE = (32, 32)
#: (well, compound, concentration, role, label) of every plate: 2 negative-control wells (blank label:
#: they train "control"), 2 wells of each of two labelled classes (one positive control and one further
#: compound each), 2 unlabelled treatment wells.
WELLS = (
    ("B02", "DMSO", "0", "negative_control", ""),
    ("B03", "DMSO", "0", "negative_control", ""),
    ("C02", "taxol", "1", "positive_control", "stabiliser"),
    ("C03", "docetaxel", "0.3", "treatment", "stabiliser"),
    ("D02", "nocodazole", "1", "positive_control", "destabiliser"),
    ("D03", "vinblastine", "0.03", "treatment", "destabiliser"),
    ("E02", "cpdA", "0.1", "treatment", ""),
    ("E03", "cpdA", "1", "treatment", ""),
)
PLATEMAP_COLUMNS = ("Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration",
                    "Metadata_Role", "Metadata_MoA")


def field_pixels(plate: str, well: str, site: int, channels: Sequence[str] = CHANNELS,
                 size: tuple[int, int] = SIZE, dtype: str = "uint16") -> np.ndarray:
    """The C x H x W pixels of one field: gamma noise seeded by (plate, well, site, channel), brighter
    for the labelled wells, so classes differ and no two fields are equal."""
    out = np.empty((len(channels), *size), dtype=dtype)
    bright = {w: 1.0 + i * 0.15 for i, (w, *_rest) in enumerate(WELLS)}.get(well, 1.0)
    top = np.iinfo(np.dtype(dtype)).max
    for c, channel in enumerate(channels):
        rng = np.random.default_rng(zlib.crc32(f"{plate}/{well}/{site}/{channel}".encode()))
        values = rng.gamma(2.0, (150.0 if dtype == "uint16" else 10.0) * bright * (1 + c), size) + 20
        out[c] = np.clip(values, 0, top).astype(dtype)
    return out


@dataclass
class ScreenFiles:
    """What a writer wrote: the RAW folder, the ``--images`` path, the plate map, the channels and the
    field names (``<plate>/<well>/s<site>``) in plate/well/site order."""

    raw: Path
    images: Path
    platemap: Path
    channels: tuple[str, ...]
    fields: list[str] = field(default_factory=list)

    def options(self, **extra: str) -> dict[str, str]:
        """The screen dataset options of this screen (label column Metadata_MoA, negative controls from
        Metadata_Role), updated with ``extra``."""
        opts = {"images": str(self.images), "platemap": str(self.platemap), "label_column": "Metadata_MoA"}
        opts.update(extra)
        return opts

    def flags(self, *extra: str) -> list[str]:
        """The same as ``prepare.py screen`` flags (``--images ... --label-column Metadata_MoA``)."""
        return ["--images", str(self.images), "--platemap", str(self.platemap), "--label-column", "Metadata_MoA",
                *extra]


def write_rows(path: Path, rows: Iterable[Mapping[str, object]], columns: Sequence[str], delimiter: str = ",") -> Path:
    """A CSV (or, with ``delimiter="\\t"``, TSV) with ``columns`` as header and one line per row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), delimiter=delimiter, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path


def platemap_rows(plates: Sequence[str] | None = PLATES, wells: Sequence[tuple[str, ...]] = WELLS) -> list[dict]:
    """The plate-map rows of the default screen (one per plate and well; ``plates=None``: one per well,
    without Metadata_Plate, for every plate)."""
    rows = []
    for plate in plates if plates is not None else [None]:
        for well, compound, conc, role, label in wells:
            row = {"Metadata_Well": well, "Metadata_Compound": compound, "Metadata_Concentration": conc,
                   "Metadata_Role": role, "Metadata_MoA": label}
            if plate is not None:
                row["Metadata_Plate"] = plate
            rows.append(row)
    return rows


def write_platemap(path: Path, plates: Sequence[str] | None = PLATES, rows: list[dict] | None = None,
                   columns: Sequence[str] | None = None) -> Path:
    """The plate map of the default screen (or ``rows``) at ``path``; no Metadata_Plate with ``plates=None``."""
    rows = rows if rows is not None else platemap_rows(plates)
    cols = list(columns or (PLATEMAP_COLUMNS if plates is not None else PLATEMAP_COLUMNS[1:]))
    return write_rows(path, rows, cols)


def _names(plates: Sequence[str], sites: int) -> list[tuple[str, str, int]]:
    return [(p, w[0], s) for p in plates for w in WELLS for s in range(1, sites + 1)]


def write_tiff_screen(raw: Path, plates: Sequence[str] = PLATES, sites: int = SITES, multichannel: bool = False,
                      channels: Sequence[str] = CHANNELS,
                      platemap_plates: Sequence[str] | None = PLATES) -> ScreenFiles:
    """The default screen as TIFFs under ``raw/images/<plate>/`` with a LoadData table ``raw/load_data.csv``
    (``PathName_`` relative to the table) and the plate map ``raw/platemap.csv``.

    One uint16 TIFF per channel, or with ``multichannel`` one 3-page TIFF per field named by every
    channel with its ``Frame_<Channel>`` column (written in reverse page order, so the frames matter).
    """
    import tifffile

    rows = []
    for plate, well, site in _names(plates, sites):
        pixels = field_pixels(plate, well, site, channels)
        folder = raw / "images" / plate
        folder.mkdir(parents=True, exist_ok=True)
        row: dict[str, object] = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": site}
        if multichannel:
            name = f"{plate}_{well}_s{site}.ome.tif"
            tifffile.imwrite(folder / name, np.ascontiguousarray(pixels[::-1]), photometric="minisblack")
            for c, channel in enumerate(channels):
                row.update({f"FileName_{channel}": name, f"PathName_{channel}": f"images/{plate}",
                            f"Frame_{channel}": len(channels) - 1 - c})
        else:
            for c, channel in enumerate(channels):
                name = f"{plate}_{well}_s{site}_{channel}.tif"
                tifffile.imwrite(folder / name, pixels[c], photometric="minisblack")
                row.update({f"FileName_{channel}": name, f"PathName_{channel}": f"images/{plate}"})
        rows.append(row)
    columns = ["Metadata_Plate", "Metadata_Well", "Metadata_Site"]
    for channel in channels:
        columns += [f"FileName_{channel}", f"PathName_{channel}"] + ([f"Frame_{channel}"] if multichannel else [])
    table = write_rows(raw / "load_data.csv", rows, columns)
    platemap = write_platemap(raw / "platemap.csv", platemap_plates)
    return ScreenFiles(raw, table, platemap, tuple(channels), [f"{p}/{w}/s{s}" for p, w, s in _names(plates, sites)])


def write_zarr_plate(path: Path, plate: str, sites: int = SITES, channels: Sequence[str] = CHANNELS,
                     version: str = "0.5", name: str | None = None, labels: bool = True) -> Path:
    """One plate of the default screen as an OME-Zarr HCS plate, written with ome-zarr's own writer
    (``write_plate_metadata``, ``write_well_metadata``, ``write_image``; NGFF ``version`` 0.4 or 0.5);
    the plate metadata's ``name`` is ``name`` (default ``plate``; "" writes none). ``labels=False`` writes
    no omero channel names."""
    import zarr
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.writer import write_image, write_plate_metadata, write_well_metadata

    fmt = FormatV05() if version == "0.5" else FormatV04()
    root = zarr.open_group(str(path), mode="w", zarr_format=fmt.zarr_format)
    rows = sorted({w[0][0] for w in WELLS})
    cols = sorted({str(int(w[0][1:])) for w in WELLS}, key=int)
    well_paths = [f"{w[0][0]}/{int(w[0][1:])}" for w in WELLS]
    write_plate_metadata(root, rows, cols, well_paths, fmt=fmt, field_count=sites,
                         name=(plate if name is None else name) or None)
    omero = {"channels": [{"label": c, "color": "FFFFFF", "window": {"start": 0, "end": 4000, "min": 0,
                                                                     "max": 65535}} for c in channels]}
    for (well, *_rest), well_path in zip(WELLS, well_paths, strict=True):
        row, col = well_path.split("/")
        group = root.require_group(row).require_group(col)
        write_well_metadata(group, [str(i) for i in range(sites)], fmt=fmt)
        for i in range(sites):
            pixels = field_pixels(plate, well, i + 1, channels)
            extra = {"omero": omero} if labels else {}
            write_image(pixels, group.require_group(str(i)), axes="cyx", fmt=fmt, scale_factors=[], **extra)
    return path


def write_zarr_screen(raw: Path, plates: Sequence[str] = PLATES, sites: int = SITES, version: str = "0.5",
                      channels: Sequence[str] = CHANNELS,
                      platemap_plates: Sequence[str] | None = PLATES) -> ScreenFiles:
    """The default screen as ``raw/plates/<plate>.ome.zarr`` (``--images raw/plates``) with the plate map
    ``raw/platemap.csv``."""
    for plate in plates:
        write_zarr_plate(raw / "plates" / f"{plate}.ome.zarr", plate, sites, channels, version)
    platemap = write_platemap(raw / "platemap.csv", platemap_plates)
    return ScreenFiles(raw, raw / "plates", platemap, tuple(channels),
                       [f"{p}/{w}/s{s}" for p, w, s in _names(plates, sites)])


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV written by :func:`write_rows`."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def rewrite_rows(path: Path, change: Callable[[list[dict[str, str]]], list[dict[str, str]] | None],
                 columns: Sequence[str] | None = None) -> Path:
    """Rewrite a CSV after ``change`` edited its rows in place (or returned new ones); ``columns``
    replaces the header (dropping or adding columns)."""
    header, rows = read_rows(path)
    new = change(rows)
    return write_rows(path, new if new is not None else rows, list(columns) if columns is not None else header)


#: The LMDBs of a one-repeat cv preparation of a screen.
UNITS = ("screen_lmdb", "splits/repeat_000/train_lmdb", "splits/repeat_000/test_lmdb")


def assert_same_records(a: Path, b: Path, units: Sequence[str] = UNITS) -> int:
    """Assert that the prepared folders ``a`` and ``b`` hold the same records (key, label, pixels) in
    each LMDB of ``units``; returns the number of records compared."""
    from tests.support.prepared import read_lmdb

    total = 0
    for unit in units:
        left, right = read_lmdb(a / unit), read_lmdb(b / unit)
        assert len(left) == len(right) > 0, unit
        for x, y in zip(left, right, strict=True):
            assert x[:2] == y[:2] and np.array_equal(x[2], y[2]), (unit, x[0], y[0])
        total += len(left)
    return total
