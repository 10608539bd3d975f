"""Split assignment: which labelled field goes to the training and which to the test set, per protocol.

How many images a per-class split holds out is :func:`mcnn.setsizes.holdout_count` (the one
holdout rule, shared with the solver builder's set sizes); this module draws which ones.

- ``cv``: per class, a random 10 % of the images (``mcnn.setsizes.holdout_count``: round half up,
  at least one while the class keeps one for training) go to the test set, the rest to training;
  repeated ``repeats`` times (50 in the paper), repeat r drawn from a generator seeded by
  (seed, r), so any repeat can be rebuilt alone. Fields that carry a ``unit`` (your own screen:
  a well or a plate) are held out whole, 10 % of the units of each class.
- ``loco``: one fold per held-out group (BBBC021: compound), trained on all other groups.
- ``full``: one split, the training and test sets the dataset defines (BBBC021: the 13-class model).

Fields are ordered by name before drawing, so the splits do not depend on the order in which
the download's files were listed.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass

from mcnn.datasets.base import Labelled, rng_for
from mcnn.errors import ConfigError
from mcnn.setsizes import holdout_count


@dataclass
class Split:
    """One split: ``name`` (``repeat_000``, ``fold_<compound>``, ``full``), its training and test
    fields, and the held-out group of a leave-one-out fold."""

    name: str
    train: list[Labelled]
    test: list[Labelled]
    held_out: str | None = None


def repeat_name(r: int) -> str:
    """``repeat_000``, ``repeat_001``, ..."""
    return f"repeat_{r:03d}"


def fold_name(group: str) -> str:
    """``fold_<group>``: lower-cased, every run of characters other than a-z0-9 replaced by ``-``."""
    return "fold_" + re.sub(r"[^a-z0-9]+", "-", group.lower())


def _by_name(items: list[Labelled]) -> list[Labelled]:
    return sorted(items, key=lambda x: x.field.name)


def _units(items: list[Labelled]) -> list[list[Labelled]]:
    """``items`` (in name order) grouped into their held-out units, in order of first appearance;
    an item without a ``unit`` is a unit of its own."""
    units: dict[tuple[bool, str], list[Labelled]] = {}
    for item in items:
        key = (True, item.unit) if item.unit else (False, item.field.name)
        units.setdefault(key, []).append(item)
    return list(units.values())


def _unit_label(unit: list[Labelled]) -> int:
    """The class a unit belongs to: the label of most of its items (ties: the lowest label)."""
    counts = Counter(x.label for x in unit)
    return min(counts, key=lambda label: (-counts[label], label))


def cv_split(labelled: list[Labelled], repeat: int, seed: int, fraction: float = 0.1) -> Split:
    """Repeat ``repeat`` of the per-class random split (``fraction`` of each class to test).

    Items that carry a ``unit`` (a well, a plate) are held out whole: per class,
    ``holdout_count(units, fraction)`` of the units of that class go to the test set. Without
    units every field is its own unit (the paper's per-image split).
    """
    by_class: dict[int, list[list[Labelled]]] = defaultdict(list)
    for unit in _units(_by_name(labelled)):
        by_class[_unit_label(unit)].append(unit)
    rng = rng_for(seed, "cv", repeat)
    train: list[Labelled] = []
    test: list[Labelled] = []
    for label in sorted(by_class):
        units = by_class[label]
        order = rng.permutation(len(units))
        k = holdout_count(len(units), fraction)
        test += [x for i in order[:k] for x in units[i]]
        train += [x for i in order[k:] for x in units[i]]
    return Split(repeat_name(repeat), train, test)


def check_cv_options(repeats: int, fraction: float) -> None:
    """ConfigError naming the flag unless ``repeats`` >= 1 and 0 < ``fraction`` < 1."""
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: need at least 1")
    if not 0 < fraction < 1:
        raise ConfigError(f"--test-fraction {fraction:g}: need a value between 0 and 1")


def cv_splits(labelled: list[Labelled], repeats: int, seed: int, fraction: float = 0.1) -> list[Split]:
    """The ``repeats`` splits of ``--protocol cv``."""
    check_cv_options(repeats, fraction)
    return [cv_split(labelled, r, seed, fraction) for r in range(repeats)]


def loco_splits(labelled: list[Labelled]) -> list[Split]:
    """One fold per group (compound) of ``labelled``, in the order of the fold names."""
    groups = sorted({x.group for x in labelled if x.group}, key=fold_name)
    if len(groups) < 2:
        raise ConfigError(f"leave-one-out needs at least 2 groups, found {len(groups)}")
    names = [fold_name(g) for g in groups]
    if len(set(names)) != len(names):
        raise ConfigError("two held-out groups give the same fold name")
    items = _by_name(labelled)
    return [Split(fold_name(g), [x for x in items if x.group != g], [x for x in items if x.group == g], held_out=g)
            for g in groups]


def full_split(train: list[Labelled], test: list[Labelled]) -> Split:
    """The single split of ``--protocol full``."""
    return Split("full", _by_name(train), _by_name(test))
