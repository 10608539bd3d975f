"""What every dataset module provides: its fields, classes, protocol rules and its preset facts.

A *field* is one multi-channel image: one file per channel, relative to the raw download
folder, plus its metadata (``Metadata_*`` columns of the index CSV). A dataset's
:meth:`Dataset.plan` reads the raw layout and applies the paper's rules for a protocol:
which fields are labelled with which class, which are held out together (BBBC021 compounds),
which form the unlabelled dose-response or screen sets, and which are the negative controls
that the per-plate normalisation uses.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mcnn.datasets.imageio import read_plane
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError

PROTOCOLS = ("cv", "loco", "full")


@dataclass(frozen=True, eq=False)
class Field:
    """One multi-channel image of a dataset.

    ``name`` is unique within the dataset and becomes the ``<name>`` part of the LMDB keys
    (``Week1_22123/B02/s1``); ``files`` are POSIX paths relative to the raw folder, one per
    channel in the dataset's channel order; ``meta`` holds the ``Metadata_*`` values; ``plate``
    is the normalisation group and ``control`` marks the plate's negative controls (DMSO).
    """

    name: str
    files: tuple[str, ...]
    meta: Mapping[str, Any]
    plate: str = ""
    control: bool = False


@dataclass(frozen=True, eq=False)
class Labelled:
    """A field with its class index; ``group`` is what leave-one-out protocols hold out (compound);
    ``unit`` is what a ``cv`` split holds out whole (a well ``<plate>/<well>`` or a plate; "" = the
    field itself)."""

    field: Field
    label: int
    group: str = ""
    unit: str = ""


@dataclass(frozen=True)
class Choice:
    """A fact the sources leave open and the default this toolkit takes (``option`` changes it)."""

    topic: str
    choice: str
    option: str = ""

    def as_dict(self) -> dict[str, str]:
        """The choice as a JSON-ready mapping (topic, choice, option)."""
        return {"topic": self.topic, "choice": self.choice, "option": self.option}


@dataclass(frozen=True)
class Option:
    """A dataset-specific option, set with ``--option NAME=VALUE``."""

    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass
class Plan:
    """The result of reading a raw download for one protocol.

    ``labelled``: the pool that ``cv`` splits per class and ``loco`` splits by ``group``; for
    ``full`` the training set, with ``full_test`` the test set. ``unlabelled``: named sets written
    with label -1 (``dose``, ``screen``). ``controls``: every negative-control field (the
    per-plate statistics come from them). ``columns``: the ``Metadata_*`` columns of the index
    CSVs, in order.
    """

    classes: tuple[str, ...]
    labelled: list[Labelled]
    columns: tuple[str, ...]
    full_test: list[Labelled] = field(default_factory=list)
    unlabelled: dict[str, list[Field]] = field(default_factory=dict)
    controls: list[Field] = field(default_factory=list)
    concentration_unit: str | None = None
    choices: list[Choice] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    def all_fields(self) -> list[Field]:
        """Every distinct field the plan uses, labelled first, in a stable order."""
        seen: set[str] = set()
        out: list[Field] = []
        groups: list[Sequence[Field]] = [[x.field for x in self.labelled], [x.field for x in self.full_test],
                                          *self.unlabelled.values()]
        for group in groups:
            for f in group:
                if f.name not in seen:
                    seen.add(f.name)
                    out.append(f)
        return out


class Problems:
    """Bad inputs found while reading a download.

    Without ``skip`` the first problem raises :class:`BadInputError` (one line: file and what
    was expected); with ``skip`` (``--skip-bad``) each is recorded and the caller leaves the
    affected fields out.
    """

    def __init__(self, skip: bool = False):
        self.skip = skip
        self.items: list[tuple[str, str]] = []

    def bad(self, path: str, problem: str) -> None:
        """Report one bad input; raises unless skipping."""
        if not self.skip:
            raise BadInputError(path, problem)
        self.items.append((path, problem))

    def add(self, exc: BadInputError) -> None:
        """Record an error raised elsewhere (a worker), or re-raise it when not skipping."""
        if not self.skip:
            raise exc
        self.items.append((exc.path, exc.problem))


class FileIndex:
    """The file names of folders, listed once, for fast existence checks of thousands of files."""

    def __init__(self, root: Path):
        self.root = root
        self._dirs: dict[str, set[str] | None] = {}
        self._lower: dict[str, dict[str, str]] = {}

    def names(self, folder: str) -> set[str] | None:
        """File names in ``root/folder`` (None if the folder does not exist)."""
        if folder not in self._dirs:
            path = self.root / folder if folder else self.root
            try:
                self._dirs[folder] = {e.name for e in os.scandir(path) if not e.is_dir()}
            except (FileNotFoundError, NotADirectoryError):
                self._dirs[folder] = None
        return self._dirs[folder]

    def exists(self, rel: str) -> bool:
        """Whether the file ``root/rel`` exists."""
        folder, _, name = rel.rpartition("/")
        names = self.names(folder)
        return names is not None and name in names

    def find(self, rel: str) -> str | None:
        """``rel`` as it exists on disk, matching the file name case-insensitively (``.BMP`` vs
        ``.bmp``); None if there is no such file."""
        if self.exists(rel):
            return rel
        folder, _, name = rel.rpartition("/")
        names = self.names(folder)
        if names is None:
            return None
        if folder not in self._lower:
            self._lower[folder] = {n.lower(): n for n in names}
        actual = self._lower[folder].get(name.lower())
        if actual is None:
            return None
        return f"{folder}/{actual}" if folder else actual


class Dataset:
    """Base class of the dataset modules (one subclass per dataset, registered by ``name``).

    Subclasses set the class attributes and implement :meth:`plan`; :meth:`read_field` reads one
    file per channel with :func:`read_plane`. The class attributes are also the one source of the
    net/solver preset of the dataset (:mod:`mcnn.nets.presets` derives it). The look-alike writers
    live in :mod:`mcnn.simulate.lookalikes`.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    default_channels: ClassVar[tuple[str, ...]] = ()
    protocols: ClassVar[tuple[str, ...]] = ("cv", "full")
    default_protocol: ClassVar[str] = "cv"
    #: Pixel types the real download has (the first image read fixes the type for a run).
    dtypes: ClassVar[tuple[str, ...]] = ("uint8",)
    #: (height, width) of the real images; None where the sources do not know it.
    real_size: ClassVar[tuple[int, int] | None] = None
    #: (height, width) of the ``--size small`` look-alike.
    small_size: ClassVar[tuple[int, int]] = (64, 64)
    #: Whether images of one download may differ in size (then they are resized to one size).
    variable_size: ClassVar[bool] = False
    #: Intensity-mapping defaults (keys of :class:`mcnn.prep.normalize.IntensityMapping`).
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "none"}
    options: ClassVar[tuple[Option, ...]] = ()
    #: Facts the sources leave open that do not depend on the download (written to dataset.json).
    uncertain: ClassVar[tuple[Choice, ...]] = ()
    #: Where the download comes from and how to unpack it (one line, for error messages).
    download_hint: ClassVar[str] = ""
    # -- preset facts (mcnn.nets.presets derives one preset per dataset from them) ----------------
    #: Preset name and title where they differ from ``name`` and ``title``.
    preset_name: ClassVar[str] = ""
    preset_title: ClassVar[str] = ""
    #: Class names in label order, as the paper's protocol defines them.
    class_names: ClassVar[tuple[str, ...]] = ()
    #: (height, width) in pixels of the images the nets take; None: ``real_size``.
    net_size: ClassVar[tuple[int, int] | None] = None
    #: Train and test batch of the committed solvers (images).
    batch: ClassVar[int] = 16
    #: (train, test) images of one cross-validation repeat (or one BBBC021 fold), for the solvers.
    set_sizes: ClassVar[tuple[int, int]] = (0, 0)
    #: Facts of the preset the sources leave open (written into the committed file headers).
    notes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: Mapping[str, str] | None = None):
        given = dict(options or {})
        known = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            valid = ", ".join(known) or "none"
            raise ConfigError(f"--option {unknown[0]}: not an option of {self.name} (valid: {valid})")
        self.opts: dict[str, str] = {}
        for name, opt in known.items():
            value = str(given.get(name, opt.default))
            if opt.choices and value not in opt.choices:
                raise ConfigError(f"--option {name}={value}: choose from {', '.join(opt.choices)}")
            self.opts[name] = value
        self.channels: tuple[str, ...] = tuple(self.default_channels)
        self.configure()

    @classmethod
    def net_geometry(cls) -> tuple[int, int]:
        """(height, width) in pixels of the images the nets of this dataset take."""
        size = cls.net_size or cls.real_size
        if size is None:
            raise ConfigError(f"{cls.name}: no image size for the nets (set net_size)")
        return size

    def configure(self) -> None:
        """Hook for subclasses to validate free-text options and set derived attributes."""

    # -- reading -----------------------------------------------------------------------------

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        """Read the raw download at ``raw`` and apply the paper's rules for ``protocol``.

        With ``check_files`` every image file named by the layout must exist (missing ones go to
        ``problems``); without it only the metadata is read (tests of the real CSVs).
        """
        raise NotImplementedError

    def read_field(self, raw: Path, f: Field) -> list[np.ndarray]:
        """The channel planes of ``f`` (2-D integer arrays, native type), in channel order."""
        return [read_plane(raw / rel, label=rel) for rel in f.files]

    def description(self, flags: Mapping[str, Any]) -> dict[str, Any] | None:
        """A record of how this dataset was read, saved as ``OUT/<name>.json`` at the end of a run
        (None: nothing to save, the paper's datasets). ``flags`` are the resolved prepare flags
        (``protocol``, ``repeats``, ``seed``, ``norm_scope``, ...)."""
        return None

    def check_protocol(self, protocol: str) -> None:
        """Raise :class:`ConfigError` unless this dataset supports ``protocol``."""
        if protocol not in self.protocols:
            raise ConfigError(f"--protocol {protocol}: {self.name} supports {', '.join(self.protocols)}")

    def options_text(self) -> str:
        """One line per dataset option, for ``--help``."""
        return "\n".join(f"  {o.name}={o.default}: {o.help}" for o in self.options)


def require_dir(path: Path, what: str, hint: str = "") -> Path:
    """``path`` if it is a folder, else :class:`DatasetLayoutError` naming it and the expectation."""
    if not path.is_dir():
        extra = f" ({hint})" if hint else ""
        raise DatasetLayoutError(f"{path}: folder missing, expected {what}{extra}")
    return path


def require_file(path: Path, what: str, hint: str = "") -> Path:
    """``path`` if it is a file, else :class:`DatasetLayoutError` naming it and the expectation."""
    if not path.is_file():
        extra = f" ({hint})" if hint else ""
        raise DatasetLayoutError(f"{path}: file missing, expected {what}{extra}")
    return path


def rng_for(seed: int, *words: str | int) -> np.random.Generator:
    """A generator seeded by ``seed`` and a tuple of words (reproducible across runs and processes)."""
    import zlib

    entropy = [int(seed) & 0xFFFFFFFF]
    for w in words:
        entropy.append(zlib.crc32(str(w).encode()) & 0xFFFFFFFF)
    return np.random.default_rng(np.random.SeedSequence(entropy))


def format_number(value: float) -> str:
    """A concentration as a plain number: ``0.003``, ``3``, ``0.0000001`` (no exponent)."""
    v = float(value)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return np.format_float_positional(v, trim="-")


def lowest_highest(values: Sequence[float], n: int = 2) -> tuple[set[float], set[float]]:
    """The ``n`` lowest and ``n`` highest distinct values (the paper's neutral and positive
    concentrations of BBBC014-016). Raises :class:`DatasetLayoutError` with fewer than 2n values."""
    distinct = sorted(set(float(v) for v in values))
    if len(distinct) < 2 * n:
        raise DatasetLayoutError(f"{len(distinct)} distinct concentrations, at least {2 * n} needed")
    return set(distinct[:n]), set(distinct[-n:])


def with_meta(f: Field, **changes: Any) -> Field:
    """A copy of ``f`` with some ``Metadata_*`` values changed."""
    meta = dict(f.meta)
    meta.update(changes)
    return Field(f.name, f.files, meta, f.plate, f.control)


def select_fields(fields: Sequence[Field], which: str) -> list[Field]:
    """One field per well (``first``, ``last`` or a site number) or ``all`` fields.

    The paper uses one field per well in the cross-validation of BBBC015/016 to avoid batch
    effects; which field is not stated (default ``first``).
    """
    if which == "all":
        return list(fields)
    by_well: dict[str, list[Field]] = defaultdict(list)
    for f in fields:
        by_well[str(f.meta["Metadata_Well"])].append(f)
    chosen = []
    for group in by_well.values():
        group = sorted(group, key=lambda f: int(f.meta["Metadata_Site"]))
        if which == "first":
            chosen.append(group[0])
        elif which == "last":
            chosen.append(group[-1])
        else:
            chosen.extend([f for f in group if int(f.meta["Metadata_Site"]) == int(which)][:1])
    return chosen
