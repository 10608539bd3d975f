"""From a dataset's :class:`~mcnn.datasets.base.Plan` to the splits a run writes.

Edits of the plan (leaving out the fields of bad inputs), drawing the splits of the protocol
(:mod:`mcnn.prep.splits`) and the ``--only`` selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mcnn.datasets.base import Field, Labelled, Plan
from mcnn.errors import ConfigError
from mcnn.prep.options import PrepOptions
from mcnn.prep.splits import Split, cv_splits, full_split, loco_splits


def fields_before(plan: Plan, first: Field) -> set[str]:
    """The names of the fields listed before ``first`` in ``plan`` (those the probe found bad)."""
    names = set()
    for f in plan.all_fields():
        if f is first:
            break
        names.add(f.name)
    return names


def drop_fields(plan: Plan, names: set[str]) -> Plan:
    """``plan`` without the fields called ``names``."""
    def keep(items: list[Labelled]) -> list[Labelled]:
        return [x for x in items if x.field.name not in names]

    return replace(plan, labelled=keep(plan.labelled), full_test=keep(plan.full_test),
                   unlabelled={k: [f for f in v if f.name not in names] for k, v in plan.unlabelled.items()},
                   controls=[f for f in plan.controls if f.name not in names])


def make_splits(plan: Plan, protocol: str, opts: PrepOptions) -> list[Split]:
    """Every split of ``protocol`` (cv, loco or full) for the labelled fields of ``plan``, in order."""
    if protocol == "cv":
        return cv_splits(plan.labelled, opts.repeats, opts.seed, opts.test_fraction)
    if protocol == "loco":
        return loco_splits(plan.labelled)
    return [full_split(plan.labelled, plan.full_test)]


def select_splits(splits: list[Split], only: Sequence[str]) -> list[Split]:
    """The splits named in ``only`` (``--only``; all when empty), in the order of ``splits``."""
    if not only:
        return splits
    names = {s.name for s in splits}
    unknown = [n for n in only if n not in names]
    if unknown:
        shown = ", ".join(s.name for s in splits[:8]) + (", ..." if len(splits) > 8 else "")
        raise ConfigError(f"--only {unknown[0]}: no such split (splits: {shown})")
    return [s for s in splits if s.name in set(only)]
