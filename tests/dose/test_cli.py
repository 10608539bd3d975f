"""tools/dose_response.py end to end on synthetic predictions CSVs in the formats.md layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mcnn.cli import run
from mcnn.dose.outputs import EC50_COLUMNS, POINT_COLUMNS
from tests.dose.synth import CONCENTRATIONS, INDEX_COLUMNS, write_predictions
from tests.support import run_script
from tests.support.scripts import load_script

PNG = b"\x89PNG\r\n\x1a\n"
TWO_CLASS = {"Wortmannin": (-1.5, 0.02, 0.97, 0.5), "LY294002": (-1.0, 0.0, 0.9, 3.0), "Inert": (-1.0, 0.1, 0.1, 1.0)}


def load_tool():
    return load_script("tools/dose_response.py", "dose_response_tool")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_training_index(predictions: Path, path: Path, concentrations: set[str]) -> Path:
    """An index CSV (no prediction columns) holding the rows of ``predictions`` at ``concentrations``."""
    rows = [r for r in read_csv(predictions) if r["Metadata_Concentration"] in concentrations]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_two_class_predictions(tmp_path: Path) -> None:
    preds = write_predictions(tmp_path / "preds.csv", TWO_CLASS, noise=0.03, seed=5)
    top = {f"{c:g}" for c in CONCENTRATIONS[-2:]}
    train = write_training_index(preds, tmp_path / "train_index.csv", top)
    (tmp_path / "dataset.json").write_text(json.dumps({"dataset": "synthetic", "concentration_unit": "µM"}))
    out = tmp_path / "dose"
    proc = run_script("tools/dose_response.py", "--predictions", str(preds), "--out", str(out), "--training-index",
                    str(train), "--dataset-json", str(tmp_path / "dataset.json"))
    assert proc.returncode == 0, proc.stderr
    assert "3 group(s) x 1 class(es): flat 1, ok 2" in proc.stderr

    rows = read_csv(out / "ec50.csv")
    assert list(rows[0]) == ["Metadata_Compound", *EC50_COLUMNS]
    by_name = {r["Metadata_Compound"]: r for r in rows}
    assert set(by_name) == set(TWO_CLASS)  # DMSO wells are controls, not a curve
    for name in ("Wortmannin", "LY294002"):
        r = by_name[name]
        true_ec50 = TWO_CLASS[name][3]
        assert r["status"] == "ok" and r["class"] == "positive" and r["unit"] == "µM"
        assert float(r["ec50_ci_low"]) <= true_ec50 <= float(r["ec50_ci_high"])
        assert float(r["ec50"]) == pytest.approx(true_ec50, rel=0.25)
        assert float(r["hill_slope"]) == pytest.approx(-TWO_CLASS[name][0], rel=0.3)
        assert r["n_replicates_min"] == r["n_replicates_max"] == "3" and r["n_concentrations"] == "8"
        assert [float(v) for v in r["training_concentrations"].split(";")] == pytest.approx(CONCENTRATIONS[-2:])
    inert = by_name["Inert"]
    assert inert["status"] == "flat" and inert["ec50"] == "" and inert["hill_slope"] == "" and inert["message"]

    doc = json.loads((out / "ec50.json").read_text())
    assert doc["mad"]["scale"] == 1.0 and "median(|r - median(r)|)" in doc["mad"]["definition"]
    assert doc["classes"] == ["negative", "positive"] and doc["fitted_classes"] == ["positive"]
    assert doc["unit"] == "µM" and doc["group_columns"] == ["Metadata_Compound"]
    assert set(doc["statuses"]) >= {"ok", "flat", "no_plateau", "ec50_outside_range", "too_few_concentrations"}
    entry = next(e for e in doc["results"] if e["group"] == {"Metadata_Compound": "Wortmannin"})
    assert {"ec50", "ec50_se", "ec50_ci_low", "ec50_ci_high", "log10_ec50", "hill_slope", "bottom", "top",
            "r_squared", "f_statistic", "f_pvalue", "status", "message", "curve", "points", "control",
            "training_concentrations"} <= set(entry)
    assert set(entry["curve"]) == {"b", "c", "d", "e"} and len(entry["points"]) == 8
    assert [p["training"] for p in entry["points"]] == [False] * 6 + [True] * 2
    assert entry["control"]["n_replicates"] == 6  # 2 DMSO wells on each of the 3 plates
    flat = next(e for e in doc["results"] if e["group"] == {"Metadata_Compound": "Inert"})
    assert flat["ec50"] is None and flat["curve"] is None

    points = read_csv(out / "points.csv")
    assert list(points[0]) == ["Metadata_Compound", *POINT_COLUMNS]
    assert len(points) == 3 * (8 + 1) * 2  # groups x (doses + control) x classes
    assert {p["training"] for p in points if p["Metadata_Compound"] == "Wortmannin"} == {"0", "1"}

    pngs = sorted(p.name for p in (out / "plots").iterdir())
    assert pngs == ["inert.png", "ly294002.png", "wortmannin.png"]
    for png in [*(out / "plots").iterdir(), out / "overview.png"]:
        data = png.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000


def test_multiclass_predictions(tmp_path: Path) -> None:
    classes = ("DMSO", "MD", "KI", "DD")
    compounds = {"Nocodazole": (-1.5, 0.02, 0.95, 0.05), "Alsterpaullone": (-1.0, 0.0, 0.9, 1.0)}
    preds = write_predictions(tmp_path / "preds.csv", compounds, classes, noise=0.03, seed=7,
                              target={"Nocodazole": 1, "Alsterpaullone": 2}, sites=2)
    out = tmp_path / "dose"
    tool = load_tool()  # in-process: the 2-class test covers the command line itself
    args = tool.get_args_parser().parse_args(["--predictions", str(preds), "--out", str(out), "--unit", "uM",
                                              "--fit-to", "replicates"])
    assert tool.main(args) == 0
    rows = read_csv(out / "ec50.csv")
    assert [(r["Metadata_Compound"], r["class"]) for r in rows] == [
        (c, k) for c in ("Alsterpaullone", "Nocodazole") for k in classes]
    status = {(r["Metadata_Compound"], r["class"]): r["status"] for r in rows}
    assert status[("Nocodazole", "MD")] == status[("Nocodazole", "DMSO")] == "ok"
    assert status[("Alsterpaullone", "KI")] == "ok" and status[("Alsterpaullone", "DD")] == "flat"
    md = next(r for r in rows if (r["Metadata_Compound"], r["class"]) == ("Nocodazole", "MD"))
    assert float(md["ec50_ci_low"]) <= 0.05 <= float(md["ec50_ci_high"]) and md["fit_to"] == "replicates"
    assert int(md["df_residual"]) == 8 * 3 - 4
    doc = json.loads((out / "ec50.json").read_text())
    assert doc["fitted_classes"] == list(classes) and len(doc["results"]) == 8
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["alsterpaullone.png", "nocodazole.png"]
    assert (out / "overview.png").read_bytes().startswith(PNG)


def test_bad_input_fails_with_one_line(tmp_path: Path) -> None:
    preds = write_predictions(tmp_path / "preds.csv", {"A": (-1.0, 0.0, 1.0, 1.0)}, sites=1, replicates=2)
    out = tmp_path / "dose"
    proc = run_script("tools/dose_response.py", "--predictions", str(preds), "--out", str(out), "--class", "MD")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert f"dose_response: error: {preds}: no column 'prob_MD' for --class 'MD'" in proc.stderr
    assert not out.exists()


def _break(path: Path, column: str, value: str | None) -> Path:
    rows = read_csv(path)
    fields = [c for c in rows[0] if c != column or value is not None]
    for row in rows:
        if value is not None and row["Metadata_Compound"] == "A":
            row[column] = value
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("Metadata_Concentration", None, "no column 'Metadata_Concentration'"),
        ("Metadata_Concentration", "ten", "line 2: column 'Metadata_Concentration': 'ten' is not a number"),
        ("prob_positive", "x", "line 2: column 'prob_positive': 'x' is not a number"),
        ("Metadata_Compound", None, "no column 'Metadata_Compound' (--group)"),
    ],
)
def test_input_errors_name_file_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str], column: str,
                                           value: str | None, message: str) -> None:
    preds = _break(write_predictions(tmp_path / "p.csv", {"A": (-1.0, 0.0, 1.0, 1.0)}, sites=1), column, value)
    tool = load_tool()
    args = tool.get_args_parser().parse_args(["--predictions", str(preds), "--out", str(tmp_path / "o")])
    assert run("dose_response", lambda: tool.main(args)) == 2
    err = capsys.readouterr().err
    assert err == f"dose_response: error: {preds}: {message}\n"


def test_no_probability_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preds = write_predictions(tmp_path / "p.csv", {"A": (-1.0, 0.0, 1.0, 1.0)}, sites=1)
    for column in ("prob_negative", "prob_positive"):
        _break(preds, column, None)
    tool = load_tool()
    args = tool.get_args_parser().parse_args(["--predictions", str(preds), "--out", str(tmp_path / "o")])
    assert run("dose_response", lambda: tool.main(args)) == 2
    assert "no probability columns" in capsys.readouterr().err
