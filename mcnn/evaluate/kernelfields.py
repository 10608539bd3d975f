"""The fields whose kernel maps are drawn: an LMDB record, image files, or one field per class of a split.

:func:`lmdb_field` and :func:`image_field` serve ``tools/kernel_maps.py``; :func:`split_kernel_maps`
is the step of the reproduction that draws ``kernel_maps_<arch>.png`` (+ ``.npz``) for one field per
class with the first split's model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mcnn.caffe.transform import LmdbRecords
from mcnn.datasets.imageio import bit_depth, read_plane
from mcnn.errors import BadInputError
from mcnn.evaluate.kernels import Field, KernelMaps, compute_maps, write_maps
from mcnn.evaluate.predict import test_transform
from mcnn.prep.prepared import PreparedDataset
from mcnn.tables import read_table

PathLike = str | os.PathLike[str]


def class_name(label: int, classes: Sequence[str] | None) -> str:
    """The name of class ``label`` ("" when unknown)."""
    return classes[label] if classes and 0 <= label < len(classes) else ""


def record_index(records: LmdbRecords, record: str) -> int:
    """The position of ``record`` in ``records``: a key (exact) or a 0-based index in key order."""
    keys = {k.decode(errors="replace"): i for i, k in enumerate(records.keys)}
    if record in keys:
        return keys[record]
    if record.lstrip("-").isdigit() and 0 <= int(record) < len(records):
        return int(record)
    raise BadInputError(str(records.path), f"no record {record!r} (give a key or an index 0..{len(records) - 1}; "
                        f"first key {records.keys[0].decode(errors='replace')!r})")


def lmdb_field(lmdb: PathLike, record: str, classes: Sequence[str] | None = None) -> tuple[Field, bool]:
    """(the record ``record`` of ``lmdb`` as a :class:`Field` titled "key (class)", whether it is encoded)."""
    records = LmdbRecords(lmdb)
    index = record_index(records, record)
    image, label = records.image(index)
    key = records.keys[index].decode(errors="replace")
    name = class_name(label, classes)
    return Field(key, image, label, f"{key} ({name})" if name else key), records.encoded


def image_field(paths: Sequence[PathLike]) -> Field:
    """One field from one 8-bit grey image file per channel (in the net's channel order), read with
    :func:`mcnn.datasets.imageio.read_plane`; BadInputError naming the file of another depth or size."""
    planes = []
    for path in paths:
        plane = read_plane(path)
        if plane.dtype != np.uint8:
            raise BadInputError(str(path), f"a {bit_depth(plane.dtype)} image; the nets take 8-bit fields as "
                                "data_prep writes them (use --lmdb and --record for a prepared field)")
        if planes and plane.shape != planes[0].shape:
            raise BadInputError(str(path), f"{plane.shape[0]}x{plane.shape[1]} pixels, the first channel's file is "
                                f"{planes[0].shape[0]}x{planes[0].shape[1]}")
        planes.append(plane)
    first = Path(paths[0])
    return Field(str(first), np.stack(planes), -1, first.name)


def class_fields(units: Sequence[tuple[Path, Path]], classes: Sequence[str]) -> tuple[list[Field], bool]:
    """The first record of each class in the (LMDB, index CSV) ``units``, searched in order, un-augmented
    records first (the index's ``Metadata_Augmentation``); classes without a record are left out."""
    found: dict[int, tuple[Path, str]] = {}
    for lmdb, index in units:
        rows = [r for r in read_table(index).rows if r.get("Metadata_Augmentation", "none") in ("none", "")]
        for row in rows:
            label = int(row["label"])
            if 0 <= label < len(classes) and label not in found:
                found[label] = (lmdb, row["key"])
    fields, encoded = [], False
    opened: dict[Path, LmdbRecords] = {}
    for label in sorted(found):
        lmdb, key = found[label]
        if lmdb not in opened:  # building one reads all of its keys
            opened[lmdb] = LmdbRecords(lmdb)
        records = opened[lmdb]
        image, _ = records.image(record_index(records, key))
        encoded = encoded or records.encoded
        fields.append(Field(key, image, label, classes[label]))
    return fields, encoded


def split_kernel_maps(out: Path, runs_dir: Path, arch: str, ds: PreparedDataset, split: str, engine: str = "torch",
                      gpu: int | None = None, log: Callable[[str], None] | None = None) -> KernelMaps | None:
    """``out/kernel_maps_<arch>.png`` and ``.npz``: one field per class of the split ``split`` (its test records
    first, then its training records) through the model it trained (``runs_dir/<split>``), at the default layers.

    Returns None (drawing nothing) when ``ds`` does not hold that split (another shard's) or the split has
    not finished (no metrics.json).
    """
    prepared = next((s for s in ds.splits if s.name == split), None)
    folder = runs_dir / split
    if prepared is None or not (folder / "metrics.json").is_file():
        return None
    iterations = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))["iterations"]
    weights = folder / "snapshots" / f"{arch}_iter_{iterations}.caffemodel"
    paths = prepared.paths
    fields, encoded = class_fields([(paths.test_lmdb, paths.test_index), (paths.train_lmdb, paths.train_index)],
                                   ds.class_names)
    maps = compute_maps(folder / f"{arch}_deploy.prototxt", weights, fields,
                        test_transform(folder / f"{arch}_train_val.prototxt"), ds.channels, engine=engine, gpu=gpu,
                        base_dir=paths.test_lmdb.parent, encoded=encoded)
    png, _ = write_maps(out / f"kernel_maps_{arch}.png", maps)
    if log is not None:
        log(f"kernel maps of {len(fields)} fields (one per class, {split}'s model) in {png}")
    return maps
