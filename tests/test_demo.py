"""The demo end to end, in a small configuration: an M-CNN trained on the simulator's controls
recovers the planted EC50s (issue 6's acceptance; the full demo reports the same comparison)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mcnn.demo import TOLERANCE_LOG10, compare_ec50
from tests.support import run_script


@pytest.mark.slow
def test_small_demo_recovers_the_planted_ec50s(tmp_path: Path) -> None:
    # 96x96 fields, translocation and spots only: about 2 minutes on 2 cores.
    args = ["--out", str(tmp_path / "demo"), "--size", "96", "--phenotypes", "translocation,spots", "--epochs", "16",
            "--quiet"]
    out = run_script("tools/demo.py", *args)
    assert out.returncode == 0, out.stderr[-3000:]
    demo = tmp_path / "demo"
    recoveries = compare_ec50(demo / "raw" / "ground_truth.json", demo / "screen_mcnn" / "dose" / "ec50.json")
    in_range = [r for r in recoveries if r.in_range]
    assert [r.compound for r in in_range] == ["CPD-01", "CPD-02", "CPD-03"]
    for r in in_range:
        assert r.status == "ok", r
        assert abs(r.log10_error) <= TOLERANCE_LOG10, r
        assert r.ci_low <= r.estimate <= r.ci_high
    (outside,) = [r for r in recoveries if not r.in_range]  # CPD-04: EC50 100 uM, above the tested 30 uM
    assert outside.status != "ok" and outside.recovered
    # phenotypic activity (copairs): the planted active treatments stand apart from DMSO, the inactive ones don't
    truth = json.loads((demo / "raw" / "ground_truth.json").read_text())["compounds"]
    with open(demo / "screen_mcnn" / "activity.csv", newline="") as handle:
        activity = [r for r in csv.DictReader(handle) if truth[r["Metadata_Compound"]]["role"] == "treatment"]
    planted = [(r, float(r["Metadata_Concentration"]) / truth[r["Metadata_Compound"]]["ec50"]) for r in activity]
    active = [r for r, ratio in planted if ratio >= 3]
    inactive = [r for r, ratio in planted if ratio <= 0.1]
    assert len(active) >= 6 and len(inactive) >= 6
    assert all(r["active"] == "True" for r in active), active
    # q < 0.05 admits a false discovery now and then (one seen among 32: CPD-04 at 10 uM, 1 % of cells changed)
    assert sum(r["active"] == "True" for r in inactive) <= 1, inactive
    maps = [float(r["mAP"]) for r in active], [float(r["mAP"]) for r in inactive]
    assert min(maps[0]) > 0.6 and sum(maps[1]) / len(maps[1]) < 0.35
    accuracy = float(re.search(r"held-out accuracy: ([\d.]+)%", out.stdout).group(1))
    assert accuracy >= 90
    assert "3/3 in-range EC50s within 0.3 log10" in out.stdout
    report = (demo / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 5 and "CPD-03" in report and "planted EC50" in report
    again = run_script("tools/demo.py", *args)
    assert again.returncode == 0 and "steps reused" in again.stdout
