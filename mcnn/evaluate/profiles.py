"""Per-field and per-well profiles as Parquet tables, in the shape pycytominer reads.

Columns of ``fields.parquet`` (one row per field, written by :mod:`mcnn.evaluate.screen`) and of
``wells.parquet`` (one row per well, :func:`well_profiles`):

- ``Metadata_*``: the index CSV's metadata, as strings (pycytominer's metadata convention,
  ``infer_cp_features(metadata=True)``). ``wells.parquet`` keeps those that are constant within
  every well and adds ``Metadata_Fields`` (int64), the number of fields of the well.
- ``prob_<class>``: the softmax output (the paper's Eq. 1), float64, as in a predictions CSV.
- ``MCNN_<blob>_<i>``: the feature vector, the input of the net's final InnerProduct (the paper's
  penultimate layer; ``fc1`` in the M-CNN), element ``i`` zero-padded to 4 or more digits
  (``MCNN_fc1_0000``); float32 per field, float64 per well.
- ``fields.parquet`` also carries the other index columns (``key``, ``label``, ``class_name``,
  ``Image_FileName_*``) and ``predicted_label``/``predicted_class``.

pycytominer infers feature columns only from compartment prefixes (``Cells``, ``Nuclei``,
``Cytoplasm``; ``Image`` only with ``image_features=True``: pycytominer.cyto_utils.infer_cp_features),
none of which names a CNN embedding of a whole field, so name the features explicitly::

    pycytominer.aggregate(fields, strata=["Metadata_Plate", "Metadata_Well"],
                          features=feature_columns(fields.columns) + probability_columns(fields.columns))
    pycytominer.normalize(wells, features=feature_columns(wells.columns),
                          samples="Metadata_Compound == 'DMSO'")

A well's profile is the element-wise median over its fields, a treatment's the median over its
wells (the paper's aggregation, §2.4; :func:`mcnn.evaluate.aggregate.aggregate_treatments`).
Wells are computed one plate at a time (a pyarrow dataset filter on ``Metadata_Plate``), so
memory is bounded by the largest plate, not the screen.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from mcnn.errors import TableError
from mcnn.evaluate.aggregate import COMPOUND, CONCENTRATION, PLATE, WELL, aggregate_treatments
from mcnn.fsutil import temporary_sibling
from mcnn.tables import RowWriter, write_table

PathLike = str | os.PathLike[str]

METADATA_PREFIX = "Metadata_"
FEATURE_PREFIX = "MCNN_"
PROB_PREFIX = "prob_"
FIELDS_COUNT = "Metadata_Fields"


def feature_names(blob: str, size: int) -> list[str]:
    """Column names ``MCNN_<blob>_<i>`` of a ``size``-element feature blob (non-alphanumerics of the
    blob name, e.g. GoogLeNet's ``pool5/7x7_s1``, become ``_``)."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", blob).strip("_") or "features"
    width = max(4, len(str(size - 1)))
    return [f"{FEATURE_PREFIX}{stem}_{i:0{width}d}" for i in range(size)]


def feature_columns(columns: Iterable[str]) -> list[str]:
    """The feature columns (``MCNN_*``) of a profile table, in table order."""
    return [c for c in columns if c.startswith(FEATURE_PREFIX)]


def probability_columns(columns: Iterable[str]) -> list[str]:
    """The probability columns (``prob_<class>``) of a profile table, in table (label) order."""
    return [c for c in columns if c.startswith(PROB_PREFIX) and len(c) > len(PROB_PREFIX)]


def metadata_columns(columns: Iterable[str]) -> list[str]:
    """The metadata columns (``Metadata_*``) of a profile table, in table order."""
    return [c for c in columns if c.startswith(METADATA_PREFIX)]


def group_medians(keys: Sequence[Sequence[str]] | np.ndarray, values: np.ndarray
                  ) -> tuple[list[tuple[str, ...]], np.ndarray, np.ndarray, np.ndarray]:
    """Element-wise median of ``values`` (rows x columns) over the rows sharing a key.

    ``keys`` has one tuple of strings per row. Returns the sorted unique keys, their medians
    (groups x columns, float64), the row count of each group and the first row of each group.
    """
    labels = np.array(["\x1f".join(map(str, k)) for k in keys], dtype=object)
    if len(labels) != len(values):
        raise ValueError(f"{len(labels)} keys for {len(values)} rows")
    _, first, inverse, counts = np.unique(labels, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    groups = np.split(np.asarray(values, dtype=np.float64)[order], np.cumsum(counts)[:-1])
    width = values.shape[1] if values.ndim == 2 else 0
    medians = np.stack([np.median(g, axis=0) for g in groups]) if groups else np.empty((0, width))
    unique = [tuple(map(str, keys[i])) for i in first]
    return unique, medians, counts, first


@dataclass(frozen=True)
class WellProfiles:
    """What :func:`well_profiles` wrote: paths (``csv``/``treatments`` None when not written),
    counts and the columns of ``wells.parquet``."""

    path: Path
    csv: Path | None
    treatments: Path | None
    plates: int
    wells: int
    fields: int
    metadata: tuple[str, ...]
    profile: tuple[str, ...]


def _plates(dataset: pads.Dataset) -> list[str | None]:
    """The distinct ``Metadata_Plate`` values, sorted ([None]: no plate column, one group)."""
    if PLATE not in dataset.schema.names:
        return [None]
    seen: set[str] = set()
    for batch in dataset.to_batches(columns=[PLATE]):
        seen.update(v for v in pc.unique(batch.column(0)).to_pylist() if v is not None)
    return sorted(seen)


def _plate_table(dataset: pads.Dataset, plate: str | None, columns: Sequence[str]) -> pa.Table:
    if plate is None:
        return dataset.to_table(columns=list(columns))
    return dataset.to_table(columns=list(columns), filter=pc.field(PLATE) == plate)


def _constant_metadata(dataset: pads.Dataset, plates: Sequence[str | None], keys: Sequence[str]) -> list[str]:
    """The metadata columns (other than ``keys``) with one value in every well, checked plate by plate."""
    candidates = [c for c in metadata_columns(dataset.schema.names) if c not in keys and c != FIELDS_COUNT]
    constant = set(candidates)
    for plate in plates:
        if not constant:
            break
        names = sorted(constant)
        grouped = _plate_table(dataset, plate, [*keys, *names]).group_by(list(keys)).aggregate(
            [(c, "count_distinct") for c in names])
        for c in names:
            if grouped.num_rows and pc.max(grouped[f"{c}_count_distinct"]).as_py() > 1:
                constant.discard(c)
    return [c for c in candidates if c in constant]


def _plate_wells(table: pa.Table, keys: Sequence[str], metadata: Sequence[str], profile: Sequence[str]) -> pa.Table:
    """One plate's well table: keys, constant metadata, field count, profile medians (float64)."""
    key_values = np.column_stack([table[k].to_numpy(zero_copy_only=False).astype(object) for k in keys])
    values = np.column_stack([table[c].to_numpy(zero_copy_only=False) for c in profile])
    unique, medians, counts, first = group_medians(key_values, values)
    arrays: dict[str, pa.Array] = {k: pa.array([u[i] for u in unique], pa.string()) for i, k in enumerate(keys)}
    for c in metadata:
        arrays[c] = pa.array(table[c].take(pa.array(first)).to_pylist(), pa.string())
    arrays[FIELDS_COUNT] = pa.array(counts, pa.int64())
    for j, c in enumerate(profile):
        arrays[c] = pa.array(medians[:, j], pa.float64())
    return pa.table(arrays)


def well_profiles(fields_parquet: PathLike, out_path: PathLike, *, write_csv: bool = False,
                  treatments: bool = True) -> WellProfiles:
    """Per-well median profiles of a ``fields.parquet``: ``out_path`` (``wells.parquet``), optionally
    ``wells.csv`` beside it, and ``treatments.csv`` beside it when the wells carry
    ``Metadata_Compound`` and ``Metadata_Concentration`` (see :func:`write_treatments`).

    Wells are (``Metadata_Plate``, ``Metadata_Well``), or ``Metadata_Well`` alone without a plate
    column; they come out sorted by plate, then well, one Parquet row group per plate.
    """
    source = Path(fields_parquet)
    if not source.is_file():
        raise TableError(f"{source}: no such file")
    dataset = pads.dataset(source, format="parquet")
    names = dataset.schema.names
    if WELL not in names:
        raise TableError(f"{source}: no column {WELL!r} (needed for per-well profiles)")
    profile = probability_columns(names) + feature_columns(names)
    if not profile:
        raise TableError(f"{source}: no profile columns (expected {PROB_PREFIX}<class> or {FEATURE_PREFIX}*)")
    keys = [c for c in (PLATE, WELL) if c in names]
    plates = _plates(dataset)
    metadata = _constant_metadata(dataset, plates, keys)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    csv_path = out.with_suffix(".csv") if write_csv else None
    tmp, tmp_csv = temporary_sibling(out), temporary_sibling(csv_path) if csv_path else None
    wells = fields = 0
    try:
        with ExitStack() as stack:
            writer = stack.enter_context(pq.ParquetWriter(tmp, _wells_schema(keys, metadata, profile)))
            rows = None
            if tmp_csv is not None:
                handle = stack.enter_context(open(tmp_csv, "w", newline="", encoding="utf-8"))
                rows = RowWriter(handle, [*keys, *metadata, FIELDS_COUNT, *profile])
            for plate in plates:
                table = _plate_wells(_plate_table(dataset, plate, [*keys, *metadata, *profile]), keys, metadata,
                                     profile)
                writer.write_table(table, row_group_size=max(1, table.num_rows))
                wells += table.num_rows
                fields += int(pc.sum(table[FIELDS_COUNT]).as_py() or 0)
                if rows is not None:
                    for row in table.to_pylist():
                        rows.row(list(row.values()))
        if wells == 0:
            raise TableError(f"{source}: no fields")
        if tmp_csv is not None and csv_path is not None:
            os.replace(tmp_csv, csv_path)
        os.replace(tmp, out)
    finally:
        for t in (tmp, tmp_csv):
            if t is not None and t.exists():
                t.unlink()
    treatments_path = write_treatments(out, out.parent / "treatments.csv") if treatments else None
    return WellProfiles(path=out, csv=csv_path, treatments=treatments_path, plates=len(plates), wells=wells,
                        fields=fields, metadata=tuple(metadata), profile=tuple(profile))


def parquet_to_csv(parquet: PathLike, out_path: PathLike) -> Path:
    """``out_path``: the CSV of a profiles Parquet file (``fields.parquet``), streamed one row group at
    a time (memory bounded by a row group), written under a temporary name and renamed."""
    source = pq.ParquetFile(parquet)
    out = Path(out_path)
    tmp = temporary_sibling(out)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            rows = RowWriter(handle, source.schema_arrow.names)
            for i in range(source.num_row_groups):
                for row in source.read_row_group(i).to_pylist():
                    rows.row(list(row.values()))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _wells_schema(keys: Sequence[str], metadata: Sequence[str], profile: Sequence[str]) -> pa.Schema:
    return pa.schema([*((c, pa.string()) for c in (*keys, *metadata)), (FIELDS_COUNT, pa.int64()),
                      *((c, pa.float64()) for c in profile)])


def write_treatments(wells_parquet: PathLike, out_path: PathLike) -> Path | None:
    """``treatments.csv`` from a ``wells.parquet``: per (compound, concentration) the median of the
    wells' probability vectors, as tools/predict.py writes it (compound,
    concentration, moa, wells, fields, predicted_class, prob_<class>...).

    Returns None (nothing written) when the wells carry no ``Metadata_Compound`` or
    ``Metadata_Concentration`` column (or no probabilities).
    """
    path = Path(wells_parquet)
    names = pq.read_schema(path).names
    probs = probability_columns(names)
    if COMPOUND not in names or CONCENTRATION not in names or not probs:
        return None
    meta = [c for c in metadata_columns(names) if c != FIELDS_COUNT]
    table = pq.read_table(path, columns=[*meta, FIELDS_COUNT, *probs])
    rows: list[Mapping[str, str]] = [{c: str(r[c]) for c in meta} for r in table.select(meta).to_pylist()]
    vectors = np.column_stack([table[c].to_numpy() for c in probs])
    # Each row is one well, so the per-well median of aggregate_treatments is the row itself.
    result = aggregate_treatments(rows, vectors, str(path))
    field_counts: dict[tuple[str, float], int] = {}
    for row, count in zip(rows, table[FIELDS_COUNT].to_pylist(), strict=True):
        key = (row[COMPOUND], float(row[CONCENTRATION]))
        field_counts[key] = field_counts.get(key, 0) + int(count)
    classes = [c[len(PROB_PREFIX):] for c in probs]
    out = [{"compound": t.compound, "concentration": t.concentration, "moa": t.moa, "wells": t.wells,
            "fields": field_counts[t.key], "predicted_class": classes[int(np.argmax(t.vector))],
            **{c: float(v) for c, v in zip(probs, t.vector, strict=True)}} for t in result]
    return write_table(out_path, out, ["compound", "concentration", "moa", "wells", "fields", "predicted_class",
                                       *probs])
