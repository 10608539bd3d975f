"""The files written once every LMDB is in place: ``labels.txt``, the dataset's own description
(``screen.json``), ``dataset.json``, ``bad_inputs.csv`` and the links ``OUT/train_lmdb``,
``test_lmdb``, ``mean.binaryproto`` to the first split (layout in docs/formats.md). Each file is
written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mcnn
from mcnn.datasets.base import Dataset, Plan
from mcnn.fsutil import atomic_write_text
from mcnn.prep.normalize import IntensityMapping
from mcnn.prep.options import PrepOptions, PrepResult
from mcnn.prep.prepared import BAD_REPORT, DATASET_JSON, LABELS, LINKS, SPLITS
from mcnn.prep.splits import Split
from mcnn.tables import read_table, write_table


@dataclass(frozen=True)
class Geometry:
    """The images of a run: source bit depth (``uint8``/``uint16``), source and stored (height, width)."""

    dtype: str
    shape: tuple[int, int]
    target: tuple[int, int]


def finish(out: Path, ds: Dataset, protocol: str, plan: Plan, mapping: IntensityMapping, geometry: Geometry,
           opts: PrepOptions, present: list[Split], transforms: tuple[str, ...], result: PrepResult) -> None:
    """Write the final files of a run whose complete splits are ``present``."""
    atomic_write_text(out / LABELS, "".join(f"{c}\n" for c in plan.classes))
    description = ds.description(prepare_flags(protocol, mapping, opts))
    if description is not None:  # your own screen: OUT/screen.json, a --config that reproduces the run
        atomic_write_text(out / f"{ds.name}.json", json.dumps(description, indent=1) + "\n")
    info = dataset_info(out, ds, protocol, plan, mapping, geometry, opts, present, transforms, result)
    atomic_write_text(out / DATASET_JSON, json.dumps(info, indent=1) + "\n")
    write_bad_report(out, result.bad)
    if present:
        link_first_split(out, present[0].name)


def prepare_flags(protocol: str, mapping: IntensityMapping, opts: PrepOptions) -> dict[str, Any]:
    """The prepare flags of a run that decide its outputs, resolved, keyed by flag name (``norm_scope``)."""
    return {"protocol": protocol, "repeats": opts.repeats, "seed": opts.seed, "test_fraction": opts.test_fraction,
            "only": list(opts.only) or None, "augment": opts.augment, "norm_scope": mapping.scope,
            "norm_stat": mapping.stat, "transform": mapping.transform, "percentiles": list(mapping.percentiles),
            "range": list(mapping.range) if mapping.range else None,
            "resize": list(opts.resize) if opts.resize else None, "skip_bad": opts.skip_bad}


def _split_summaries(out: Path, present: list[Split]) -> list[dict[str, Any]]:
    """Name, training and test record counts and held-out group of each split, from its split.json."""
    splits = []
    for s in present:
        info = json.loads((out / SPLITS / s.name / "split.json").read_text(encoding="utf-8"))
        splits.append({"name": s.name, "train": info["train"]["images"], "test": info["test"]["images"],
                       "held_out": s.held_out})
    return splits


def _unlabelled_summaries(out: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    """LMDB, index CSV and record count of each unlabelled set written."""
    unlabelled = {}
    for name in plan.unlabelled:
        index = out / f"{name}_index.csv"
        if index.is_file():
            size = len(read_table(index).rows)
            unlabelled[name] = {"lmdb": f"{name}_lmdb", "index": f"{name}_index.csv", "size": size}
    return unlabelled


def _notes(ds: Dataset, geometry: Geometry, bad: int) -> list[str]:
    """The remarks of ``dataset.json``: a size unlike the real download's, a resize, bad inputs left out."""
    shape, target = geometry.shape, geometry.target
    notes = []
    if ds.real_size and tuple(shape) != tuple(ds.real_size) and not ds.variable_size:
        notes.append(f"images are {shape[0]}x{shape[1]} (HxW); the real download has {ds.real_size[0]}x"
                     f"{ds.real_size[1]} (a look-alike?)")
    if tuple(target) != tuple(shape):
        notes.append(f"fields resized from {shape[0]}x{shape[1]} to {target[0]}x{target[1]} (HxW)")
    if bad:
        notes.append(f"{bad} bad inputs left out (--skip-bad), listed in {BAD_REPORT}")
    return notes


def dataset_info(out: Path, ds: Dataset, protocol: str, plan: Plan, mapping: IntensityMapping, geometry: Geometry,
                 opts: PrepOptions, present: list[Split], transforms: tuple[str, ...],
                 result: PrepResult) -> dict[str, Any]:
    """The content of ``dataset.json`` (docs/formats.md), key order as written."""
    cv = protocol == "cv"
    per_class = Counter(plan.classes[x.label] for x in plan.labelled)
    return {
        "dataset": ds.name, "title": ds.title, "protocol": protocol, "channels": list(ds.channels),
        "height": geometry.target[0], "width": geometry.target[1], "source_height": geometry.shape[0],
        "source_width": geometry.shape[1], "source_dtype": geometry.dtype, "classes": list(plan.classes),
        "concentration_unit": plan.concentration_unit,
        "seed": opts.seed, "augment": opts.augment, "transforms": list(transforms),
        "test_fraction": opts.test_fraction if cv else None,
        "repeats": opts.repeats if cv else None,
        "splits": _split_summaries(out, present), "unlabelled": _unlabelled_summaries(out, plan),
        "intensity": mapping.describe(geometry.dtype),
        "options": dict(ds.opts), "choices": [c.as_dict() for c in (*plan.choices, *ds.uncertain)],
        "labelled_per_class": {c: per_class.get(c, 0) for c in plan.classes}, "counts": plan.counts,
        "index_columns": ["key", "label", "class_name", *plan.columns,
                          *(f"Image_FileName_{c}" for c in ds.channels), "Metadata_Augmentation"],
        "notes": _notes(ds, geometry, len(result.bad)), "bad_inputs": len(result.bad), "tool": "mcnn data_prep",
        "tool_version": mcnn.__version__,
    }


def write_bad_report(out: Path, bad: list[tuple[str, str]]) -> None:
    """``OUT/bad_inputs.csv`` (columns file, problem) listing ``bad``; removed when there are none."""
    if bad:
        write_table(out / BAD_REPORT, ({"file": p, "problem": q} for p, q in bad), ("file", "problem"))
    elif (out / BAD_REPORT).is_file():
        (out / BAD_REPORT).unlink()


def link_first_split(out: Path, split: str) -> None:
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
