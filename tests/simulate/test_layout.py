"""Configuration, presets and the plate map."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from mcnn.errors import ConfigError
from mcnn.simulate.config import DEMO_COMPOUNDS, Compound, ScreenConfig, get_preset, with_overrides
from mcnn.simulate.hill import ec50_in_range
from mcnn.simulate.layout import TREATMENT, plan_fields, plan_wells, training_class, well_name


def test_well_names() -> None:
    assert [well_name(i) for i in (0, 1, 7, 8, 95)] == ["A01", "B01", "H01", "A02", "H12"]
    assert [well_name(i, 384) for i in (0, 15, 16, 383)] == ["A01", "P01", "A02", "P24"]
    with pytest.raises(ValueError):
        well_name(96)


def test_demo_matches_the_demo_net_preset() -> None:
    """prototxt/demo assumes 2 channels, 128x128, 4 classes and about 60 images per class."""
    config = get_preset("demo")
    assert (config.height, config.width) == (128, 128)
    assert config.channels == ("nuclei", "cytoplasm")
    assert config.classes == ("control", "translocation", "spots", "elongation")
    fields = plan_fields(config)
    assert len(fields) == 528
    per_class = Counter(training_class(f.well) for f in fields)
    assert per_class == {"control": 60, "translocation": 60, "spots": 60, "elongation": 60, None: 288}
    assert config.wells_per_plate() == [88, 88, 88]


def test_demo_dilution_series() -> None:
    config = get_preset("demo")
    assert len(config.compounds) == 6 and len(config.concentrations) == 8 and config.replicates == 3
    assert Counter(c.phenotype for c in config.compounds) == {"translocation": 2, "spots": 2, "elongation": 2}
    inside = [ec50_in_range(c.ec50, config.concentrations) for c in config.compounds]
    assert inside.count(False) == 1  # exactly one EC50 outside the tested range
    wells = [w for w in plan_wells(config) if w.role == TREATMENT]
    assert len(wells) == 6 * 8 * 3
    for compound in DEMO_COMPOUNDS:
        series = [w for w in wells if w.compound == compound.name]
        assert sorted({w.concentration for w in series}) == sorted(config.concentrations)
        # replicate r lies on plate r - 1, concentrations rising along the plate
        for replicate in (1, 2, 3):
            on_plate = [w for w in series if w.replicate == replicate]
            assert {w.plate for w in on_plate} == {f"P0{replicate}"}
            assert [w.concentration for w in on_plate] == sorted(config.concentrations)


def test_plate_map() -> None:
    config = get_preset("demo")
    wells = plan_wells(config)
    for plate in ("P01", "P02", "P03"):
        names = [w.well for w in wells if w.plate == plate]
        assert len(names) == len(set(names)) == 88 and names[0] == "A01"
    first = [w for w in wells if w.plate == "P01"][:41]
    assert [w.compound for w in first[:10]] == ["DMSO"] * 10
    assert {w.compound for w in first[10:20]} == {"PC-translocation"}
    assert first[40].role == TREATMENT
    dmso = [w for w in wells if w.compound == "DMSO"]
    assert [w.replicate for w in dmso] == list(range(1, 31))
    assert all(w.concentration == 0.0 and w.expected_fraction == 0.0 and w.phenotype == "control" for w in dmso)
    positives = [w for w in wells if w.role == "positive_control"]
    assert all(w.expected_fraction > 0.999999 and w.concentration == 10.0 for w in positives)
    assert [f.site for f in plan_fields(config)[:4]] == [1, 2, 1, 2]


def test_presets_are_valid_and_sized() -> None:
    assert len(plan_fields(get_preset("small"))) == 160
    assert len(plan_fields(get_preset("test"))) == 28
    with pytest.raises(ConfigError, match="unknown preset 'huge'; choose from demo, small, test"):
        get_preset("huge")


def test_overrides() -> None:
    demo = get_preset("demo")
    big = with_overrides(demo, size=256, seed=5, sites=1, plates=6)
    assert (big.height, big.width, big.seed, big.sites, big.plates) == (256, 256, 5, 1, 6)
    assert big.cells_per_field == pytest.approx(4 * demo.cells_per_field)
    only = with_overrides(demo, phenotypes=("spots", "fragmentation"))
    assert only.classes == ("control", "spots", "fragmentation")
    assert [c.name for c in only.compounds] == ["CPD-03", "CPD-04"]
    with pytest.raises(ConfigError, match="--size must be at least 32"):
        with_overrides(demo, size=16)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"plates": 1}, "needs 184 wells but a 96-well plate has 96"),
        ({"phenotypes": ("translocation", "blebbing")}, "unknown phenotype 'blebbing'"),
        ({"phenotypes": ("spots", "spots")}, "listed twice"),
        ({"channels": ("dna", "dna")}, "two distinct names"),
        ({"channels": ("DNA_1", "GFP")}, "channel name 'DNA_1'"),
        ({"plate_prefix": "plate 1"}, "plate prefix name"),
        ({"sites": 0}, "sites must be at least 1"),
        ({"concentrations": (1.0, 1.0)}, "listed twice"),
        ({"concentrations": (0.0, 1.0)}, "positive numbers"),
        ({"plate_format": 48}, "plate_format must be one of"),
        ({"compounds": (Compound("X", "density", 1.0, 1.0),)}, "not among the simulated phenotypes"),
        ({"compounds": (Compound("DMSO", "spots", 1.0, 1.0),)}, "used twice"),
        ({"compounds": (Compound("X", "spots", -1.0, 1.0),)}, "EC50 must be a positive"),
        ({"height": 16}, "at least 32x32"),
        ({"cells_per_field": -1.0}, "cells_per_field must be a non-negative number"),
        ({"replicates": 0}, "replicates must be at least 1, got 0"),
        ({"negative_control_wells": -1}, "negative_control_wells must not be negative, got -1"),
        ({"positive_control_ec50": 0.0}, "positive_control_ec50 must be a positive number, got 0.0"),
        ({"positive_control_slope": float("inf")}, "positive_control_slope must be a positive number, got inf"),
        ({"plate_format": 48}, r"plate_format must be one of \[96, 384\], got 48"),
        ({"compounds": (Compound("X", "spots", 1.0, 0.0),)}, "Hill slope must be positive"),
        ({"compounds": get_preset("demo").compounds, "concentrations": ()}, "at least one concentration"),
    ],
)
def test_invalid_configurations(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(get_preset("demo"), **changes).validate()


def test_384_well_plates_hold_the_demo_on_one_plate() -> None:
    config = dataclasses.replace(get_preset("demo"), plates=1, plate_format=384)
    wells = plan_wells(config)
    assert len(wells) == 40 + 144 and wells[-1].well == "H12"
    assert isinstance(ScreenConfig().validate(), ScreenConfig)
