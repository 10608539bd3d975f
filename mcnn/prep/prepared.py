"""Reading what ``data_prep/prepare.py`` wrote: :func:`load_prepared`.

Net and solver generators take the geometry, classes and set sizes of a prepared dataset from
here instead of the presets::

    from mcnn.prep import load_prepared
    ds = load_prepared("data/bbbc021")
    ds.channels, ds.height, ds.width, ds.class_names    # ('DNA', 'tubulin', 'actin'), 1024, 1280, (...)
    split = ds.splits[0]                                # PreparedSplit('fold_alln', 1184, 24, paths)
    split.paths.train_lmdb, split.paths.mean           # Path objects
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcnn.errors import DatasetLayoutError

#: The names of the prepared layout (docs/formats.md), relative to ``OUT``.
DATASET_JSON = "dataset.json"
SPLITS = "splits"
#: Class names, one a line, line i = label i.
LABELS = "labels.txt"
#: The per-plate negative-control statistics of ``--norm-scope plate-dmso``.
NORMALIZATION = "normalization.json"
#: The bad inputs left out with ``--skip-bad`` (CSV: file, problem).
BAD_REPORT = "bad_inputs.csv"
#: The options the outputs were written with; a re-run must use the same.
STATE = ".prepare.json"
#: Links in ``OUT`` to the first split's files.
LINKS = ("train_lmdb", "test_lmdb", "mean.binaryproto")


@dataclass(frozen=True)
class SplitPaths:
    """The files of one split folder ``OUT/splits/<name>/``."""

    root: Path
    train_lmdb: Path
    test_lmdb: Path
    train_index: Path
    test_index: Path
    train_list: Path
    test_list: Path
    mean: Path
    split_json: Path

    @classmethod
    def of(cls, root: Path) -> SplitPaths:
        """The paths of the split folder ``root``."""
        return cls(root, root / "train_lmdb", root / "test_lmdb", root / "train_index.csv", root / "test_index.csv",
                   root / "train.txt", root / "test.txt", root / "mean.binaryproto", root / "split.json")


@dataclass(frozen=True)
class PreparedSplit:
    """One cross-validation repeat, BBBC021 fold or the ``full`` split: name, record counts of the
    training and test LMDBs (after augmentation), and paths."""

    name: str
    train_size: int
    test_size: int
    paths: SplitPaths


@dataclass(frozen=True)
class UnlabelledSet:
    """An unlabelled LMDB (``dose``: BBBC013-016 and simulated; ``screen``: BBBC021 ``full``)."""

    name: str
    size: int
    lmdb: Path
    index: Path


@dataclass(frozen=True)
class PreparedDataset:
    """A prepared dataset folder: what ``dataset.json`` says, with absolute paths.

    ``channels`` are in LMDB order; ``height``/``width`` in pixels of the stored images;
    ``class_names[i]`` is label i; ``concentration_unit`` is the unit of ``Metadata_Concentration``
    in the index CSVs (None for datasets without concentrations).
    """

    root: Path
    dataset: str
    protocol: str
    channels: tuple[str, ...]
    height: int
    width: int
    class_names: tuple[str, ...]
    concentration_unit: str | None
    splits: tuple[PreparedSplit, ...]
    unlabelled: tuple[UnlabelledSet, ...] = ()
    augment: str = "none"
    seed: int = 0
    info: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def num_channels(self) -> int:
        """Channels per record (C of C x H x W)."""
        return len(self.channels)

    @property
    def num_classes(self) -> int:
        """Number of classes (the net's N_p)."""
        return len(self.class_names)

    def split(self, name: str) -> PreparedSplit:
        """The split called ``name`` (DatasetLayoutError listing the names otherwise)."""
        for s in self.splits:
            if s.name == name:
                return s
        raise DatasetLayoutError(f"{self.root}: no split {name!r} (has {', '.join(s.name for s in self.splits)})")


def load_prepared(out_dir: str | os.PathLike[str]) -> PreparedDataset:
    """Read ``OUT/dataset.json`` and check that every split's LMDBs exist.

    Raises :class:`DatasetLayoutError` (one line) if the folder is not a complete prepared dataset.
    """
    root = Path(out_dir).resolve()
    path = root / DATASET_JSON
    if not path.is_file():
        raise DatasetLayoutError(f"{path}: missing; {root} is not a prepared dataset "
                                 "(run python data_prep/prepare.py DATASET --raw RAW --out OUT)")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetLayoutError(f"{path}: not JSON ({exc})") from None
    splits = []
    for entry in info.get("splits", []):
        paths = SplitPaths.of(root / SPLITS / entry["name"])
        for p in (paths.train_lmdb, paths.test_lmdb):
            if not (p / "data.mdb").is_file():
                raise DatasetLayoutError(f"{p}: LMDB missing; the preparation of {root} did not finish (run it again)")
        splits.append(PreparedSplit(entry["name"], int(entry["train"]), int(entry["test"]), paths))
    unlabelled = tuple(UnlabelledSet(name, int(u["size"]), root / u["lmdb"], root / u["index"])
                       for name, u in info.get("unlabelled", {}).items())
    return PreparedDataset(
        root=root, dataset=info["dataset"], protocol=info["protocol"], channels=tuple(info["channels"]),
        height=int(info["height"]), width=int(info["width"]), class_names=tuple(info["classes"]),
        concentration_unit=info.get("concentration_unit"), splits=tuple(splits), unlabelled=unlabelled,
        augment=info.get("augment", "none"), seed=int(info.get("seed", 0)), info=info)
