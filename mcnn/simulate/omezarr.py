"""Write one OME-Zarr HCS plate (NGFF "plate" layout) from the fields of a screen, well by well.

Layout written (NGFF 0.5 as ome-zarr 0.18 writes it, https://ngff.openmicroscopy.org/latest/#hcs-layout)::

    <plate>.ome.zarr/                 plate metadata: name, rows, columns, wells, field_count
      <row>/<column>/                 one group per well, e.g. B/03; well metadata lists its fields
        0/ 1/ ...                     one image per field, in the order given (path "0" = first site)
          s0                          the single resolution level: (C, H, W) array, axes c, y, x

Well names are a row of letters and a column number (``B03``, ``B3``, ``AF48``); rows are named by
their letters, columns by their number written with two digits (``03``), so ``row + column`` gives
the well back as plate maps write it. ``rows`` and ``columns`` run from ``A`` and ``01`` to the last
used ones (or span the whole plate with ``plate_format``), so indices are physical positions.
Channel names go to the ``omero`` metadata (``channels[i].label``).

ome-zarr and zarr are the optional ``screen`` extra, imported only when a plate is written.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from mcnn.errors import ConfigError
from mcnn.fsutil import temporary_sibling

#: Plate formats: wells -> (rows, columns).
PLATE_SHAPES = {6: (2, 3), 12: (3, 4), 24: (4, 6), 48: (6, 8), 96: (8, 12), 384: (16, 24), 1536: (32, 48)}
#: Display colours (RRGGBB) of the channels in order: blue first, as the nuclear stain is usually shown.
COLOURS = ("0000FF", "00FF00", "FF0000", "FF00FF", "00FFFF", "FFFF00", "FFFFFF")
_WELL = re.compile(r"^([A-Z]{1,2})(\d{1,3})$")


def require_ome_zarr() -> tuple[ModuleType, ModuleType]:
    """The ``zarr`` and ``ome_zarr.writer`` modules; :class:`ConfigError` naming the extra when missing."""
    try:
        import zarr
        # ome-zarr 0.18 builds a deprecated Scaler() as a default argument at import time; the
        # warning is about its API, not about this use (we pass scale_factors).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from ome_zarr import writer
    except ImportError as exc:
        raise ConfigError(f"writing OME-Zarr plates needs the 'screen' extra: pip install 'mcnn[screen]' "
                          f"({exc})") from None
    return zarr, writer


def row_name(index: int) -> str:
    """Name of plate row ``index`` (0-based): 0 -> ``A``, 25 -> ``Z``, 26 -> ``AA`` (1536-well plates)."""
    if index < 26:
        return chr(ord("A") + index)
    return chr(ord("A") + index // 26 - 1) + chr(ord("A") + index % 26)


def row_index(name: str) -> int:
    """Inverse of :func:`row_name`: ``A`` -> 0, ``AA`` -> 26."""
    if len(name) == 1:
        return ord(name) - ord("A")
    return (ord(name[0]) - ord("A") + 1) * 26 + ord(name[1]) - ord("A")


def split_well(well: str) -> tuple[str, str]:
    """(row, column) names of a well: ``B3`` or ``B03`` -> (``B``, ``03``); ConfigError if malformed."""
    match = _WELL.match(well)
    if match is None or int(match.group(2)) < 1:
        raise ConfigError(f"well {well!r}: expected row letters and a column number from 1, e.g. B03")
    return match.group(1), f"{int(match.group(2)):02d}"


def plate_shape(plate_format: int | None) -> tuple[int, int] | None:
    """(rows, columns) of a ``plate_format``-well plate, ``None`` for ``None``; ConfigError if unknown."""
    if plate_format is None:
        return None
    if plate_format not in PLATE_SHAPES:
        raise ConfigError(f"plate_format must be one of {sorted(PLATE_SHAPES)}, got {plate_format}")
    return PLATE_SHAPES[plate_format]


def plate_axes(wells: Sequence[tuple[str, str]], shape: tuple[int, int] | None = None) -> tuple[list[str], list[str]]:
    """Row and column names of a plate holding ``wells`` ((row, column) names).

    From ``A`` / ``01`` to the last used row / column, or the whole plate of ``shape`` (rows, columns).
    """
    last_row = max(row_index(r) for r, _ in wells)
    last_col = max(int(c) for _, c in wells)
    if shape is not None:
        last_row, last_col = max(last_row, shape[0] - 1), max(last_col, shape[1])
    return [row_name(i) for i in range(last_row + 1)], [f"{i:02d}" for i in range(1, last_col + 1)]


def _channel_metadata(channels: Sequence[str], image: np.ndarray) -> list[dict]:
    """omero channel entries: label, colour, display window (the field's range inside the dtype's)."""
    info = np.iinfo(image.dtype) if np.issubdtype(image.dtype, np.integer) else None
    entries = []
    for index, label in enumerate(channels):
        plane = image[index]
        low, high = (float(info.min), float(info.max)) if info else (float(plane.min()), float(plane.max()))
        entries.append({"label": label, "color": COLOURS[index % len(COLOURS)], "active": True,
                        "window": {"min": low, "max": high, "start": float(plane.min()), "end": float(plane.max())}})
    return entries


def _as_field(well: str, site: int, image: object, channels: Sequence[str], dtype: np.dtype) -> np.ndarray:
    data = np.asarray(image)
    if data.ndim != 3 or data.shape[0] != len(channels):
        raise ConfigError(f"well {well} site {site}: expected a ({len(channels)}, H, W) array, got shape {data.shape}")
    if data.dtype != dtype and not np.can_cast(data.dtype, dtype, casting="safe"):
        raise ConfigError(f"well {well} site {site}: {data.dtype} pixels cannot be stored as {dtype} without loss")
    return data.astype(dtype, copy=False)


def _position(well: str, shape: tuple[int, int] | None) -> tuple[str, str]:
    """(row, column) names of ``well``, checked to lie on a plate of ``shape`` (rows, columns) if given."""
    position = split_well(well)
    if shape is not None and (row_index(position[0]) >= shape[0] or int(position[1]) > shape[1]):
        raise ConfigError(f"well {well} lies outside a {shape[0] * shape[1]}-well plate")
    return position


def _write_fields(root: object, writer: ModuleType, plate_name: str, fields: Iterable[tuple[str, int, object]],
                  channels: Sequence[str], dtype: np.dtype,
                  shape: tuple[int, int] | None) -> tuple[list[tuple[str, str]], int]:
    """Write every field into ``root``; returns the wells in order and the most fields of a well."""
    wells: list[tuple[str, str]] = []
    sites: list[int] = []
    most = 0
    group = None
    for well, site, image in fields:
        position = _position(well, shape)
        if not wells or position != wells[-1]:
            if position in wells:
                raise ConfigError(f"well {well}: its fields must come one after the other (written well by well)")
            if group is not None:
                writer.write_well_metadata(group, [{"path": str(i)} for i in range(len(sites))])
            wells.append(position)
            sites = []
            group = root.require_group(position[0]).require_group(position[1])
        if site in sites:
            raise ConfigError(f"well {well}: site {site} given twice")
        data = _as_field(well, site, image, channels, dtype)
        writer.write_image(data, group.require_group(str(len(sites))), scale_factors=(), axes="cyx",
                           name=f"{plate_name}_{well}_s{site}",
                           storage_options={"chunks": (1, *data.shape[1:])},
                           omero={"channels": _channel_metadata(channels, data)})
        sites.append(site)
        most = max(most, len(sites))
    if group is not None:
        writer.write_well_metadata(group, [{"path": str(i)} for i in range(len(sites))])
    return wells, most


def write_hcs_plate(path: str | os.PathLike[str], plate_name: str, fields: Iterable[tuple[str, int, object]],
                    channels: Sequence[str], dtype: object = np.uint16, *, plate_format: int | None = None) -> Path:
    """Write the fields of one plate as an OME-Zarr HCS plate at ``path`` (e.g. ``plates/P01.ome.zarr``).

    ``fields`` yields (well ``"B03"``, site number, (C, H, W) array) with C = ``len(channels)``;
    each well's fields come one after the other and are stored as fields ``0``, ``1``, ... in the
    order given, so only one field is in memory at a time. Pixels are stored as ``dtype`` (arrays
    that cannot be converted without loss are refused), one chunk per channel, a single resolution
    level. ``plate_format`` (96, 384, ...) makes the plate's rows and columns span the whole plate
    and refuses wells outside it; without it they run up to the last used row and column. The
    plate is built under a temporary name and renamed when complete; an existing ``path`` is
    refused. Returns ``path``. Raises :class:`ConfigError` on malformed fields or when the
    ``screen`` extra is missing.
    """
    zarr, writer = require_ome_zarr()
    target = Path(path)
    if target.exists():
        raise ConfigError(f"{target} already exists")
    if not channels or len(set(channels)) != len(channels):
        raise ConfigError(f"channels must be distinct names, got {list(channels)}")
    dtype = np.dtype(dtype)
    shape = plate_shape(plate_format)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        root = zarr.open_group(str(tmp), mode="w")
        wells, most = _write_fields(root, writer, plate_name, fields, channels, dtype, shape)
        if not wells:
            raise ConfigError(f"plate {plate_name}: no fields to write")
        rows, columns = plate_axes(wells, shape)
        writer.write_plate_metadata(root, rows, columns, [f"{r}/{c}" for r, c in wells], field_count=most,
                                    name=plate_name)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
