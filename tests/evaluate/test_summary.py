"""The Table 1 summary record: results.csv columns, results.md cells, published values by architecture."""

from __future__ import annotations

from pathlib import Path

from mcnn.evaluate.paper import TABLE1
from mcnn.evaluate.summary import MD_COLUMNS, TableRow, table_row, write_results
from mcnn.tables import read_table

STAT = {"n": 2, "mean": 0.75, "sd": 0.25, "median": 0.75, "mad": 0.25}


def test_published_values_are_keyed_by_architecture() -> None:
    assert TABLE1["hela"].arch("googlenet") == (92, 3)
    assert TABLE1["bbbc021"].arch("mcnn") == (100, 13)
    assert TABLE1["hela"].arch("resnet") is None


def test_a_row_of_an_architecture_the_paper_did_not_test_shows_n_a(tmp_path: Path) -> None:
    row = table_row("hela", "resnet", STAT, 2, 3, 7200.0, ["torch"], ["CPU x"])
    assert (row.statistic, row.ours, row.ours_sd, row.published, row.published_sd) == ("mean", 75.0, 25.0, None, None)
    assert row.benchmark == "95 (Chebira et al. 2007)" and row.wall_time_h == 2.0
    write_results(tmp_path, row, {"protocol": "cv"})
    (line,) = [li for li in (tmp_path / "results.md").read_text().splitlines() if li.startswith("| resnet")]
    assert line.split(" | ")[2:4] == ["75.0 (25.0)", "n/a"]


def test_results_csv_columns_are_the_record_fields_and_survive_a_rewrite(tmp_path: Path) -> None:
    googlenet = table_row("bbbc013", "googlenet", STAT, 2, 2, 36.0, ["torch"], ["CPU"])
    mcnn = table_row("bbbc013", "mcnn", None, 0, 2, 0.0, [], [])
    write_results(tmp_path, googlenet, {})
    write_results(tmp_path, mcnn, {})
    table = read_table(tmp_path / "results.csv")
    assert list(table.columns) == TableRow.columns()
    assert [r["architecture"] for r in table.rows] == ["mcnn", "googlenet"]  # the registry's order
    assert table.rows[1]["published"] == "50" and table.rows[1]["ours"] == "75.0" and table.rows[0]["ours"] == ""
    text = (tmp_path / "results.csv").read_text(), (tmp_path / "results.md").read_text()
    write_results(tmp_path, TableRow.from_csv(table.rows[0]), {})  # the same row again: nothing changes
    assert ((tmp_path / "results.csv").read_text(), (tmp_path / "results.md").read_text()) == text
    header = next(li for li in text[1].splitlines() if li.startswith("| architecture"))
    assert header == "| " + " | ".join(h for h, _ in MD_COLUMNS) + " |"
    assert "| mcnn | median | n/a | 100 (0) | 99 (CP-CHARM) | n/a | n/a | n/a | 0/2 |" in text[1]
