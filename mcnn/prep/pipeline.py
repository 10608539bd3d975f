"""``prepare``: a raw download in, the paper's train/test LMDBs out (layout in docs/formats.md).

Steps: read the layout and apply the dataset's rules (:meth:`mcnn.datasets.base.Dataset.plan`),
probe the first image for bit depth and size, compute the per-plate negative-control statistics
when the intensity mapping needs them (``normalization.json``), draw the splits, decode every
labelled field once into a cache, write each split's shuffled training and test LMDBs with their
index CSVs, list files, mean and ``split.json``, then the unlabelled dose/screen LMDBs, and finally
``labels.txt``, ``dataset.json`` and the links to the first split.

Every output is complete or absent: LMDBs are built under temporary names and renamed; a re-run
into the same ``--out`` with the same options skips complete outputs and rebuilds the rest,
giving the same content as an uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import mcnn
from mcnn.datasets import get_dataset
from mcnn.datasets.base import Dataset, Field, Labelled, Plan, Problems, rng_for
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError
from mcnn.fsutil import atomic_write_text
from mcnn.prep import augment as aug
from mcnn.prep import cache
from mcnn.prep.decode import Decoder, WorkerPool, default_workers, probe
from mcnn.prep.normalize import IntensityMapping, build_mapping, center_scale
from mcnn.prep.prepared import DATASET_JSON, SPLITS, SplitPaths
from mcnn.prep.splits import Split, cv_splits, full_split, loco_splits
from mcnn.prep.write import Record, UnitWriter, remove_stale
from mcnn.tables import read_table

STATE = ".prepare.json"
NORMALIZATION = "normalization.json"
LABELS = "labels.txt"
BAD_REPORT = "bad_inputs.csv"
LINKS = ("train_lmdb", "test_lmdb", "mean.binaryproto")


@dataclass
class PrepOptions:
    """Options of :func:`prepare` (the command-line flags of ``data_prep/prepare.py``).

    ``None`` intensity fields keep the dataset's default; ``dataset_options`` are the
    ``--option NAME=VALUE`` settings of the dataset module.
    """

    protocol: str | None = None
    repeats: int = 50
    seed: int = 0
    augment: str = "none"
    test_fraction: float = 0.1
    only: tuple[str, ...] = ()
    scope: str | None = None
    stat: str | None = None
    transform: str | None = None
    percentiles: tuple[float, float] | None = None
    range: tuple[float, float] | None = None
    resize: tuple[int, int] | None = None
    dataset_options: dict[str, str] = field(default_factory=dict)
    workers: int = field(default_factory=default_workers)
    quiet: bool = False
    skip_bad: bool = False
    keep_cache: bool = False
    force: bool = False


@dataclass
class PrepResult:
    """What a :func:`prepare` run did: split names on disk, units built and skipped, bad inputs."""

    out: Path
    splits: list[str]
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)


class _Progress:
    """tqdm bars on stderr, only when stderr is a terminal and not ``--quiet``."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    def bar(self, total: int, desc: str) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not self.enabled,
                    dynamic_ncols=True, smoothing=0.1)

    def log(self, message: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)


def prepare(dataset: str, raw: str | os.PathLike[str], out: str | os.PathLike[str],
            options: PrepOptions | None = None) -> PrepResult:
    """Convert the raw download of ``dataset`` at ``raw`` into the prepared layout at ``out``."""
    opts = options or PrepOptions()
    ds = get_dataset(dataset, opts.dataset_options)
    protocol = opts.protocol or ds.default_protocol
    ds.check_protocol(protocol)
    if opts.workers < 1:
        raise ConfigError(f"--workers {opts.workers}: need at least 1")
    if opts.resize is not None and min(opts.resize) < 1:
        raise ConfigError(f"--resize {opts.resize[0]},{opts.resize[1]}: need positive sizes")
    mapping = build_mapping(ds.intensity_defaults, scope=opts.scope, stat=opts.stat, transform=opts.transform,
                            percentiles=opts.percentiles, range=opts.range)
    raw_dir = Path(raw).resolve()
    if not raw_dir.is_dir():
        raise DatasetLayoutError(f"{raw_dir}: raw folder missing ({ds.download_hint})")
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    state = _state(ds, protocol, mapping, opts)
    _check_state(out_dir, state, opts.force)
    _remove_temporaries(out_dir)
    progress = _Progress(opts.quiet)
    problems = Problems(opts.skip_bad)
    progress.log(f"{ds.name}: reading {raw_dir}")
    plan = ds.plan(raw_dir, protocol, problems)
    if not plan.labelled:
        raise DatasetLayoutError(f"{raw_dir}: no labelled {ds.name} images found ({ds.download_hint})")
    before = len(problems.items)
    first, dtype, shape = probe(ds, raw_dir, plan.all_fields(), problems)
    if len(problems.items) > before:
        plan = _drop(plan, _fields_before(plan, first))
    target = opts.resize or shape
    transforms = aug.transforms(opts.augment, *target)
    atomic_write_text(out_dir / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
    decoder = Decoder(ds, raw_dir, mapping, dtype, None if ds.variable_size else shape, target)
    record_bytes = len(ds.channels) * target[0] * target[1] + 64
    result = PrepResult(out_dir, [])
    with WorkerPool(decoder, opts.workers) as pool:
        stats: dict[str, list[tuple[float, float]]] | None = None
        if mapping.scope == "plate-dmso":
            stats, dropped = _plate_stats(out_dir, ds, plan, pool, mapping, dtype, problems, progress)
            if dropped:
                plan = _drop(plan, dropped)
        splits = _make_splits(plan, protocol, opts)
        selected = _select(splits, opts.only)
        ctx = _Context(ds, plan, out_dir, opts, pool, stats, transforms, record_bytes, problems, progress, result)
        ctx.build_splits(selected)
        for name, fields in plan.unlabelled.items():
            ctx.build_unlabelled(name, fields)
    present = [s for s in splits if (out_dir / SPLITS / s.name / "split.json").is_file()]
    result.splits = [s.name for s in present]
    result.bad = list(dict.fromkeys(problems.items))
    _finish(out_dir, ds, protocol, plan, mapping, dtype, shape, target, opts, present, transforms, result)
    if not opts.keep_cache:
        cache.remove(out_dir)
    return result


# ---------------------------------------------------------------------------
# Options state
# ---------------------------------------------------------------------------

def _state(ds: Dataset, protocol: str, mapping: IntensityMapping, opts: PrepOptions) -> dict[str, Any]:
    """The options that decide the content of the outputs (a re-run must use the same).

    ``--skip-bad`` is not among them: an output completed without it holds no bad input, so it is
    the same with it (a run stops at the first bad input before writing anything it affects).
    """
    return {"dataset": ds.name, "protocol": protocol, "seed": opts.seed, "augment": opts.augment,
            "test_fraction": opts.test_fraction, "intensity": mapping.describe("uint16"),
            "resize": list(opts.resize) if opts.resize else None, "options": dict(ds.opts)}


def _check_state(out: Path, state: dict[str, Any], force: bool) -> None:
    """Stop if ``out`` holds outputs of other options (``--force``: remove them instead); the
    state is written once the raw folder has been read."""
    path = out / STATE
    if force:
        _clean(out)
    elif path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old != state:
            changed = [k for k in state if old.get(k) != state[k]]
            key = changed[0] if changed else "options"
            raise ConfigError(f"{out}: prepared earlier with other options ({key}: {old.get(key)!r} -> "
                              f"{state.get(key)!r}); use another --out or add --force")


def _clean(out: Path) -> None:
    """Remove everything a previous preparation wrote into ``out`` (only our own names)."""
    for name in (SPLITS, cache.CACHE):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("dose", "screen"):
        for p in (out / f"{name}_lmdb", out / f"{name}_index.csv"):
            remove_stale(p)
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    for name in (STATE, NORMALIZATION, LABELS, BAD_REPORT, DATASET_JSON, *LINKS):
        p = out / name
        if p.is_symlink() or p.is_file():
            p.unlink()


def _remove_temporaries(out: Path) -> None:
    """Temporary files a killed run left (``.<name>.tmp-<pid>``, ``.<link>.link-<pid>``)."""
    for folder in (out, *(out / SPLITS).glob("*")):
        if folder.is_dir():
            for p in folder.glob(".*"):
                if (".tmp-" in p.name or ".link-" in p.name) and (p.is_file() or p.is_symlink()):
                    p.unlink()


# ---------------------------------------------------------------------------
# Plan edits
# ---------------------------------------------------------------------------

def _fields_before(plan: Plan, first: Field) -> set[str]:
    names = set()
    for f in plan.all_fields():
        if f is first:
            break
        names.add(f.name)
    return names


def _drop(plan: Plan, names: set[str]) -> Plan:
    """``plan`` without the fields called ``names``."""
    def keep(items: list[Labelled]) -> list[Labelled]:
        return [x for x in items if x.field.name not in names]

    return replace(plan, labelled=keep(plan.labelled), full_test=keep(plan.full_test),
                   unlabelled={k: [f for f in v if f.name not in names] for k, v in plan.unlabelled.items()},
                   controls=[f for f in plan.controls if f.name not in names])


def _make_splits(plan: Plan, protocol: str, opts: PrepOptions) -> list[Split]:
    if protocol == "cv":
        return cv_splits(plan.labelled, opts.repeats, opts.seed, opts.test_fraction)
    if protocol == "loco":
        return loco_splits(plan.labelled)
    return [full_split(plan.labelled, plan.full_test)]


def _select(splits: list[Split], only: Sequence[str]) -> list[Split]:
    if not only:
        return splits
    names = {s.name for s in splits}
    unknown = [n for n in only if n not in names]
    if unknown:
        shown = ", ".join(s.name for s in splits[:8]) + (", ..." if len(splits) > 8 else "")
        raise ConfigError(f"--only {unknown[0]}: no such split (splits: {shown})")
    return [s for s in splits if s.name in set(only)]


# ---------------------------------------------------------------------------
# Per-plate statistics
# ---------------------------------------------------------------------------

def _plate_stats(out: Path, ds: Dataset, plan: Plan, pool: WorkerPool, mapping: IntensityMapping, dtype: str,
                 problems: Problems, progress: _Progress) -> tuple[dict[str, list[tuple[float, float]]], set[str]]:
    """(center, scale) per plate and channel from the plate's negative controls, and the names of
    the fields of plates that have none (left out with ``--skip-bad``, an error otherwise)."""
    fields = plan.all_fields()
    plates = sorted({f.plate for f in fields})
    description = mapping.describe(dtype)
    path = out / NORMALIZATION
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("intensity") == description and set(plates) <= set(saved.get("plates", {})):
            stats = {p: [(c["center"], c["scale"]) for c in saved["plates"][p]["channels"].values()] for p in plates}
            return stats, set()
    controls = sorted((f for f in plan.controls if f.plate in set(plates)), key=lambda f: (f.plate, f.name))
    stats: dict[str, list[tuple[float, float]]] = {}
    saved_plates: dict[str, Any] = {}
    current: str | None = None
    acc: list[np.ndarray] | None = None
    count = 0

    def close_plate() -> None:
        if current is not None and acc is not None and count:
            values = [center_scale(h, mapping) for h in acc]
            stats[current] = values
            saved_plates[current] = {"images": count, "channels": {
                ch: {"center": c, "scale": s} for ch, (c, s) in zip(ds.channels, values, strict=True)}}

    with progress.bar(len(controls), f"{ds.name} control statistics") as bar:
        for f, res in pool.map("histograms", ((f, ()) for f in controls)):
            bar.update(1)
            if isinstance(res, BadInputError):
                problems.add(res)
                continue
            if f.plate != current:
                close_plate()
                current, acc, count = f.plate, [h.copy() for h in res], 0
            else:
                assert acc is not None
                for a, h in zip(acc, res, strict=True):
                    a += h
            count += 1
        close_plate()
    dropped: set[str] = set()
    listed = {f.plate for f in plan.controls}
    for p in plates:
        if p not in stats:
            n = sum(1 for f in fields if f.plate == p)
            what = "no readable DMSO (negative-control) image" if p in listed else \
                "no DMSO (negative-control) wells in the metadata"
            problems.bad(f"plate {p}", f"{what}; per-plate normalisation (--norm-scope plate-dmso) needs them "
                         f"(use --norm-scope image, or --skip-bad to leave out its {n} fields)")
            dropped |= {f.name for f in fields if f.plate == p}
    atomic_write_text(path, json.dumps({"intensity": description, "plates": saved_plates}, indent=1) + "\n")
    return stats, dropped


# ---------------------------------------------------------------------------
# Building LMDBs
# ---------------------------------------------------------------------------

@dataclass
class _Context:
    ds: Dataset
    plan: Plan
    out: Path
    opts: PrepOptions
    pool: WorkerPool
    stats: dict[str, list[tuple[float, float]]] | None
    transforms: tuple[str, ...]
    record_bytes: int
    problems: Problems
    progress: _Progress
    result: PrepResult
    bad_fields: set[str] = field(default_factory=set)

    def _args(self, f: Field) -> tuple[Any, ...]:
        return (self.stats[f.plate],) if self.stats is not None else ()

    def _writer(self, lmdb: Path, index: Path, listfile: Path | None = None, mean: Path | None = None) -> UnitWriter:
        return UnitWriter(lmdb, index, self.plan.classes, self.plan.columns, self.ds.channels, self.record_bytes,
                          listfile=listfile, mean=mean)

    def build_splits(self, splits: list[Split]) -> None:
        pending = [s for s in splits if not _split_complete(self.out, s)]
        for s in splits:
            if s not in pending:
                self.result.skipped.append(s.name)
        if not pending:
            return
        use_cache = len(pending) > 1 or self.transforms != ("none",)
        reader = None
        if use_cache:
            names = sorted({x.field.name for s in pending for x in (*s.train, *s.test)})
            reader = self._ensure_cache(names, pending)
        try:
            for s in pending:
                self._build_split(s, reader)
        finally:
            if reader is not None:
                reader.close()

    def _ensure_cache(self, names: list[str], pending: list[Split]) -> cache.CacheReader:
        held = cache.load(self.out)
        if held is None or cache.missing(names, held[0], held[1]):
            by_name = {x.field.name: x.field for s in pending for x in (*s.train, *s.test)}
            writer = cache.CacheWriter(self.out, self.record_bytes)
            try:
                with self.progress.bar(len(names), f"{self.ds.name} decoding") as bar:
                    tasks = ((by_name[n], self._args(by_name[n])) for n in names)
                    for f, res in self.pool.map("image", tasks):
                        bar.update(1)
                        if isinstance(res, BadInputError):
                            self.problems.add(res)
                            writer.bad.append((f.name, res.path, res.problem))
                            continue
                        writer.put(f.name, res)
                writer.finish()
            except BaseException:
                writer.abort()
                raise
            held = cache.load(self.out)
            assert held is not None
        else:
            wanted = set(names)
            for name, path, problem in held[1]:
                if name in wanted:
                    self.problems.add(BadInputError(path, problem))
        self.bad_fields |= {b[0] for b in held[1]}
        return cache.CacheReader(self.out)

    def _build_split(self, s: Split, reader: cache.CacheReader | None) -> None:
        paths = SplitPaths.of(self.out / SPLITS / s.name)
        paths.root.mkdir(parents=True, exist_ok=True)
        train = [x for x in s.train if x.field.name not in self.bad_fields]
        test = [x for x in s.test if x.field.name not in self.bad_fields]
        sides = {}
        for side, items, transforms in (("train", train, self.transforms), ("test", test, ("none",))):
            lmdb = paths.train_lmdb if side == "train" else paths.test_lmdb
            index = paths.train_index if side == "train" else paths.test_index
            listfile = paths.train_list if side == "train" else paths.test_list
            mean = paths.mean if side == "train" else None
            order = [(x, t) for x in items for t in transforms]
            perm = rng_for(self.opts.seed, "order", s.name, side).permutation(len(order))
            order = [order[i] for i in perm]
            desc = f"{self.ds.name} {s.name} {side}"
            if _unit_complete(lmdb, index, listfile, mean):
                self.result.skipped.append(f"{s.name}/{side}")
                sides[side] = _read_side(index)
                continue
            with self._writer(lmdb, index, listfile, mean) as writer, self.progress.bar(len(order), desc) as bar:
                for rec in self._records(order, reader):
                    writer.add(rec)
                    bar.update(1)
            self.result.built.append(f"{s.name}/{side}")
            sides[side] = _read_side(index)
        info = {"split": s.name, "dataset": self.ds.name, "seed": self.opts.seed, "held_out": s.held_out,
                "augment": self.opts.augment, "transforms": list(self.transforms), "classes": list(self.plan.classes)}
        for side in ("train", "test"):
            info[side] = sides[side]
        atomic_write_text(paths.split_json, json.dumps(info, indent=1) + "\n")

    def _records(self, order: list[tuple[Labelled, str]], reader: cache.CacheReader | None) -> Iterator[Record]:
        if reader is not None:
            for x, t in order:
                image = aug.apply(reader.get(x.field.name), t)
                name = x.field.name if t == "none" else f"{x.field.name}/{t}"
                yield Record(name, x.label, x.field, t, image)
            return
        items = {x.field.name: x for x, _ in order}
        for f, res in self.pool.map("image", ((x.field, self._args(x.field)) for x, _ in order)):
            if isinstance(res, BadInputError):
                self.problems.add(res)
                self.bad_fields.add(f.name)
                continue
            yield Record(f.name, items[f.name].label, f, "none", res)

    def build_unlabelled(self, name: str, fields: list[Field]) -> None:
        lmdb, index = self.out / f"{name}_lmdb", self.out / f"{name}_index.csv"
        if _unit_complete(lmdb, index, None, None):
            self.result.skipped.append(name)
            return
        fields = [f for f in fields if f.name not in self.bad_fields]  # already reported
        with self._writer(lmdb, index) as writer, self.progress.bar(len(fields), f"{self.ds.name} {name}") as bar:
            for f, res in self.pool.map("image", ((f, self._args(f)) for f in fields)):
                bar.update(1)
                if isinstance(res, BadInputError):
                    self.problems.add(res)
                    self.bad_fields.add(f.name)
                    continue
                writer.add(Record(f.name, -1, f, "none", res))
        self.result.built.append(name)


def _unit_complete(lmdb: Path, index: Path, listfile: Path | None, mean: Path | None) -> bool:
    needed = [index, *(p for p in (listfile, mean) if p is not None)]
    return (lmdb / "data.mdb").is_file() and all(p.is_file() for p in needed)


def _split_complete(out: Path, s: Split) -> bool:
    paths = SplitPaths.of(out / SPLITS / s.name)
    return paths.split_json.is_file() and all(
        _unit_complete(*args) for args in ((paths.train_lmdb, paths.train_index, paths.train_list, paths.mean),
                                           (paths.test_lmdb, paths.test_index, paths.test_list, None)))


def _read_side(index: Path) -> dict[str, Any]:
    """Counts and keys of one written LMDB, read back from its index CSV."""
    keys: list[str] = []
    per_class: Counter[str] = Counter()
    fields: list[str] = []
    seen: set[str] = set()
    for row in read_table(index).rows:
        keys.append(row["key"])
        per_class[row["class_name"]] += 1
        base = row["key"].split("_", 1)[1]
        if row["Metadata_Augmentation"] != "none":
            base = base.rsplit("/", 1)[0]
        if base not in seen:
            seen.add(base)
            fields.append(base)
    return {"images": len(keys), "fields": len(fields), "per_class": dict(sorted(per_class.items())),
            "field_names": sorted(fields), "keys": keys}


# ---------------------------------------------------------------------------
# Final files
# ---------------------------------------------------------------------------

def _finish(out: Path, ds: Dataset, protocol: str, plan: Plan, mapping: IntensityMapping, dtype: str,
            shape: tuple[int, int], target: tuple[int, int], opts: PrepOptions, present: list[Split],
            transforms: tuple[str, ...], result: PrepResult) -> None:
    atomic_write_text(out / LABELS, "".join(f"{c}\n" for c in plan.classes))
    splits = []
    for s in present:
        info = json.loads((out / SPLITS / s.name / "split.json").read_text(encoding="utf-8"))
        splits.append({"name": s.name, "train": info["train"]["images"], "test": info["test"]["images"],
                       "held_out": s.held_out})
    unlabelled = {}
    for name in plan.unlabelled:
        index = out / f"{name}_index.csv"
        if index.is_file():
            with open(index, newline="", encoding="utf-8") as handle:
                size = sum(1 for _ in handle) - 1
            unlabelled[name] = {"lmdb": f"{name}_lmdb", "index": f"{name}_index.csv", "size": size}
    per_class = Counter(plan.classes[x.label] for x in plan.labelled)
    notes = []
    if ds.real_size and tuple(shape) != tuple(ds.real_size) and not ds.variable_size:
        notes.append(f"images are {shape[0]}x{shape[1]} (HxW); the real download has {ds.real_size[0]}x"
                     f"{ds.real_size[1]} (a look-alike?)")
    if tuple(target) != tuple(shape):
        notes.append(f"fields resized from {shape[0]}x{shape[1]} to {target[0]}x{target[1]} (HxW)")
    if result.bad:
        notes.append(f"{len(result.bad)} bad inputs left out (--skip-bad), listed in {BAD_REPORT}")
    info = {
        "dataset": ds.name, "title": ds.title, "protocol": protocol, "channels": list(ds.channels),
        "height": target[0], "width": target[1], "source_height": shape[0], "source_width": shape[1],
        "source_dtype": dtype, "classes": list(plan.classes), "concentration_unit": plan.concentration_unit,
        "seed": opts.seed, "augment": opts.augment, "transforms": list(transforms),
        "test_fraction": opts.test_fraction if protocol == "cv" else None,
        "repeats": opts.repeats if protocol == "cv" else None,
        "splits": splits, "unlabelled": unlabelled, "intensity": mapping.describe(dtype),
        "options": dict(ds.opts), "choices": [c.as_dict() for c in (*plan.choices, *ds.uncertain)],
        "labelled_per_class": {c: per_class.get(c, 0) for c in plan.classes}, "counts": plan.counts,
        "index_columns": ["key", "label", "class_name", *plan.columns,
                          *(f"Image_FileName_{c}" for c in ds.channels), "Metadata_Augmentation"],
        "notes": notes, "bad_inputs": len(result.bad), "tool": "mcnn data_prep", "tool_version": mcnn.__version__,
    }
    atomic_write_text(out / DATASET_JSON, json.dumps(info, indent=1) + "\n")
    if result.bad:
        lines = ["file,problem\n"] + [_csv_line(p, q) for p, q in result.bad]
        atomic_write_text(out / BAD_REPORT, "".join(lines))
    elif (out / BAD_REPORT).is_file():
        (out / BAD_REPORT).unlink()
    if present:
        _link(out, present[0].name)


def _csv_line(*values: str) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def _link(out: Path, split: str) -> None:
    """``OUT/train_lmdb``, ``test_lmdb``, ``mean.binaryproto`` -> the first split's (relative links)."""
    for name in LINKS:
        link = out / name
        target = Path(SPLITS) / split / name
        if link.exists() and not link.is_symlink():
            continue  # never replace a real file or folder the user put there
        tmp = out / f".{name}.link-{os.getpid()}"
        try:
            tmp.unlink(missing_ok=True)
            os.symlink(target, tmp)
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)


def split_names(dataset: str, raw: str | os.PathLike[str], options: PrepOptions | None = None) -> list[str]:
    """The names of the splits :func:`prepare` would write, in order, reading only the metadata.

    Lets a sharded run (``tools/reproduce.py --shard i/N``) prepare just its own splits.
    """
    opts = options or PrepOptions()
    ds = get_dataset(dataset, opts.dataset_options)
    protocol = opts.protocol or ds.default_protocol
    ds.check_protocol(protocol)
    raw_dir = Path(raw).resolve()
    if not raw_dir.is_dir():
        raise DatasetLayoutError(f"{raw_dir}: raw folder missing ({ds.download_hint})")
    plan = ds.plan(raw_dir, protocol, Problems(True), check_files=False)
    return [s.name for s in _make_splits(plan, protocol, opts)]
