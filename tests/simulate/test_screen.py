"""simulate_screen writes exactly the generic screen format of docs/formats.md ("A simulated screen")."""

from __future__ import annotations

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
from tests.simulate.support import header, read_rows

LOAD_DATA_COLUMNS = [
    "Metadata_Plate", "Metadata_Well", "Metadata_Site",
    "FileName_nuclei", "PathName_nuclei", "FileName_cytoplasm", "PathName_cytoplasm",
]
PLATEMAP_COLUMNS = [
    "Metadata_Plate", "Metadata_Well", "Metadata_Compound", "Metadata_Concentration", "Metadata_ConcentrationUnit",
    "Metadata_Replicate", "Metadata_Role", "Metadata_Phenotype",
]
TRUTH_COLUMNS = ["Metadata_Plate", "Metadata_Well", "Metadata_Site", "Metadata_AffectedFraction",
                 "Metadata_TruePhenotype"]


def _digest(screen: Path) -> dict[str, str]:
    return {str(p.relative_to(screen)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(screen.rglob("*")) if p.is_file()}


def _truth(screen: Path) -> dict:
    return json.loads((screen / "ground_truth.json").read_text(encoding="utf-8"))


def test_file_layout_and_load_data(test_screen: Path) -> None:
    assert header(test_screen / "load_data.csv") == LOAD_DATA_COLUMNS
    rows = read_rows(test_screen / "load_data.csv")
    assert len(rows) == 28
    images = set()
    for row in rows:
        plate, well, site = row["Metadata_Plate"], row["Metadata_Well"], row["Metadata_Site"]
        for channel in ("nuclei", "cytoplasm"):
            assert row[f"PathName_{channel}"] == f"images/{plate}"
            assert row[f"FileName_{channel}"] == f"{plate}_{well}_s{site}_{channel}.tif"
            path = test_screen / row[f"PathName_{channel}"] / row[f"FileName_{channel}"]
            assert path.is_file()
            images.add(str(path.relative_to(test_screen)))
    files = {str(p.relative_to(test_screen)) for p in test_screen.rglob("*") if p.is_file()}
    assert files == {"load_data.csv", "platemap.csv", "ground_truth_fields.csv", "ground_truth.json"} | images
    assert len(images) == 56
    assert (rows[0]["Metadata_Well"], rows[0]["Metadata_Site"], rows[1]["Metadata_Site"]) == ("A01", "1", "2")
    image = tifffile.imread(test_screen / "images" / "P01" / rows[0]["FileName_cytoplasm"])
    assert image.dtype == np.uint16 and image.shape == (64, 64)


def test_platemap_one_row_per_well(test_screen: Path) -> None:
    assert header(test_screen / "platemap.csv") == PLATEMAP_COLUMNS
    wells = read_rows(test_screen / "platemap.csv")
    fields = read_rows(test_screen / "load_data.csv")
    keys = [(w["Metadata_Plate"], w["Metadata_Well"]) for w in wells]
    assert len(keys) == len(set(keys)) == 14
    assert set(keys) == {(f["Metadata_Plate"], f["Metadata_Well"]) for f in fields}
    truth = _truth(test_screen)
    for well in wells:
        assert well["Metadata_ConcentrationUnit"] == "uM"
        assert well["Metadata_Role"] == truth["compounds"][well["Metadata_Compound"]]["role"]
        if well["Metadata_Role"] == "negative_control":
            assert (well["Metadata_Compound"], well["Metadata_Concentration"], well["Metadata_Phenotype"]) == \
                ("DMSO", "0", "control")
        elif well["Metadata_Role"] == "positive_control":
            assert well["Metadata_Compound"] == f"PC-{well['Metadata_Phenotype']}"
            assert float(well["Metadata_Concentration"]) == 10.0
        else:
            assert well["Metadata_Role"] == "treatment"
            assert well["Metadata_Phenotype"] == ""  # the truth of treatments is not plate-map information
    classes = list(dict.fromkeys(w["Metadata_Phenotype"] for w in wells if w["Metadata_Phenotype"]))
    assert classes == truth["phenotypes"] == ["control", "translocation", "spots", "elongation"]
    assert [(w["Metadata_Well"], w["Metadata_Concentration"], w["Metadata_Replicate"]) for w in wells
            if w["Metadata_Compound"] == "CPD-01"] == [("A02", "0.1", "1"), ("B02", "1", "1"), ("C02", "10", "1")]
    assert [w["Metadata_Replicate"] for w in wells if w["Metadata_Compound"] == "DMSO"] == ["1", "2"]


def test_field_ground_truth(test_screen: Path) -> None:
    assert header(test_screen / "ground_truth_fields.csv") == TRUTH_COLUMNS
    rows = read_rows(test_screen / "ground_truth_fields.csv")
    fields = read_rows(test_screen / "load_data.csv")
    key = ("Metadata_Plate", "Metadata_Well", "Metadata_Site")
    assert [[r[k] for k in key] for r in rows] == [[f[k] for k in key] for f in fields]
    roles = {(w["Metadata_Plate"], w["Metadata_Well"]): w for w in read_rows(test_screen / "platemap.csv")}
    compounds = _truth(test_screen)["compounds"]
    for row in rows:
        well = roles[row["Metadata_Plate"], row["Metadata_Well"]]
        fraction = float(row["Metadata_AffectedFraction"])
        assert 0.0 <= fraction <= 1.0
        assert row["Metadata_TruePhenotype"] == compounds[well["Metadata_Compound"]]["phenotype"]
        if well["Metadata_Role"] == "negative_control":
            assert fraction == 0.0 and row["Metadata_TruePhenotype"] == "control"
        elif well["Metadata_Role"] == "positive_control":
            assert fraction == 1.0 and row["Metadata_TruePhenotype"] == well["Metadata_Phenotype"]
    assert {r["Metadata_TruePhenotype"] for r in rows if roles[r["Metadata_Plate"], r["Metadata_Well"]]
            ["Metadata_Role"] == "treatment"} == {"translocation", "spots"}


def test_ground_truth(test_screen: Path) -> None:
    truth = _truth(test_screen)
    assert truth["phenotypes"] == ["control", "translocation", "spots", "elongation"]
    assert truth["channels"] == ["nuclei", "cytoplasm"]
    assert truth["image_size"] == {"height": 64, "width": 64}
    assert truth["seed"] == 0 and truth["preset"] == "test" and truth["concentration_unit"] == "uM"
    assert truth["format"] == "mcnn-simulated-screen" and truth["format_version"] == 2
    assert (truth["image_table"], truth["platemap"], truth["field_truth"]) == \
        ("load_data.csv", "platemap.csv", "ground_truth_fields.csv")
    assert truth["ome_zarr_plates"] == []
    assert truth["prepare"] == {"label_column": "Metadata_Phenotype",
                                "negative_control": "Metadata_Role=negative_control",
                                "positive_control": "Metadata_Role=positive_control", "unit": "uM"}
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
    rows = read_rows(test_screen / "load_data.csv")
    truth = read_rows(test_screen / "ground_truth_fields.csv")
    for index in (0, 13, 27):
        field = plan_fields(config)[index]
        state, rendered = simulate_field(config, field)
        row = rows[index]
        assert (row["Metadata_Well"], int(row["Metadata_Site"])) == (field.well.well, field.site)
        assert float(truth[index]["Metadata_AffectedFraction"]) == pytest.approx(state.affected_fraction, abs=1e-9)
        for c, channel in enumerate(("nuclei", "cytoplasm")):
            image = tifffile.imread(test_screen / row[f"PathName_{channel}"] / row[f"FileName_{channel}"])
            assert np.array_equal(image, rendered.image[c])


def test_deterministic_from_the_seed(test_screen: Path, tmp_path: Path) -> None:
    again = simulate_screen(get_preset("test"), tmp_path / "again", workers=2)
    assert _digest(again) == _digest(test_screen)  # same bytes, also with 2 worker processes
    other = simulate_screen(dataclasses.replace(get_preset("test"), seed=1), tmp_path / "other")
    a, b = _digest(test_screen), _digest(other)
    assert a.keys() == b.keys()
    assert sum(a[k] != b[k] for k in a if k.endswith(".tif")) == 56
    assert a["load_data.csv"] == b["load_data.csv"] and a["platemap.csv"] == b["platemap.csv"]
    assert a["ground_truth_fields.csv"] != b["ground_truth_fields.csv"]


def test_existing_output_is_refused_or_replaced(tmp_path: Path) -> None:
    config = dataclasses.replace(get_preset("test"), phenotypes=("spots",), compounds=())
    out = simulate_screen(config, tmp_path / "raw")
    with pytest.raises(ConfigError, match=r"already holds a simulated screen \(ground_truth.json, load_data.csv"):
        simulate_screen(config, out)
    stale = out / "images" / "P01" / "stale.tif"
    stale.write_bytes(b"x")
    (out / "metadata.csv").write_text("format 1")  # what an older simulator wrote
    (out / "plates" / "P01.ome.zarr").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    progress = []
    simulate_screen(config, out, overwrite=True, progress=progress.append)
    assert not stale.exists() and not (out / "metadata.csv").exists() and not (out / "plates").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert sum(progress) == 8 == len(read_rows(out / "load_data.csv"))
    assert len(read_rows(out / "platemap.csv")) == 4
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "metadata.csv").write_text("format 1")
    with pytest.raises(ConfigError, match=r"already holds a simulated screen \(metadata.csv\)"):
        simulate_screen(config, legacy)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        simulate_screen(config, tmp_path / "file")


def test_treatment_fractions_follow_the_hill_curve_across_a_screen(tmp_path: Path) -> None:
    """Averaged over a screen's fields, the written AffectedFraction tracks f(x) of each concentration."""
    # About 6 cells x 6 sites x 3 replicates = 108 cells per concentration: standard error <= 0.05.
    config = dataclasses.replace(get_preset("test"), cells_per_field=6.0, sites=6, replicates=3, plates=3,
                                 negative_control_wells=0, positive_control_wells=0)
    out = simulate_screen(config, tmp_path / "hill")
    wells = {(w["Metadata_Plate"], w["Metadata_Well"]): w for w in read_rows(out / "platemap.csv")}
    rows = [(wells[r["Metadata_Plate"], r["Metadata_Well"]], float(r["Metadata_AffectedFraction"]))
            for r in read_rows(out / "ground_truth_fields.csv")]
    for compound in config.compounds:
        for concentration in config.concentrations:
            shares = [share for well, share in rows if well["Metadata_Compound"] == compound.name
                      and float(well["Metadata_Concentration"]) == concentration]
            assert len(shares) == 18
            expected = hill_fraction(concentration, compound.ec50, compound.hill_slope)
            assert np.mean(shares) == pytest.approx(expected, abs=0.15)
