"""Phenotypic activity and consistency (copairs mAP) of well profiles, and its BBBC021 summary column."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mcnn.errors import ConfigError
from mcnn.evaluate.activity import bh_qvalues, phenotypic_activity, treatment_activity
from mcnn.evaluate.profiles import feature_names
from mcnn.evaluate.summary import TableRow, summarize_run
from mcnn.tables import read_table

DIM = 16
FEATURES = feature_names("fc1", DIM)
#: (compound, concentration, shift direction or None): None is drawn like the controls.
TREATMENTS = [("cmpdA", 0.1, None), ("cmpdA", 10.0, 0), ("cmpdB", 1.0, 1), ("cmpdB", 10.0, 1),
              ("cmpdC", 1.0, None), ("cmpdC", 10.0, None)]
ACTIVE = {("cmpdA", 10.0), ("cmpdB", 1.0), ("cmpdB", 10.0)}


def profiles(rng: np.random.Generator, n: int, shift: int | None) -> np.ndarray:
    """``n`` profiles around a common base; ``shift`` moves them 6 noise SDs along axis 2 * shift + 1."""
    base = np.full(DIM, 1.0)
    x = base + rng.normal(size=(n, DIM))
    if shift is not None:
        x[:, 2 * shift + 1] += 6.0
    return x


def wells_frame(seed: int = 0, controls: int = 24, replicates: int = 4) -> object:
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows, feats = [], []
    for i in range(controls):
        rows.append({"Metadata_Plate": f"P{i % 2}", "Metadata_Well": f"A{i:02d}", "Metadata_Compound": "DMSO",
                     "Metadata_Concentration": "0", "Metadata_Role": "negative_control"})
    feats.append(profiles(rng, controls, None))
    for t, (compound, conc, shift) in enumerate(TREATMENTS):
        for r in range(replicates):
            rows.append({"Metadata_Plate": f"P{r % 2}", "Metadata_Well": f"B{t:02d}{r}", "Metadata_Compound": compound,
                         "Metadata_Concentration": str(conc), "Metadata_Role": "treatment"})
        feats.append(profiles(rng, replicates, shift))
    frame = pd.DataFrame(rows)
    frame[FEATURES] = np.concatenate(feats)
    return frame


def test_active_treatments_score_high_and_pass_fdr(tmp_path: Path) -> None:
    result = phenotypic_activity(wells_frame(), tmp_path, null_size=5000, seed=0)
    assert result.control_wells == 24
    by_key = {(r["Metadata_Compound"], r["Metadata_Concentration"]): r for r in result.activity}
    assert list(by_key) == [(c, x) for c, x, _ in TREATMENTS]
    for key, row in by_key.items():
        assert row["n_wells"] == 4
        if key in ACTIVE:
            assert row["mAP"] > 0.95 and row["q_value"] < 0.005 and row["active"], (key, row)
        else:
            assert row["mAP"] < 0.35 and row["q_value"] > 0.2 and not row["active"], (key, row)
    # seed fixed: every query ranks its 3 replicates first but one, which ranks its third fifth: (1 + 1 + 3/5) / 3
    assert by_key[("cmpdB", 10.0)]["mAP"] == pytest.approx(0.9 + 2 / 30)
    # a perfect ranking gets the smallest p-value a permutation test of 5000 can give
    assert by_key[("cmpdA", 10.0)]["mAP"] == 1.0 and by_key[("cmpdA", 10.0)]["p_value"] == pytest.approx(1 / 5001)
    table = read_table(result.activity_csv)
    assert list(table.columns) == ["Metadata_Compound", "Metadata_Concentration", "n_wells", "mAP", "p_value",
                                   "q_value", "active"]
    assert [r["active"] for r in table.rows] == ["False", "True", "True", "True", "False", "False"]
    assert result.figure.stat().st_size > 5000


def test_consistency_groups_a_compound_across_concentrations(tmp_path: Path) -> None:
    result = phenotypic_activity(wells_frame(seed=1), tmp_path, null_size=5000, seed=0)
    by_compound = {r["Metadata_Compound"]: r for r in result.consistency}
    assert set(by_compound) == {"cmpdA", "cmpdB", "cmpdC"}  # DMSO is no compound here
    b, c = by_compound["cmpdB"], by_compound["cmpdC"]
    assert (b["n_wells"], b["n_concentrations"]) == (8, 2)
    assert b["mAP"] > 0.95 and b["q_value"] < 0.005 and b["consistent"]
    assert c["mAP"] < 0.45 and c["q_value"] > 0.2 and not c["consistent"]
    assert read_table(result.consistency_csv).rows[1]["Metadata_Compound"] == "cmpdB"


def test_the_wells_parquet_is_read_with_its_metadata_as_text(tmp_path: Path) -> None:
    frame = wells_frame()
    frame["Metadata_Role"] = ""  # controls found by compound name alone
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "wells.parquet")
    result = phenotypic_activity(tmp_path / "wells.parquet", tmp_path / "out", null_size=2000)
    assert result.control_wells == 24
    assert {(r["Metadata_Compound"], r["Metadata_Concentration"]) for r in result.activity if r["active"]} == ACTIVE


def test_without_controls_or_replicates_it_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = wells_frame()
    no_controls = frame[frame["Metadata_Compound"] != "DMSO"]
    with pytest.raises(ConfigError, match="wells: no negative-control wells"):
        phenotypic_activity(no_controls, tmp_path, null_size=100)
    singles = frame.drop_duplicates(["Metadata_Compound", "Metadata_Concentration"])
    with pytest.raises(ConfigError, match="every treatment has a single well"):
        phenotypic_activity(singles, tmp_path, null_size=100)
    assert not (tmp_path / "activity.csv").exists()
    monkeypatch.setitem(sys.modules, "copairs.map", None)
    with pytest.raises(ConfigError, match=r"needs the 'screen' extra: pip install 'mcnn\[screen\]'"):
        phenotypic_activity(frame, tmp_path, null_size=100)


def test_bh_qvalues_match_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(3).uniform(0, 0.2, 40)
    np.testing.assert_allclose(bh_qvalues(p), multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    assert bh_qvalues([]).size == 0


def field_rows(compound: str, conc: float, wells: int, moa: str, start: int) -> list[dict[str, str]]:
    return [{"Metadata_Plate": "P1", "Metadata_Well": f"W{start + w}", "Metadata_Compound": compound,
             "Metadata_Concentration": str(conc), "Metadata_MoA": moa} for w in range(wells) for _ in range(2)]


def test_treatment_activity_of_a_held_out_compound_against_dmso() -> None:
    rng = np.random.default_rng(5)
    rows = field_rows("taxol", 0.01, 3, "Microtubule stabilizers", 0) + \
        field_rows("taxol", 1.0, 3, "Microtubule stabilizers", 3)
    vectors = np.concatenate([profiles(rng, 6, None), profiles(rng, 6, 2)])
    control_rows = field_rows("DMSO", 0.0, 16, "", 100)
    entries = treatment_activity(rows, vectors, control_rows, profiles(rng, 32, None), null_size=2000)
    assert [(e["compound"], e["concentration"], e["wells"], e["moa"]) for e in entries] == [
        ("taxol", 0.01, 3, "Microtubule stabilizers"), ("taxol", 1.0, 3, "Microtubule stabilizers")]
    low, high = entries
    assert high["map"] == pytest.approx(1.0) and high["p_value"] < 0.01
    assert low["map"] < 0.6 and low["p_value"] > 0.05


def test_the_bbbc021_summary_carries_the_activity_beside_nsc(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    folds = {"taxol": [("Microtubule stabilizers", 0.9, 0.001), ("Microtubule stabilizers", 0.3, 0.4)],
             "AZ138": [("Eg5 inhibitors", 0.8, 0.002), ("Eg5 inhibitors", 0.7, 0.01)]}
    for name, entries in folds.items():
        (runs / name).mkdir(parents=True)
        activity = [{"compound": name, "concentration": float(i), "moa": moa, "map": m, "p_value": p}
                    for i, (moa, m, p) in enumerate(entries)]
        metrics = {"confusion": [[1, 0], [0, 1]], "accuracy": 1.0, "seconds": 10.0, "engine": "torch",
                   "hardware": "CPU", "profiling": {"NSC": [], "NSCB": [], "activity": activity}}
        (runs / name / "metrics.json").write_text(json.dumps(metrics))
    summary = summarize_run(tmp_path, runs, "bbbc021", "loco", "mcnn", list(folds), ["a", "b"])
    # q over all four: p = .001 .4 .002 .01 -> .004 .4 .004 .0133; three of four below 0.05
    assert summary["activity"] == {"treatments": 4, "mean_map": pytest.approx(0.675), "active_fraction": 0.75,
                                   "threshold": 0.05}
    (row,) = read_table(tmp_path / "results.csv").rows
    assert (row["map_activity"], row["map_active_pct"]) == ("0.675", "75.0")
    assert TableRow.from_csv(row).map_activity == 0.675
    pooled = read_table(tmp_path / "activity_mcnn.csv").rows
    assert [float(r["q_value"]) for r in pooled] == pytest.approx([0.004, 0.4, 0.004, 0.04 / 3])
    old = {k: v for k, v in row.items() if not k.startswith("map_")}  # a results.csv from before the column
    assert TableRow.from_csv(old).map_activity is None
