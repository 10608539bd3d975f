"""The build loop: each split's shuffled training and test LMDBs, then the unlabelled LMDBs.

With more than one pending split, or with augmentation, every labelled field is decoded once
into the field cache (:mod:`mcnn.prep.cache`) and the splits copy from there; a single split
decodes straight into its LMDBs. Each side is written in an order drawn from
``rng_for(seed, "order", split, side)``, so a rebuilt side equals the one an uninterrupted run
writes. Complete units are skipped (:mod:`mcnn.prep.resume`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcnn.datasets.base import Dataset, Field, Labelled, Plan, Problems, rng_for
from mcnn.errors import BadInputError
from mcnn.fsutil import atomic_write_text
from mcnn.prep import augment as aug
from mcnn.prep import cache
from mcnn.prep.decode import WorkerPool
from mcnn.prep.options import PrepOptions, PrepResult, Progress
from mcnn.prep.platestats import StatsByPlate
from mcnn.prep.prepared import SPLITS, SplitPaths
from mcnn.prep.resume import split_complete, unit_complete
from mcnn.prep.splits import Split
from mcnn.prep.write import Record, UnitWriter
from mcnn.tables import read_table


@dataclass
class Builder:
    """Writes the LMDB units of one run into ``out``.

    ``stats`` are the per-plate statistics (None unless ``--norm-scope plate-dmso``),
    ``transforms`` the D4 transforms of the training sets, ``record_bytes`` the size of one
    record (sizes the LMDB transactions). Built and skipped units go to ``result``; fields
    found bad on the way are remembered in ``bad_fields`` and left out of later units.
    """

    ds: Dataset
    plan: Plan
    out: Path
    opts: PrepOptions
    pool: WorkerPool
    stats: StatsByPlate | None
    transforms: tuple[str, ...]
    record_bytes: int
    problems: Problems
    progress: Progress
    result: PrepResult
    bad_fields: set[str] = field(default_factory=set)

    def _args(self, f: Field) -> tuple[Any, ...]:
        return (self.stats[f.plate],) if self.stats is not None else ()

    def _writer(self, lmdb: Path, index: Path, listfile: Path | None = None, mean: Path | None = None) -> UnitWriter:
        return UnitWriter(lmdb, index, self.plan.classes, self.plan.columns, self.ds.channels, self.record_bytes,
                          listfile=listfile, mean=mean)

    def build_splits(self, splits: list[Split]) -> None:
        """Write every split of ``splits`` that is not complete yet, each under ``OUT/splits/<name>/``."""
        pending = [s for s in splits if not split_complete(self.out, s)]
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
            self._fill_cache(names, by_name)
            held = cache.load(self.out)
            assert held is not None
        else:
            wanted = set(names)
            for name, path, problem in held[1]:
                if name in wanted:
                    self.problems.add(BadInputError(path, problem))
        self.bad_fields |= {b[0] for b in held[1]}
        return cache.CacheReader(self.out)

    def _fill_cache(self, names: list[str], by_name: dict[str, Field]) -> None:
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
            if unit_complete(lmdb, index, listfile, mean):
                self.result.skipped.append(f"{s.name}/{side}")
                sides[side] = read_side(index)
                continue
            with self._writer(lmdb, index, listfile, mean) as writer, self.progress.bar(len(order), desc) as bar:
                for rec in self._records(order, reader):
                    writer.add(rec)
                    bar.update(1)
            self.result.built.append(f"{s.name}/{side}")
            sides[side] = read_side(index)
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
        """Write the unlabelled LMDB ``OUT/<name>_lmdb`` (``dose``, ``screen``) of ``fields``, label -1."""
        lmdb, index = self.out / f"{name}_lmdb", self.out / f"{name}_index.csv"
        if unit_complete(lmdb, index, None, None):
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


def read_side(index: Path) -> dict[str, Any]:
    """Counts and keys of one written LMDB, read back from its index CSV (the ``train``/``test``
    entries of ``split.json``: images, distinct fields, images per class, field names, keys)."""
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
