"""Your own screen end to end, by the README's commands: a simulated screen as LoadData table + plate
map and as OME-Zarr plates, prepared to the same records, trained, every field predicted, profiles
that pycytominer reads, phenotypic activity from copairs and dose-response fits.

The planted answers (active compounds above inactive ones, EC50s within 0.3 log10) need a model
trained for minutes: tests/test_demo.py checks them on the same path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support import run_script
from tests.support.screens import assert_same_records

FLAGS = ["--label-column", "Metadata_Phenotype", "--negative-control", "Metadata_Role=negative_control",
         "--positive-control", "Metadata_Role=positive_control", "--repeats", "1", "--quiet"]


@pytest.mark.slow
def test_simulated_screen_through_both_inputs_to_every_output(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pycytominer = pytest.importorskip("pycytominer")
    raw = tmp_path / "raw"
    sim = run_script("tools/simulate.py", "--preset", "small", "--size", "64", "--ome-zarr", "--out", raw)
    assert sim.returncode == 0, sim.stderr
    csv_data, zarr_data = tmp_path / "data_csv", tmp_path / "data_zarr"
    for images, data in ((raw / "load_data.csv", csv_data), (raw / "plates", zarr_data)):
        out = run_script("data_prep/prepare.py", "screen", "--images", images, "--platemap", raw / "platemap.csv",
                         *FLAGS, "--out", data)
        assert out.returncode == 0, out.stderr
    # the two routes give the same LMDB records, so the same model: train once, on the OME-Zarr route
    assert assert_same_records(csv_data, zarr_data) > 0
    runs = tmp_path / "runs"
    out = run_script("tools/reproduce.py", "screen", "--data", zarr_data, "--out", runs, "--epochs", "1",
                     "--scales", "1..16", "--profiles-csv", "--quiet")
    assert out.returncode == 0, out.stderr
    screen = runs / "screen_mcnn"
    truth = json.loads((raw / "ground_truth.json").read_text())
    fields = pd.read_parquet(screen / "fields.parquet")
    assert len(fields) == truth["counts"]["fields"] == 160
    probs = fields[[c for c in fields.columns if c.startswith("prob_")]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    features = [c for c in fields.columns if c.startswith("MCNN_")]
    assert len(features) > 8
    as_csv = pd.read_csv(screen / "fields.csv")  # --profiles-csv: the same profiles as CSV
    assert list(as_csv.columns) == list(fields.columns)
    assert np.allclose(as_csv[features].to_numpy(), fields[features].to_numpy(), rtol=1e-6)
    # pycytominer: its own per-well median equals ours; its normalisation runs on our wells
    wells = pd.read_parquet(screen / "wells.parquet")
    assert len(pd.read_csv(screen / "wells.csv")) == len(wells)
    theirs = pycytominer.aggregate(fields, strata=["Metadata_Plate", "Metadata_Well"], features=features,
                                   operation="median").sort_values(["Metadata_Plate", "Metadata_Well"])
    ours = wells.sort_values(["Metadata_Plate", "Metadata_Well"])
    assert len(ours) == 80 and np.allclose(ours[features].to_numpy(), theirs[features].to_numpy(), atol=1e-5)
    normalized = pycytominer.normalize(wells, features=features, meta_features=[c for c in wells.columns
                                                                                if c.startswith("Metadata_")],
                                       samples="Metadata_Role == 'negative_control'", method="standardize")
    controls = normalized[normalized["Metadata_Role"] == "negative_control"][features].to_numpy()
    assert np.allclose(controls.mean(axis=0)[controls.std(axis=0) > 0], 0, atol=1e-6)
    # copairs: one mAP per treatment (3 compounds x 8 concentrations, 3 positive controls), p and q in [0, 1]
    activity = pd.read_csv(screen / "activity.csv")
    assert len(activity) == 27 and activity["mAP"].between(0, 1).all() and activity["q_value"].between(0, 1).all()
    assert (screen / "activity.png").stat().st_size > 5000
    ec50 = json.loads((screen / "dose" / "ec50.json").read_text())
    assert {r["group"]["Metadata_Compound"] for r in ec50["results"]} == {"CPD-01", "CPD-02", "CPD-03"}
    assert "control" not in {r["class"] for r in ec50["results"]}
