"""The presets are derived from the dataset classes: one per preset-declaring dataset, agreeing with it."""

from __future__ import annotations

import pytest

from mcnn.datasets import DATASETS, PAPER_DATASETS, PRESET_DATASETS
from mcnn.datasets.demo import DemoScreen
from mcnn.errors import ConfigError
from mcnn.nets.presets import DEFAULT_SCALE, PRESETS, data_spec_for, get_preset


def test_every_dataset_with_fixed_classes_has_a_preset_and_nothing_else_does() -> None:
    names = [cls.preset_name or cls.name for cls in PRESET_DATASETS]
    assert list(PRESETS) == names
    assert set(PAPER_DATASETS) <= set(DATASETS)
    assert set(PRESETS) == set(PAPER_DATASETS) | {"demo"}
    assert PRESET_DATASETS[-1] is DemoScreen and "demo" not in DATASETS
    assert [c.name for c in DATASETS.values() if not c.class_names] == ["screen"]  # classes from the plate map


@pytest.mark.parametrize("cls", list(PRESET_DATASETS), ids=lambda cls: cls.name)
def test_preset_agrees_with_its_dataset_class(cls: type) -> None:
    preset = PRESETS[cls.preset_name or cls.name]
    assert preset.title == (cls.preset_title or cls.title)
    assert preset.channels == tuple(cls.default_channels)
    assert (preset.height, preset.width) == (cls.net_size or cls.real_size)
    assert preset.class_names == tuple(cls.class_names) and preset.classes == len(cls.class_names) >= 2
    assert (preset.train_size, preset.test_size) == cls.set_sizes and preset.train_size > preset.test_size > 0
    assert preset.batch == cls.batch > 0
    assert preset.protocol == cls.default_protocol and preset.protocol in cls.protocols
    assert preset.notes == tuple(cls.notes)


@pytest.mark.parametrize(("name", "facts"), [
    ("bbbc013", (640, 640, 2, 16, "cv")),
    ("bbbc014", (1024, 1360, 2, 8, "cv")),
    ("bbbc015", (768, 1000, 2, 8, "cv")),
    ("bbbc016", (512, 512, 2, 16, "cv")),
    ("bbbc021", (1024, 1280, 12, 8, "loco")),
    ("hela", (382, 382, 10, 32, "cv")),
    ("cho", (382, 512, 5, 32, "cv")),
    ("hpa", (1024, 1024, 13, 8, "cv")),
    ("demo", (128, 128, 4, 16, "cv")),
])
def test_preset_facts(name: str, facts: tuple[int, int, int, int, str]) -> None:
    p = get_preset(name.upper())
    assert (p.height, p.width, p.classes, p.batch, p.protocol) == facts


def test_set_sizes_of_the_class_folder_datasets_come_from_the_documented_counts() -> None:
    assert sum(n for _, n in DATASETS["hela"].classes_doc) == 862
    assert PRESETS["hela"].train_size + PRESETS["hela"].test_size == 862
    assert PRESETS["cho"].train_size + PRESETS["cho"].test_size == 340


def test_data_spec_and_unknown_preset() -> None:
    spec = data_spec_for(PRESETS["bbbc021"], "alexnet")
    assert (spec.channels, spec.height, spec.width, spec.classes, spec.crop) == (3, 1024, 1280, 12, 227)
    assert spec.scale == DEFAULT_SCALE and spec.train_source == "data/bbbc021/train_lmdb"
    assert data_spec_for(PRESETS["demo"], "googlenet").crop == 0
    with pytest.raises(ConfigError, match="unknown --preset 'nope'; choose from bbbc013"):
        get_preset("nope")
