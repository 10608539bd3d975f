"""cv / loco / full splits (mcnn.prep.splits)."""

from __future__ import annotations

from collections import Counter

import pytest

from mcnn.datasets.base import Field, Labelled
from mcnn.errors import ConfigError
from mcnn.prep.splits import cv_splits, fold_name, loco_splits
from mcnn.setsizes import holdout_count


def _items(counts: list[int]) -> list[Labelled]:
    out = []
    for label, n in enumerate(counts):
        for i in range(n):
            out.append(Labelled(Field(f"c{label}/{i:03d}", (f"c{label}/{i:03d}.tif",), {}), label, f"g{i % 3}"))
    return out


def test_cv_per_class_ninety_ten() -> None:
    items = _items([16, 7, 85])
    splits = cv_splits(items, 3, seed=5)
    assert [s.name for s in splits] == ["repeat_000", "repeat_001", "repeat_002"]
    for s in splits:
        test = Counter(x.label for x in s.test)
        assert [test[k] for k in range(3)] == [holdout_count(n) for n in (16, 7, 85)] == [2, 1, 9]
        assert len(s.train) + len(s.test) == 108
        assert not {x.field.name for x in s.train} & {x.field.name for x in s.test}
    assert {x.field.name for x in splits[0].test} != {x.field.name for x in splits[1].test}


def test_cv_is_reproducible_and_independent_of_input_order() -> None:
    items = _items([20, 20])
    a = cv_splits(items, 2, seed=1)
    b = cv_splits(list(reversed(items)), 2, seed=1)
    assert [[x.field.name for x in s.test] for s in a] == [[x.field.name for x in s.test] for s in b]
    c = cv_splits(items, 2, seed=2)
    assert [x.field.name for x in a[0].test] != [x.field.name for x in c[0].test]
    with pytest.raises(ConfigError, match="--repeats 0"):
        cv_splits(items, 0, seed=1)


def test_loco_holds_out_each_group_once() -> None:
    items = _items([6, 6])
    folds = loco_splits(items)
    assert [f.name for f in folds] == ["fold_g0", "fold_g1", "fold_g2"]
    assert all({x.group for x in f.test} == {f.held_out} for f in folds)
    assert all(f.held_out not in {x.group for x in f.train} for f in folds)
    assert fold_name("mevinolin/lovastatin") == "fold_mevinolin-lovastatin"
    assert fold_name("3,3'-diaminobenzidine") == "fold_3-3-diaminobenzidine"
