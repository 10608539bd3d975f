"""``prepare``: a raw download in, the paper's train/test LMDBs out (layout in docs/formats.md).

Steps: read the layout and apply the dataset's rules (:meth:`mcnn.datasets.base.Dataset.plan`),
probe the first image for bit depth and size, compute the per-plate negative-control statistics
when the intensity mapping needs them (:mod:`mcnn.prep.platestats`), draw the splits
(:mod:`mcnn.prep.planning`), write each split's shuffled training and test LMDBs with their
index CSVs, list files, mean and ``split.json``, then the unlabelled dose/screen LMDBs
(:mod:`mcnn.prep.build`), and finally ``labels.txt``, ``dataset.json`` and the links to the first
split (:mod:`mcnn.prep.finish`).

Every output is complete or absent: LMDBs are built under temporary names and renamed; a re-run
into the same ``--out`` with the same options skips complete outputs and rebuilds the rest,
giving the same content as an uninterrupted run (:mod:`mcnn.prep.resume`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcnn.datasets import get_dataset
from mcnn.datasets.base import Dataset, Problems
from mcnn.errors import ConfigError, DatasetLayoutError
from mcnn.fsutil import atomic_write_text, folder_lock
from mcnn.prep import augment as aug
from mcnn.prep import cache
from mcnn.prep.build import Builder
from mcnn.prep.decode import Decoder, WorkerPool, probe
from mcnn.prep.finish import Geometry, finish
from mcnn.prep.normalize import IntensityMapping, build_mapping
from mcnn.prep.options import PrepOptions, PrepResult, Progress
from mcnn.prep.planning import drop_fields, fields_before, make_splits, select_splits
from mcnn.prep.platestats import StatsByPlate, plate_stats
from mcnn.prep.prepared import SPLITS, STATE
from mcnn.prep.resume import check_state, options_state, remove_temporaries
from mcnn.prep.splits import check_cv_options

__all__ = ["PrepOptions", "PrepResult", "prepare", "split_names"]


def _dataset(dataset: str, opts: PrepOptions) -> tuple[Dataset, str]:
    """The dataset module with its ``--option`` settings, and the checked protocol."""
    ds = get_dataset(dataset, opts.dataset_options)
    protocol = opts.protocol or ds.default_protocol
    ds.check_protocol(protocol)
    return ds, protocol


def _raw_folder(raw: str | os.PathLike[str], ds: Dataset) -> Path:
    """The absolute raw folder; DatasetLayoutError (with the download hint) if it is missing."""
    raw_dir = Path(raw).resolve()
    if not raw_dir.is_dir():
        raise DatasetLayoutError(f"{raw_dir}: raw folder missing ({ds.download_hint})")
    return raw_dir


def prepare(dataset: str, raw: str | os.PathLike[str], out: str | os.PathLike[str],
            options: PrepOptions | None = None) -> PrepResult:
    """Convert the raw download of ``dataset`` at ``raw`` into the prepared layout at ``out``.

    Raises :class:`~mcnn.errors.ConfigError` for bad options or an ``out`` prepared with other
    options, :class:`~mcnn.errors.DatasetLayoutError` for a raw folder that is not the download,
    :class:`~mcnn.errors.BadInputError` for the first bad input unless ``skip_bad``.
    """
    opts = options or PrepOptions()
    ds, protocol = _dataset(dataset, opts)
    if opts.workers < 1:
        raise ConfigError(f"--workers {opts.workers}: need at least 1")
    if opts.resize is not None and min(opts.resize) < 1:
        raise ConfigError(f"--resize {opts.resize[0]},{opts.resize[1]}: need positive sizes")
    mapping = build_mapping(ds.intensity_defaults, scope=opts.scope, stat=opts.stat, transform=opts.transform,
                            percentiles=opts.percentiles, range=opts.range)
    if protocol == "cv":
        check_cv_options(opts.repeats, opts.test_fraction)
    raw_dir = _raw_folder(raw, ds)
    out_dir = Path(out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir):  # one writer: a second prepare into the same --out stops at once
        return _prepare_into(ds, protocol, mapping, raw_dir, out_dir, opts)


def _prepare_into(ds: Dataset, protocol: str, mapping: IntensityMapping, raw_dir: Path, out_dir: Path,
                  opts: PrepOptions) -> PrepResult:
    """The body of :func:`prepare`, run while holding the lock of ``out_dir``."""
    state = options_state(ds, protocol, mapping, opts)
    check_state(out_dir, state, opts.force)
    remove_temporaries(out_dir)
    progress = Progress(opts.quiet)
    problems = Problems(opts.skip_bad)
    progress.log(f"{ds.name}: reading {raw_dir}")
    plan = ds.plan(raw_dir, protocol, problems)
    if not plan.labelled:
        raise DatasetLayoutError(f"{raw_dir}: no labelled {ds.name} images found ({ds.download_hint})")
    select_splits(make_splits(plan, protocol, opts), opts.only)  # --repeats, --test-fraction, --only: before any write
    before = len(problems.items)
    first, dtype, shape = probe(ds, raw_dir, plan.all_fields(), problems)
    if len(problems.items) > before:
        plan = drop_fields(plan, fields_before(plan, first))
    geometry = Geometry(dtype, shape, opts.resize or shape)
    transforms = aug.transforms(opts.augment, *geometry.target)
    atomic_write_text(out_dir / STATE, json.dumps(state, indent=1, sort_keys=True) + "\n")
    decoder = Decoder(ds, raw_dir, mapping, dtype, None if ds.variable_size else shape, geometry.target)
    record_bytes = len(ds.channels) * geometry.target[0] * geometry.target[1] + 64
    result = PrepResult(out_dir, [])
    with WorkerPool(decoder, opts.workers) as pool:
        stats: StatsByPlate | None = None
        if mapping.scope == "plate-dmso":
            stats, dropped = plate_stats(out_dir, ds, plan, pool, mapping, dtype, problems, progress)
            if dropped:
                plan = drop_fields(plan, dropped)
        splits = make_splits(plan, protocol, opts)
        selected = select_splits(splits, opts.only)
        builder = Builder(ds, plan, out_dir, opts, pool, stats, transforms, record_bytes, problems, progress, result)
        builder.build_splits(selected)
        for name, fields in plan.unlabelled.items():
            builder.build_unlabelled(name, fields)
    present = [s for s in splits if (out_dir / SPLITS / s.name / "split.json").is_file()]
    result.splits = [s.name for s in present]
    result.bad = list(dict.fromkeys(problems.items))
    finish(out_dir, ds, protocol, plan, mapping, geometry, opts, present, transforms, result)
    if not opts.keep_cache:
        cache.remove(out_dir)
    return result


def split_names(dataset: str, raw: str | os.PathLike[str], options: PrepOptions | None = None) -> list[str]:
    """The names of the splits :func:`prepare` would write, in order, reading only the metadata.

    Lets a sharded run (``tools/reproduce.py --shard i/N``) prepare just its own splits.
    """
    opts = options or PrepOptions()
    ds, protocol = _dataset(dataset, opts)
    plan = ds.plan(_raw_folder(raw, ds), protocol, Problems(True), check_files=False)
    return [s.name for s in make_splits(plan, protocol, opts)]
