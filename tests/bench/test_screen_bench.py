"""bench/screen.py runs end to end on a tiny screen (its figures are measured by the script, not here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_script


@pytest.mark.slow
def test_screen_bench_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = run_script("bench/screen.py", "--fields", "24,48", "--size", "64", "--net-size", "64", "--quick",
                     "--workers", "1", "--json", out)
    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())["results"]
    assert [r["fields"] for r in results] == [24, 48]
    for r in results:
        assert r["prepare_fields_per_s"] > 0 and r["predict_fields_per_s"] > 0
        assert r["prepare"]["max_rss_mb"] > 10 and r["predict"]["tree_rss_mb"] >= r["predict"]["max_rss_mb"] * 0.5
        assert 0 < r["predict"]["tree_anon_mb"] <= r["predict"]["tree_rss_mb"]
        assert r["image"] == "4x64x64 uint16"
