"""Whole-screen prediction: every field of an LMDB through a trained net, streamed to Parquet.

The records are read in key order, ``chunk`` at a time, preprocessed as the net's TEST Data layer
would (:mod:`mcnn.evaluate.predict`), and run once per batch for both the probability blob and
the feature blob (the input of the final InnerProduct). Each finished chunk is written atomically
as ``OUT/.parts/part-00000.parquet``; a run that is killed resumes from the parts it finished,
but only when ``OUT/.parts/manifest.json`` (weights, deploy net, LMDB and index by path, size and
modification time; the class names and the TEST preprocessing; engine, chunk and batch size)
matches the new run; otherwise it starts over. At the end the parts are joined into
``OUT/fields.parquet`` (one row group per part) and ``OUT/predictions.csv`` (the same rows without
the features; docs/formats.md), ``OUT/prediction.json`` records what was done and ``.parts`` is
removed. A later run with the same manifest returns at once.

Memory is bounded by one chunk: records, index rows and features are never all held at once.
Column names and types: :mod:`mcnn.evaluate.profiles`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from google.protobuf import text_format

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.transform import LmdbRecords, Transformer
from mcnn.errors import ConfigError, TableError
from mcnn.evaluate.predict import Backend, deploy_blobs, forward_records, make_backend, model_inputs
from mcnn.evaluate.profiles import FEATURE_PREFIX, PROB_PREFIX, feature_columns, feature_names
from mcnn.fsutil import atomic_write_text, temporary_sibling
from mcnn.tables import RowWriter

PathLike = str | os.PathLike[str]

PARTS = ".parts"
MANIFEST = "manifest.json"
DONE = "prediction.json"
FIELDS = "fields.parquet"
PREDICTIONS = "predictions.csv"
PREDICTED = ("predicted_label", "predicted_class")


@dataclass(frozen=True)
class ScreenPrediction:
    """What :func:`predict_screen` produced: the output files, class names, feature columns, the
    number of fields and parts, and how many parts an earlier interrupted run had already finished
    (``reused_parts``; ``complete`` when the whole result was already there)."""

    out_dir: Path
    fields_parquet: Path
    predictions_csv: Path
    classes: tuple[str, ...]
    feature_columns: tuple[str, ...]
    fields: int
    parts: int
    reused_parts: int = 0
    complete: bool = False


def _stat(path: PathLike | None) -> dict[str, object] | None:
    if path is None:
        return None
    p = Path(path).resolve()
    info = p.stat()
    return {"path": str(p), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def _manifest(deploy: PathLike, weights: PathLike, lmdb: PathLike, index: PathLike | None, classes: Sequence[str],
              records: int, engine: str, chunk: int, batch_size: int,
              transform: pb.TransformationParameter) -> dict[str, object]:
    """What the parts depend on; a run resumes only from parts of an identical manifest."""
    return {"weights": _stat(weights), "deploy": _stat(deploy), "lmdb": _stat(Path(lmdb) / "data.mdb"),
            "index": _stat(index), "classes": list(classes), "records": records, "engine": engine,
            "chunk": chunk, "batch_size": batch_size, "transform": text_format.MessageToString(transform)}


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _index_rows(index: PathLike) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each data row of an index CSV, streamed."""
    with open(index, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for cells in reader:
            yield reader.line_num, cells


def check_index(index: PathLike, records: LmdbRecords) -> list[str]:
    """The header of ``index`` after checking, streaming, that its rows are the LMDB's records in
    key order (``key`` column), one row per record, every row as wide as the header."""
    path = Path(index)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    if not header:
        raise TableError(f"{path}: empty file, expected a CSV header")
    if "key" not in header:
        raise TableError(f"{path}: no column 'key' (the LMDB key of each row)")
    clash = [c for c in header if c in PREDICTED or c.startswith((PROB_PREFIX, FEATURE_PREFIX))]
    if clash:
        raise TableError(f"{path}: column {clash[0]!r} clashes with a prediction column")
    at = header.index("key")
    count = 0
    for i, (line, cells) in enumerate(_index_rows(path)):
        if len(cells) != len(header):
            raise TableError(f"{path}: line {line}: {len(cells)} cells for {len(header)} columns")
        if i >= len(records):
            raise TableError(f"{path}: line {line}: more rows than the {len(records)} records of {records.path}")
        if cells[at] != records.keys[i].decode():
            raise TableError(f"{path}: line {line}: key {cells[at]!r}, but record {i} of {records.path} is "
                             f"{records.keys[i].decode()!r} (the index must list the records in key order)")
        count += 1
    if count != len(records):
        raise TableError(f"{path}: {count} rows for the {len(records)} records of {records.path}")
    return header


def _class_count(deploy: PathLike, prob_blob: str) -> int | None:
    """num_output of the InnerProduct that feeds the Softmax giving ``prob_blob`` (None if not found)."""
    net = cio.read_net(deploy)
    softmax = next((layer for layer in net.layer if layer.type == "Softmax" and prob_blob in layer.top), None)
    if softmax is None:
        return None
    ip = next((layer for layer in net.layer if layer.type == "InnerProduct" and softmax.bottom[0] in layer.top), None)
    return int(ip.inner_product_param.num_output) if ip is not None else None


def _part_table(columns: Sequence[str], rows: Sequence[Sequence[str]], labels: np.ndarray, probs: np.ndarray,
                feats: np.ndarray, classes: Sequence[str], names: Sequence[str]) -> pa.Table:
    """One chunk as a table: index columns (text; ``label`` the Datum's, int64), argmax, probabilities
    (float64), features (float32)."""
    arrays: dict[str, pa.Array] = {}
    for j, c in enumerate(columns):
        arrays[c] = pa.array(labels, pa.int64()) if c == "label" else pa.array([r[j] for r in rows], pa.string())
        if c == "key" and "label" not in columns:
            arrays["label"] = pa.array(labels, pa.int64())
    guess = probs.argmax(axis=1)
    arrays["predicted_label"] = pa.array(guess, pa.int64())
    arrays["predicted_class"] = pa.array([classes[g] for g in guess], pa.string())
    for j, name in enumerate(classes):
        arrays[f"{PROB_PREFIX}{name}"] = pa.array(probs[:, j].astype(np.float64), pa.float64())
    for j, name in enumerate(names):
        arrays[name] = pa.array(feats[:, j], pa.float32())
    return pa.table(arrays)


def _write_part(path: Path, table: pa.Table) -> None:
    """Write one part atomically (temporary name, then rename)."""
    tmp = temporary_sibling(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _part(parts: Path, i: int) -> Path:
    return parts / f"part-{i:05d}.parquet"


def _start_parts(out: Path, manifest: dict[str, object], say: Callable[[str], None]) -> Path:
    """The parts folder, emptied (with any stale outputs) unless its manifest is ``manifest``."""
    parts = out / PARTS
    old = _read_json(parts / MANIFEST)
    if old != manifest:
        if parts.exists():
            changed = [k for k in manifest if old is None or old.get(k) != manifest[k]]
            say(f"{out}: starting over, the earlier partial run differs in {', '.join(changed)}")
            shutil.rmtree(parts)
        for name in (FIELDS, PREDICTIONS, DONE):
            (out / name).unlink(missing_ok=True)
        parts.mkdir(parents=True)
        atomic_write_text(parts / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    for stale in parts.glob(".part-*.tmp-*"):
        stale.unlink()
    return parts


def _assemble(parts: Path, count: int, out: Path) -> tuple[int, list[str]]:
    """Join the parts into fields.parquet and predictions.csv (both atomically); (rows, feature columns)."""
    schema = pq.read_schema(_part(parts, 0))
    features = feature_columns(schema.names)
    csv_columns = [c for c in schema.names if c not in set(features)]
    tmp_fields, tmp_csv = temporary_sibling(out / FIELDS), temporary_sibling(out / PREDICTIONS)
    rows = 0
    try:
        with pq.ParquetWriter(tmp_fields, schema) as writer, \
                open(tmp_csv, "w", newline="", encoding="utf-8") as handle:
            table_rows = RowWriter(handle, csv_columns)
            for i in range(count):
                table = pq.read_table(_part(parts, i), schema=schema)
                writer.write_table(table, row_group_size=max(1, table.num_rows))
                for record in table.select(csv_columns).to_pylist():
                    table_rows.row([record[c] for c in csv_columns])
                rows += table.num_rows
        os.replace(tmp_csv, out / PREDICTIONS)
        os.replace(tmp_fields, out / FIELDS)
    finally:
        tmp_fields.unlink(missing_ok=True)
        tmp_csv.unlink(missing_ok=True)
    return rows, features


def _rows_of(index: PathLike | None, records: LmdbRecords, classes: Sequence[str]
             ) -> tuple[list[str], Iterator[list[str]]]:
    """(columns, row iterator) of the index, or key/label/class_name rows from the LMDB without one."""
    if index is not None:
        header = check_index(index, records)
        return header, (cells for _, cells in _index_rows(index))

    def synthesized() -> Iterator[list[str]]:
        for i, key in enumerate(records.keys):
            label = records.datum(i).label
            yield [key.decode(), str(label), classes[label] if 0 <= label < len(classes) else ""]
    return ["key", "label", "class_name"], synthesized()


@dataclass
class _Job:
    """One whole-screen prediction: the net, its inputs and the parts folder."""

    deploy: PathLike
    weights: PathLike
    engine: str
    gpu: int | None
    batch_size: int
    chunk: int
    records: LmdbRecords
    transformer: Transformer
    classes: list[str]
    blobs: tuple[str, str]       # probability blob, feature blob
    columns: list[str]           # index columns
    parts: Path

    def run(self, rows: Iterator[list[str]], progress: bool) -> int:
        """Compute every part not yet on disk (index ``rows`` streamed alongside); returns the parts reused."""
        count = -(-len(self.records) // self.chunk)
        reused = {i for i in range(count) if _part(self.parts, i).is_file()}
        backend: Backend | None = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(self.records), unit="field", desc="predict screen", file=sys.stderr, leave=False)
        try:
            for i in range(count):
                start, stop = i * self.chunk, min((i + 1) * self.chunk, len(self.records))
                cells = [next(rows) for _ in range(start, stop)]
                if i in reused:
                    if bar is not None:
                        bar.update(stop - start)
                    continue
                if backend is None:
                    backend = make_backend(self.deploy, self.weights, self.engine, self.gpu)
                    backend.expect(len(self.records), self.batch_size)  # the whole screen: a resume runs alike
                _write_part(_part(self.parts, i), self.part(backend, i, start, stop, cells,
                                                           bar.update if bar is not None else None))
        finally:
            if bar is not None:
                bar.close()
        return len(reused)

    def part(self, backend: Backend, i: int, start: int, stop: int, cells: Sequence[Sequence[str]],
             progress: Callable[[int], None] | None) -> pa.Table:
        """Part ``i``: records ``start`` to ``stop`` through the net, joined with their index ``cells``."""
        prob_blob, feature_blob = self.blobs
        # one generator per part, so that a resumed run draws what an uninterrupted one would
        rng = np.random.default_rng([0, i])
        labels, out = forward_records(backend, self.records, self.transformer, self.blobs, start, stop,
                                      self.batch_size, rng, progress)
        probs, feats = out[prob_blob], out[feature_blob]
        if probs.shape[1] != len(self.classes):
            raise ConfigError(f"{self.deploy}: the net gives {probs.shape[1]} probabilities, the labels name "
                              f"{len(self.classes)} classes")
        return _part_table(self.columns, cells, labels, probs, feats, self.classes,
                           feature_names(feature_blob, feats.shape[1]))


def predict_screen(deploy: PathLike, weights: PathLike, lmdb: PathLike, index: PathLike | None, out_dir: PathLike, *,
                   labels: PathLike | None = None, train_val: PathLike | None = None, engine: str = "torch",
                   gpu: int | None = None, batch_size: int = 16, chunk: int = 512,
                   progress: bool = False) -> ScreenPrediction:
    """Predict every record of ``lmdb`` with the deploy net and write fields.parquet and predictions.csv.

    ``index`` is the LMDB's index CSV (rows in key order, as data_prep writes it; None: key, label
    and class name only); ``labels``/``train_val`` default as in :func:`mcnn.evaluate.predict.model_inputs`
    (the model card beside ``weights`` first, when there is one).
    ``chunk`` records go into each resumable part (see the module docstring); ``progress`` shows
    a bar on stderr. Every input is checked before the net runs.
    """
    if batch_size < 1 or chunk < 1:
        raise ConfigError(f"batch size and chunk must be at least 1, got {batch_size} and {chunk}")
    if engine not in ("torch", "caffe"):
        raise ConfigError(f"--engine must be torch or caffe, got {engine!r}")
    transform, classes = model_inputs(deploy, lmdb, labels, train_val, weights)
    _, prob_blob, feature_blob = deploy_blobs(deploy)
    expected = _class_count(deploy, prob_blob)
    if expected is not None and expected != len(classes):
        raise ConfigError(f"{deploy}: the net gives {expected} probabilities, the labels name {len(classes)} classes")
    records = LmdbRecords(lmdb)
    columns, rows = _rows_of(index, records, classes)
    out = Path(out_dir)
    manifest = _manifest(deploy, weights, lmdb, index, classes, len(records), engine, chunk, batch_size, transform)
    count = -(-len(records) // chunk)
    done = _read_json(out / DONE)
    if done is not None and done.get("manifest") == manifest and (out / FIELDS).is_file() \
            and (out / PREDICTIONS).is_file():
        return ScreenPrediction(out, out / FIELDS, out / PREDICTIONS, tuple(classes),
                                tuple(done["feature_columns"]), len(records), count, count, True)  # type: ignore[arg-type]
    say: Callable[[str], None] = (lambda text: print(text, file=sys.stderr)) if progress else (lambda text: None)
    parts = _start_parts(out, manifest, say)
    transformer = Transformer(transform, pb.TEST, records.shape, layer="data", base_dir=Path(lmdb).parent)
    job = _Job(deploy, weights, engine, gpu, batch_size, chunk, records, transformer, classes,
               (prob_blob, feature_blob), columns, parts)
    reused = job.run(rows, progress)
    fields, features = _assemble(parts, count, out)
    atomic_write_text(out / DONE, json.dumps({"manifest": manifest, "fields": fields, "parts": count,
                                              "feature_columns": features}, indent=2) + "\n")
    shutil.rmtree(parts)
    return ScreenPrediction(out, out / FIELDS, out / PREDICTIONS, tuple(classes), tuple(features), fields, count,
                            reused)
