"""The ``simulated`` dataset: the simulated-screen layout of docs/formats.md."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mcnn.datasets.imageio import write_tiff
from mcnn.errors import BadInputError, ConfigError
from tests.support import ROOT, run_script
from tests.support.prepared import check_prepared, read_index, run_prepare

CHANNELS = ("nuclei", "cytoplasm")
PHENOTYPES = ("control", "translocation", "spots")
#: (well, compound, concentration uM, role, phenotype) of each plate of the fixture screen.
WELLS = [("B02", "DMSO", 0.0, "negative_control", "control"), ("C02", "DMSO", 0.0, "negative_control", "control"),
         ("B03", "PC-translocation", 10.0, "positive_control", "translocation"),
         ("C03", "PC-translocation", 10.0, "positive_control", "translocation"),
         ("B04", "PC-spots", 10.0, "positive_control", "spots"),
         ("C04", "PC-spots", 10.0, "positive_control", "spots"),
         ("D02", "CPD-01", 0.1, "treatment", "translocation"), ("D03", "CPD-01", 1.0, "treatment", "translocation"),
         ("D04", "CPD-01", 10.0, "treatment", "translocation")]


def write_screen(raw: Path, plates: tuple[str, ...] = ("P01", "P02"), sites: int = 2,
                 extra_row: dict[str, str] | None = None) -> Path:
    """A minimal simulated screen in the documented layout (uint16 TIFFs, metadata.csv, ground_truth.json)."""
    rng = np.random.default_rng(0)
    rows = []
    for p, plate in enumerate(plates):
        for replicate, (well, compound, conc, role, phenotype) in enumerate(WELLS, start=1):
            for site in range(1, sites + 1):
                row = {"Metadata_Plate": plate, "Metadata_Well": well, "Metadata_Site": str(site),
                       "Metadata_Compound": compound, "Metadata_Concentration": f"{conc:g}",
                       "Metadata_Replicate": str(replicate), "Metadata_Role": role, "Metadata_Phenotype": phenotype,
                       "Metadata_AffectedFraction": "1" if role == "positive_control" else "0"}
                for c, channel in enumerate(CHANNELS):
                    rel = f"images/{plate}/{plate}_{well}_s{site}_{channel}.tif"
                    write_tiff(raw / rel, (rng.gamma(2.0, 200.0 * (1 + p + c), (64, 64)) + 100).astype(np.uint16))
                    row[f"Image_FileName_{channel}"] = rel
                rows.append(row)
    if extra_row:
        rows.append({**rows[-1], **extra_row})
    with open(raw / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    compounds = {c: {"phenotype": ph, "role": role, "ec50": None if c == "DMSO" else 1.0,
                     "hill_slope": None if c == "DMSO" else 2.0}
                 for _, c, _, role, ph in WELLS}
    truth = {"phenotypes": list(PHENOTYPES), "channels": list(CHANNELS), "image_size": {"height": 64, "width": 64},
             "seed": 0, "concentration_unit": "uM", "compounds": compounds}
    (raw / "ground_truth.json").write_text(json.dumps(truth, indent=1))
    return raw


def test_simulated_screen(tmp_path: Path) -> None:
    raw = write_screen(tmp_path / "raw")
    # per class: 2 plates x 2 wells x 2 sites = 8 fields; holdout_count(8) = 1 per class -> 21 / 3.
    # Dose set: the treatment wells, 2 plates x 3 wells x 2 sites = 12.
    run_prepare("simulated", raw, tmp_path / "out")
    check_prepared(tmp_path / "out", "simulated", CHANNELS, (64, 64), 3,
                   {"repeat_000": (21, 3), "repeat_001": (21, 3)}, per_class=[8, 8, 8], unlabelled={"dose": 12})
    rows = read_index(tmp_path / "out" / "dose_index.csv")
    assert sorted({float(r["Metadata_Concentration"]) for r in rows}) == [0.1, 1.0, 10.0]
    assert {r["Metadata_Phenotype"] for r in rows} == {"translocation"}
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["concentration_unit"] == "uM" and info["intensity"]["scope"] == "plate-dmso"
    norm = json.loads((tmp_path / "out" / "normalization.json").read_text())
    assert {p: v["images"] for p, v in norm["plates"].items()} == {"P01": 4, "P02": 4}  # 2 DMSO wells x 2 sites


def test_unknown_compound(tmp_path: Path) -> None:
    raw = write_screen(tmp_path / "raw", extra_row={"Metadata_Compound": "CPD-99", "Metadata_Site": "9"})
    with pytest.raises(BadInputError, match=r"^metadata.csv line 38: unknown compound 'CPD-99' \(not in "
                                            r"ground_truth.json\)$"):
        run_prepare("simulated", raw, tmp_path / "out")


def test_with_the_simulator(tmp_path: Path) -> None:
    res = run_script("data_prep/synthesize.py", "simulate", "--preset", "test", "--out", str(tmp_path / "raw"))
    assert res.returncode == 0, res.stderr
    truth = json.loads((tmp_path / "raw" / "ground_truth.json").read_text())
    run_prepare("simulated", tmp_path / "raw", tmp_path / "out", repeats=1)
    info = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert info["classes"] == truth["phenotypes"]
    assert info["labelled_per_class"] == truth["counts"]["training_fields_per_class"]
    assert info["unlabelled"]["dose"]["size"] == truth["counts"]["treatment_fields"]


def _synthesize_module():
    spec = importlib.util.spec_from_file_location("synthesize_script", ROOT / "data_prep" / "synthesize.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_missing_simulator_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    module = _synthesize_module()
    monkeypatch.setattr(module, "SIMULATOR", tmp_path / "no_simulator.py")
    with pytest.raises(ConfigError, match=r"^the phenotype simulator is not available"):
        module.simulate(["--out", str(tmp_path / "never")])
    assert not (tmp_path / "never").exists()
