"""OME-Zarr high-content-screening plates (NGFF 0.4 and 0.5), read with zarr.

The layout is the NGFF "plate" and "well" specification (https://ngff.openmicroscopy.org/0.4/#plate-md,
https://ngff.openmicroscopy.org/0.5/#plate-md): the plate group lists its wells (``A/1``), each
well group lists its fields (images), each image is a multiscale whose first dataset is the full
resolution (level 0) with axes ``t?c?z?yx``. NGFF 0.5 keeps the metadata under the ``ome`` key of
the zarr v3 attributes, 0.4 at the top of ``.zattrs``. Channel names are the image's
``omero.channels[].label``. The plate's name is its ``name``, else the folder's stem; a field's
site is its index in the well's ``images`` list + 1; of a time series or a z-stack the first time
point and plane are read.

zarr is the ``screen`` extra: imported only when a plate is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcnn.datasets.base import Problems
from mcnn.datasets.loaddata import Header, SourceField, choose_channels, relative_to
from mcnn.datasets.plates import normalise_well
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError

_AXES = "tczyx"


def _zarr() -> Any:
    """The zarr module, or ConfigError naming the extra that installs it."""
    try:
        import zarr
    except ImportError:
        raise ConfigError("reading OME-Zarr plates needs the 'screen' extra: pip install 'mcnn[screen]'") from None
    return zarr


def _ome(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The NGFF metadata of a group's attributes (0.5: under ``ome``; 0.4: at the top)."""
    data = dict(attrs)
    inner = data.get("ome")
    return dict(inner) if isinstance(inner, Mapping) else data


def is_zarr_group(path: Path) -> bool:
    """Whether ``path`` is a zarr group folder (v3 ``zarr.json`` or v2 ``.zgroup``)."""
    return path.is_dir() and ((path / "zarr.json").is_file() or (path / ".zgroup").is_file())


def plate_folders(images: Path) -> list[Path]:
    """``images`` if it is one zarr plate, else the ``*.ome.zarr`` plates in the folder (sorted by name)."""
    if is_zarr_group(images):
        return [images]
    plates = sorted(p for p in images.iterdir() if p.name.lower().endswith(".zarr") and is_zarr_group(p))
    if not plates:
        raise DatasetLayoutError(f"{images}: no *.ome.zarr plate in the folder (expected an OME-Zarr HCS plate "
                                 "or a folder of them)")
    return plates


@dataclass(frozen=True)
class ZarrSource:
    """How to read one field of a zarr plate: the level-0 array (absolute path), its axes
    (``czyx`` ...), the index along ``c`` of each channel, and the plane size (H, W) and dtype
    its metadata states."""

    array: str
    axes: str
    channels: tuple[int, ...]
    shape: tuple[int, int]
    dtype: str

    def read(self, raw: Path) -> list[np.ndarray]:
        """The 2-D planes of the field in channel order (first time point and z plane)."""
        try:
            arr = _zarr().open_array(self.array, mode="r")
            planes = []
            for c in self.channels:
                index = tuple(c if a == "c" else 0 if a in "tz" else slice(None) for a in self.axes)
                planes.append(np.ascontiguousarray(np.asarray(arr[index])))
        except ConfigError:
            raise
        except Exception as exc:  # a corrupt chunk or array becomes one line naming the array
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInputError(self.array, f"unreadable zarr array ({text})") from None
        return planes

    def headers(self, raw: Path) -> list[Header | None]:
        """Per channel the plane size and dtype (all channels of a zarr image share them)."""
        return [(self.shape, self.dtype)] * len(self.channels)


def _open(zarr: Any, path: Path) -> Any | None:
    """The zarr group at ``path``, None if there is none."""
    try:
        return zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, KeyError, ValueError):
        return None


def _axes(image: Path, multiscale: Mapping[str, Any]) -> str:
    """The axis names of a multiscale (``cyx``, ``tczyx``, ...); DatasetLayoutError unless ``t?c?z?yx``."""
    names = "".join(str(a.get("name") if isinstance(a, Mapping) else a).lower() for a in multiscale.get("axes", []))
    if not names:
        names = "tczyx"  # NGFF 0.1/0.2 have no axes and are always 5-D
    ordered = "".join(a for a in _AXES if a in names)
    if names != ordered or not names.endswith("yx"):
        raise DatasetLayoutError(f"{image}: axes {names!r}, expected t?c?z?yx (NGFF multiscales)")
    return names


def _labels(image: Path, meta: Mapping[str, Any]) -> tuple[str, ...]:
    """The channel names of an image (``omero.channels[].label``); DatasetLayoutError if it has none."""
    channels = (meta.get("omero") or {}).get("channels") if isinstance(meta.get("omero"), Mapping) else None
    labels = tuple(str(c.get("label") or "").strip() for c in channels or [] if isinstance(c, Mapping))
    if not labels or not all(labels):
        raise DatasetLayoutError(f"{image}: no channel names (expected omero.channels[].label in the image "
                                 "metadata)")
    return labels


def _well_name(plate: Path, meta: Mapping[str, Any], entry: Mapping[str, Any]) -> str:
    """The well name (``A01``) of a plate-metadata ``wells`` entry, from its rowIndex/columnIndex or path."""
    path = str(entry.get("path", ""))
    try:
        row = meta["rows"][int(entry["rowIndex"])]["name"]
        col = meta["columns"][int(entry["columnIndex"])]["name"]
    except (KeyError, IndexError, TypeError, ValueError):
        row, _, col = path.partition("/")
    try:
        return normalise_well(f"{row}{col}")
    except ValueError:
        raise DatasetLayoutError(f"{plate}: plate.wells path {path!r}: not a well (expected e.g. A/1)") from None


@dataclass
class _Plate:
    """What reading one plate needs to carry along."""

    zarr: Any
    path: Path
    name: str
    raw: Path
    problems: Problems
    channels: tuple[str, ...] | None


def _field(p: _Plate, well: str, site: int, image: Path, wanted: Sequence[str]) -> SourceField | None:
    """The field of the image group ``image`` (None, reported, if it or its array is missing)."""
    rel = relative_to(image, p.raw)
    group = _open(p.zarr, image)
    meta = _ome(group.attrs) if group is not None else {}
    multiscales = meta.get("multiscales") or []
    if group is None or not multiscales:
        p.problems.bad(rel, f"field {site - 1} of well {well} (plate {p.name}): image listed in the well "
                       "metadata is missing (expected a multiscale image group)")
        return None
    axes = _axes(image, multiscales[0])
    labels = _labels(image, meta)
    if p.channels is None:
        p.channels = choose_channels(labels, wanted, str(image))
    absent = [c for c in p.channels if c not in labels]
    level = str((multiscales[0].get("datasets") or [{}])[0].get("path", "0"))
    try:
        arr = p.zarr.open_array(str(image / level), mode="r")
    except (FileNotFoundError, KeyError, ValueError):
        arr = None
    if absent or arr is None:
        p.problems.bad(rel, f"no channel {absent[0]!r} (omero.channels labels: {', '.join(labels)})" if absent
                       else f"level-0 array {level!r} of the multiscale is missing")
        return None
    if "c" in axes and arr.shape[axes.index("c")] != len(labels):
        p.problems.bad(rel, f"{arr.shape[axes.index('c')]} channels in the array, {len(labels)} in omero.channels")
        return None
    shape = (int(arr.shape[-2]), int(arr.shape[-1]))
    indices = tuple(labels.index(c) for c in p.channels)
    source = ZarrSource(str(image / level), axes, indices, shape, np.dtype(arr.dtype).name)
    return SourceField(p.name, well, site, rel, tuple(f"{rel}#c={i}" for i in indices), source)


def read_plate(path: Path, wanted: Sequence[str], raw: Path, problems: Problems,
               channels: tuple[str, ...] | None = None) -> tuple[tuple[str, ...] | None, list[SourceField]]:
    """The channels and fields of one OME-Zarr HCS plate, in the order of its metadata.

    ``channels`` fixed by an earlier plate (None: the first field's labels, or ``wanted``);
    listed wells and fields that are missing go to ``problems``.
    """
    zarr = _zarr()
    group = _open(zarr, path)
    meta = _ome(group.attrs) if group is not None else {}
    plate = meta.get("plate")
    if not isinstance(plate, Mapping) or not isinstance(plate.get("wells"), list):
        raise DatasetLayoutError(f"{path}: no 'plate' metadata with 'wells' (expected an OME-Zarr HCS plate, "
                                 "NGFF 0.4 or 0.5)")
    stem = path.name[: -len(".ome.zarr")] if path.name.lower().endswith(".ome.zarr") else path.stem
    p = _Plate(zarr, path, str(plate.get("name") or stem), raw, problems, channels)
    fields: list[SourceField] = []
    for entry in plate["wells"]:
        well = _well_name(path, plate, entry)
        well_path = path / str(entry.get("path", ""))
        well_group = _open(zarr, well_path)
        images = (_ome(well_group.attrs).get("well") or {}).get("images") if well_group is not None else None
        if not isinstance(images, list):
            problems.bad(relative_to(well_path, raw), f"well {well} (plate {p.name}) listed in the plate metadata is "
                         "missing or has no 'well' metadata with 'images'")
            continue
        for i, image in enumerate(images):
            f = _field(p, well, i + 1, well_path / str(image.get("path", "")), wanted)
            if f is not None:
                fields.append(f)
    return p.channels, fields


def read_plates(images: Path, wanted: Sequence[str], raw: Path,
                problems: Problems) -> tuple[tuple[str, ...], list[SourceField]]:
    """The channels and fields of every plate at ``images`` (one plate or a folder of them)."""
    channels: tuple[str, ...] | None = None
    fields: list[SourceField] = []
    for path in plate_folders(images):
        channels, more = read_plate(path, wanted, raw, problems, channels)
        fields += more
    if channels is None:
        raise DatasetLayoutError(f"{images}: no readable field in the OME-Zarr plate(s)")
    return channels, fields
