"""simulate_screen writes exactly the layout of docs/formats.md ("A simulated screen")."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from mcnn.errors import ConfigError
from mcnn.simulate import get_preset, plan_fields, simulate_field, simulate_screen
from mcnn.simulate.hill import hill_fraction

COLUMNS = [
    "Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_Compound", "Metadata_Concentration",
    "Metadata_Replicate", "Metadata_Role", "Metadata_Phenotype", "Metadata_AffectedFraction",
    "Image_FileName_nuclei", "Image_FileName_cytoplasm",
]


def _rows(screen: Path) -> list[dict[str, str]]:
    with open(screen / "metadata.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _digest(screen: Path) -> dict[str, str]:
    return {str(p.relative_to(screen)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(screen.rglob("*")) if p.is_file()}


def test_file_layout(test_screen: Path) -> None:
    files = {str(p.relative_to(test_screen)) for p in test_screen.rglob("*") if p.is_file()}
    rows = _rows(test_screen)
    images = {row[f"Image_FileName_{c}"] for row in rows for c in ("nuclei", "cytoplasm")}
    assert files == {"metadata.csv", "ground_truth.json"} | images
    assert len(images) == 2 * len(rows) == 56
    row = rows[0]
    assert row["Image_FileName_nuclei"] == "images/P01/P01_A01_s1_nuclei.tif"
    for row in rows:
        for channel in ("nuclei", "cytoplasm"):
            plate, well, site = row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]
            assert row[f"Image_FileName_{channel}"] == f"images/{plate}/{plate}_{well}_s{site}_{channel}.tif"
    image = tifffile.imread(test_screen / rows[0]["Image_FileName_cytoplasm"])
    assert image.dtype == np.uint16 and image.shape == (64, 64)


def test_metadata_columns_and_values(test_screen: Path) -> None:
    header = (test_screen / "metadata.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == COLUMNS
    rows = _rows(test_screen)
    assert len(rows) == 28
    roles = {row["Metadata_Role"] for row in rows}
    assert roles == {"negative_control", "positive_control", "treatment"}
    truth = json.loads((test_screen / "ground_truth.json").read_text(encoding="utf-8"))
    for row in rows:
        fraction = float(row["Metadata_AffectedFraction"])
        assert 0.0 <= fraction <= 1.0
        compound = truth["compounds"][row["Metadata_Compound"]]
        assert row["Metadata_Phenotype"] == compound["phenotype"] and row["Metadata_Role"] == compound["role"]
        if row["Metadata_Role"] == "negative_control":
            assert row["Metadata_Compound"] == "DMSO" and row["Metadata_Concentration"] == "0"
            assert row["Metadata_Phenotype"] == "control" and fraction == 0.0
        elif row["Metadata_Role"] == "positive_control":
            assert row["Metadata_Compound"] == f"PC-{row['Metadata_Phenotype']}" and fraction == 1.0
            assert float(row["Metadata_Concentration"]) == 10.0
        else:
            assert float(row["Metadata_Concentration"]) in (0.1, 1.0, 10.0)
    assert [row["Metadata_Concentration"] for row in rows if row["Metadata_Compound"] == "CPD-01"] == \
        ["0.1", "0.1", "1", "1", "10", "10"]


def test_ground_truth(test_screen: Path) -> None:
    truth = json.loads((test_screen / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["phenotypes"] == ["control", "translocation", "spots", "elongation"]
    assert truth["channels"] == ["nuclei", "cytoplasm"]
    assert truth["image_size"] == {"height": 64, "width": 64}
    assert truth["seed"] == 0 and truth["preset"] == "test" and truth["concentration_unit"] == "uM"
    assert truth["format"] == "mcnn-simulated-screen" and truth["format_version"] == 1
    assert "EC50" in truth["hill_model"]
    compounds = truth["compounds"]
    assert list(compounds) == ["DMSO", "PC-translocation", "PC-spots", "PC-elongation", "CPD-01", "CPD-02"]
    assert compounds["DMSO"] == {"phenotype": "control", "role": "negative_control", "ec50": None,
                                 "hill_slope": None, "concentrations": [0.0], "ec50_in_tested_range": None}
    assert compounds["CPD-01"] == {"phenotype": "translocation", "role": "treatment", "ec50": 1.0,
                                   "hill_slope": 2.0, "concentrations": [0.1, 1.0, 10.0],
                                   "ec50_in_tested_range": True}
    assert compounds["PC-spots"]["role"] == "positive_control" and compounds["PC-spots"]["ec50"] == 0.01
    assert truth["counts"] == {"fields": 28, "training_fields_per_class": {"control": 4, "translocation": 4,
                                                                          "spots": 4, "elongation": 4},
                               "treatment_fields": 12}
    assert truth["config"]["compounds"][0]["name"] == "CPD-01"


def test_written_pixels_are_the_pure_rendering(test_screen: Path) -> None:
    config = get_preset("test")
    rows = _rows(test_screen)
    for index in (0, 13, 27):
        field = plan_fields(config)[index]
        state, rendered = simulate_field(config, field)
        row = rows[index]
        assert (row["Metadata_Well"], int(row["Metadata_Site"])) == (field.well.well, field.site)
        assert float(row["Metadata_AffectedFraction"]) == pytest.approx(state.affected_fraction, abs=1e-9)
        for c, channel in enumerate(("nuclei", "cytoplasm")):
            assert np.array_equal(tifffile.imread(test_screen / row[f"Image_FileName_{channel}"]), rendered.image[c])


def test_deterministic_from_the_seed(test_screen: Path, tmp_path: Path) -> None:
    again = simulate_screen(get_preset("test"), tmp_path / "again", workers=2)
    assert _digest(again) == _digest(test_screen)  # same bytes, also with 2 worker processes
    other = simulate_screen(dataclasses.replace(get_preset("test"), seed=1), tmp_path / "other")
    a, b = _digest(test_screen), _digest(other)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".tif")) == 56


def test_existing_output_is_refused_or_replaced(tmp_path: Path) -> None:
    config = dataclasses.replace(get_preset("test"), phenotypes=("spots",), compounds=())
    out = simulate_screen(config, tmp_path / "raw")
    with pytest.raises(ConfigError, match="already holds a simulated screen"):
        simulate_screen(config, out)
    stale = out / "images" / "P01" / "stale.tif"
    stale.write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    progress = []
    simulate_screen(config, out, overwrite=True, progress=progress.append)
    assert not stale.exists() and (out / "notes.txt").read_text() == "mine"
    assert sum(progress) == 8 == len(_rows(out))
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        simulate_screen(config, tmp_path / "file")


def test_treatment_fractions_follow_the_hill_curve_across_a_screen(tmp_path: Path) -> None:
    """Averaged over a screen's fields, the written AffectedFraction tracks f(x) of each concentration."""
    # About 6 cells x 6 sites x 3 replicates = 108 cells per concentration: standard error <= 0.05.
    config = dataclasses.replace(get_preset("test"), cells_per_field=6.0, sites=6, replicates=3, plates=3,
                                 negative_control_wells=0, positive_control_wells=0)
    rows = _rows(simulate_screen(config, tmp_path / "hill"))
    for compound in config.compounds:
        for concentration in config.concentrations:
            shares = [float(r["Metadata_AffectedFraction"]) for r in rows if r["Metadata_Compound"] == compound.name
                      and float(r["Metadata_Concentration"]) == concentration]
            assert len(shares) == 18
            expected = hill_fraction(concentration, compound.ec50, compound.hill_slope)
            assert np.mean(shares) == pytest.approx(expected, abs=0.15)
