"""Image tables in the CellProfiler LoadData convention, and the TIFF planes they name.

One row per field: ``Metadata_Plate``, ``Metadata_Well``, ``Metadata_Site`` and, per channel,
``FileName_<Channel>`` and ``PathName_<Channel>`` (or BBBC021's ``Image_FileName_<Channel>`` /
``Image_PathName_<Channel>``), as CellProfiler's LoadData module reads them
(https://cellprofiler-manual.s3.amazonaws.com/CellProfiler-4.2.6/modules/fileprocessing.html#loaddata).
``PathName`` is relative to the table's folder or absolute. When several channels name the same
file (one multi-channel (OME-)TIFF per field), ``Frame_<Channel>`` gives the plane index; without
it a channel takes its position among the channels naming that file.

:func:`read_delimited` reads any CSV/TSV of a screen (the plate map too) with line numbers for
the messages; :class:`TiffSource` reads the planes of one field (picklable: the worker processes
of ``prepare`` get it with the dataset).
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mcnn.datasets.imageio import read_plane
from mcnn.datasets.plates import normalise_well, read_text
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError

KEYS = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")
_PREFIXES = ("FileName_", "Image_FileName_")
_TIFF = (".tif", ".tiff")
#: (height, width) and dtype name of a plane, as a file's header states it.
Header = tuple[tuple[int, int], str]


@dataclass(frozen=True)
class TextTable:
    """A delimited text file: its path, header and (line number, row) pairs with stripped values."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]

    def missing(self, *names: str) -> list[str]:
        """The ``names`` that are not columns of the table."""
        return [n for n in names if n not in self.columns]


def _delimiter(path: Path, header: str) -> str:
    """Tab for ``.tsv``/``.tab``, comma for ``.csv``, else whichever the header line has more of."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if header.count("\t") > header.count(",") else ","


def read_delimited(path: Path, what: str) -> TextTable:
    """A CSV or TSV with a header line (any line ends, quoted or not, UTF-8 with or without BOM);
    blank lines are skipped. DatasetLayoutError naming the file (and line) if it is missing, empty
    or ragged; ``what`` says what the file should be."""
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: file missing, expected {what}")
    text = read_text(path)
    first = text.splitlines()[0] if text.strip() else ""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path, first))
    try:
        header = tuple(h.strip() for h in next(reader))
    except StopIteration:
        raise DatasetLayoutError(f"{path}: empty file, expected {what}") from None
    if not any(header):
        raise DatasetLayoutError(f"{path}: line 1: empty header, expected {what}")
    rows = []
    for values in reader:
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise DatasetLayoutError(f"{path}: line {reader.line_num}: {len(values)} values, expected "
                                     f"{len(header)} (the header's columns)")
        rows.append((reader.line_num, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    return TextTable(path, header, tuple(rows))


@dataclass(frozen=True)
class TiffSource:
    """How to read one field from image files: per channel the file (relative to RAW, or absolute)
    and the plane index in it (None: a single-plane file)."""

    files: tuple[str, ...]
    frames: tuple[int | None, ...]

    def read(self, raw: Path) -> list[np.ndarray]:
        """The 2-D planes of the field, in channel order; BadInputError naming the file on failure."""
        planes = []
        for rel, frame in zip(self.files, self.frames, strict=True):
            if frame is None:
                planes.append(read_plane(raw / rel, label=rel))
            else:
                planes.append(read_frame(raw / rel, frame, rel))
        return planes

    def headers(self, raw: Path) -> list[Header | None]:
        """Per channel the (height, width) and dtype of its plane from the TIFF header (None for other
        formats); BadInputError naming the file if it is missing or not a readable TIFF."""
        return [tiff_header(raw / rel, frame, rel) for rel, frame in zip(self.files, self.frames, strict=True)]


def _tiff_error(label: str, exc: Exception) -> BadInputError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return BadInputError(label, f"unreadable or truncated image ({text})")


def _check_index(count: int, frame: int, label: str) -> None:
    if frame >= count:
        raise BadInputError(label, f"plane {frame} (Frame_ column) requested, the file has {count} plane(s)")


@contextlib.contextmanager
def _tiff_pages(path: Path, label: str) -> Iterator[Any]:
    """The pages of the open TIFF ``path`` (tifffile's warnings silenced); a file without an image is a
    :class:`BadInputError` naming ``label``."""
    import tifffile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tifffile.TiffFile(path) as tif:
            if not len(tif.pages):
                raise BadInputError(label, "unreadable or truncated image (no image in the file)")
            yield tif.pages


def read_frame(path: Path, frame: int, label: str) -> np.ndarray:
    """Plane ``frame`` (0-based) of a multi-page TIFF, or sample ``frame`` of a single multi-sample page."""

    if not path.is_file():
        raise BadInputError(label, "missing file")
    try:
        with _tiff_pages(path, label) as pages:
            if len(pages) > 1:
                _check_index(len(pages), frame, label)
                array = pages[frame].asarray()
            else:
                page = pages[0]
                array = page.asarray()
                if array.ndim == 3:
                    samples_first = page.axes.startswith("S") or array.shape[0] < array.shape[-1]
                    count = array.shape[0] if samples_first else array.shape[-1]
                    _check_index(count, frame, label)
                    array = array[frame] if samples_first else array[..., frame]
                else:
                    _check_index(1, frame, label)
    except BadInputError:
        raise
    except Exception as exc:  # every decoder failure becomes one line naming the file
        raise _tiff_error(label, exc) from None
    if array.ndim != 2 or array.dtype.kind not in "ui":
        raise BadInputError(label, f"plane {frame}: expected a 2-D integer image, got {array.dtype.name} "
                            f"pixels of shape {array.shape}")
    return np.ascontiguousarray(array)


def tiff_header(path: Path, frame: int | None, label: str) -> Header | None:
    """(height, width) and dtype of plane ``frame`` of a TIFF, read from its header only (None for a
    file of another format or a page that is not a plain 2-D plane)."""

    if not path.is_file():
        raise BadInputError(label, "missing file")
    if path.suffix.lower() not in _TIFF:
        return None
    try:
        with _tiff_pages(path, label) as pages:
            index = frame if frame is not None and len(pages) > 1 else 0
            if index >= len(pages):
                raise BadInputError(label, f"plane {index} (Frame_ column) requested, the file has "
                                    f"{len(pages)} plane(s)")
            page = pages[index]
            shape, dtype = tuple(page.shape), np.dtype(page.dtype).name
            end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts, strict=False)), default=0)
            if end > path.stat().st_size:  # the pixel data the header promises is not all there
                raise BadInputError(label, f"unreadable or truncated image (pixel data ends at byte {end}, the "
                                    f"file has {path.stat().st_size})")
    except BadInputError:
        raise
    except Exception as exc:
        raise _tiff_error(label, exc) from None
    if len(shape) == 3 and frame is not None and len(pages) == 1:
        shape = shape[1:] if page.axes.startswith("S") or shape[0] < shape[-1] else shape[:2]
    if len(shape) != 2:
        return None
    return (int(shape[0]), int(shape[1])), dtype


class FieldSource(Protocol):
    """What reads the planes of one field (:class:`TiffSource`, :class:`mcnn.datasets.omezarr.ZarrSource`)."""

    def read(self, raw: Path) -> list[np.ndarray]:
        """The 2-D planes of the field, in channel order."""
        ...

    def headers(self, raw: Path) -> list[Header | None]:
        """Per channel the plane size and dtype, from metadata only (None where unknown)."""
        ...


@dataclass(frozen=True)
class SourceField:
    """One field as an image source lists it: plate, well (``A01``), site (1, 2, ...), where it is
    listed (``<table> line <n>`` or the zarr image group), its per-channel ``files`` (the index CSV's
    ``Image_FileName_*``) and the ``source`` that reads its planes."""

    plate: str
    well: str
    site: int
    where: str
    files: tuple[str, ...]
    source: FieldSource

    @property
    def name(self) -> str:
        """The field's name, ``<plate>/<well>/s<site>`` (the ``<name>`` part of its LMDB keys)."""
        return f"{self.plate}/{self.well}/s{self.site}"


def table_channels(table: TextTable) -> tuple[str, ...]:
    """The channels of an image table, in column order (from its ``FileName_<Channel>`` columns)."""
    out: list[str] = []
    for col in table.columns:
        for prefix in _PREFIXES:
            if col.startswith(prefix) and col[len(prefix):] and col[len(prefix):] not in out:
                out.append(col[len(prefix):])
    return tuple(out)


def _column(table: TextTable, kind: str, channel: str) -> str | None:
    """The ``<kind>_<channel>`` column of the table, in either spelling (None if absent)."""
    for name in (f"{kind}_{channel}", f"Image_{kind}_{channel}"):
        if name in table.columns:
            return name
    return None


def choose_channels(available: Sequence[str], wanted: Sequence[str], where: str) -> tuple[str, ...]:
    """``wanted`` (the ``channels`` option) if all are ``available``, else every available channel;
    ConfigError naming ``where`` and the channels present for an unknown one."""
    if not available:
        raise DatasetLayoutError(f"{where}: no channels (expected FileName_<Channel> columns or omero channel "
                                 "labels)")
    if not wanted:
        return tuple(available)
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ConfigError(f"--channels {','.join(wanted)}: no channel {unknown[0]!r} in {where} (has "
                          f"{', '.join(available)})")
    return tuple(wanted)


def _frames(table: TextTable, n: int, row: dict[str, str], channels: Sequence[str],
            paths: Sequence[str]) -> tuple[int | None, ...]:
    """The plane index of each channel: its ``Frame_`` value, else its position among the channels
    naming the same file, None for a file named by one channel only."""
    frames: list[int | None] = []
    for c, path in zip(channels, paths, strict=True):
        sharers = [ch for ch, p in zip(channels, paths, strict=True) if p == path]
        col = _column(table, "Frame", c)
        text = row[col] if col else ""
        if text:
            try:
                frame = int(text)
            except ValueError:
                frame = -1
            if frame < 0:
                raise DatasetLayoutError(f"{table.path}: line {n}: column {col}: {text!r} is not a plane index "
                                         "(0, 1, ...)")
            frames.append(frame)
        else:
            frames.append(sharers.index(c) if len(sharers) > 1 else None)
    return tuple(frames)


def relative_to(path: Path, raw: Path) -> str:
    """``path`` relative to ``raw`` as a POSIX path when it lies under it, else absolute."""
    try:
        return path.relative_to(raw).as_posix()
    except ValueError:
        return path.as_posix()


def _file(table: TextTable, row: dict[str, str], channel: str) -> Path:
    """The absolute file a row names for ``channel`` (``PathName`` relative to the table's folder)."""
    name_col = _column(table, "FileName", channel)
    path_col = _column(table, "PathName", channel)
    assert name_col is not None
    folder = row[path_col].replace("\\", "/") if path_col else ""
    name = row[name_col].replace("\\", "/")
    return (table.path.parent / folder / name).resolve()


def _key(table: TextTable, n: int, row: dict[str, str]) -> tuple[str, str, int]:
    """(plate, well ``A01``, site) of image-table row ``n``; DatasetLayoutError naming the column."""
    plate = row["Metadata_Plate"]
    if not plate:
        raise DatasetLayoutError(f"{table.path}: line {n}: column Metadata_Plate: blank, expected a plate name")
    try:
        well = normalise_well(row["Metadata_Well"])
    except ValueError:
        raise DatasetLayoutError(f"{table.path}: line {n}: column Metadata_Well: {row['Metadata_Well']!r} is not "
                                 "a well (expected e.g. A01, A1 or a01)") from None
    text = row["Metadata_Site"]
    if not text.isdigit():
        raise DatasetLayoutError(f"{table.path}: line {n}: column Metadata_Site: {text!r} is not a site number "
                                 "(1, 2, ...)")
    site = int(text)
    return plate, well, site


def read_image_table(path: Path, wanted: Sequence[str], raw: Path) -> tuple[tuple[str, ...], list[SourceField]]:
    """The channels (``wanted``, or the table's order) and the fields of a LoadData image table,
    in table order; file paths relative to ``raw`` where they lie under it."""
    table = read_delimited(path, "an image table (LoadData CSV: Metadata_Plate, Metadata_Well, Metadata_Site, "
                                 "FileName_<Channel>, PathName_<Channel>)")
    missing = table.missing(*KEYS)
    if missing:
        raise DatasetLayoutError(f"{path}: line 1: column {missing[0]} missing (has {', '.join(table.columns)})")
    channels = choose_channels(table_channels(table), wanted, str(path))
    fields = []
    for n, row in table.rows:
        plate, well, site = _key(table, n, row)
        for c in channels:
            col = _column(table, "FileName", c)
            if col is not None and not row[col]:
                raise DatasetLayoutError(f"{path}: line {n}: column {col}: blank, expected a file name")
        absolute = [_file(table, row, c) for c in channels]
        files = tuple(relative_to(p, raw) for p in absolute)
        frames = _frames(table, n, row, channels, files)
        fields.append(SourceField(plate, well, site, f"{path} line {n}", files, TiffSource(files, frames)))
    return channels, fields
