"""bench/device.py: the CPU dry run (--device cpu --quick) runs every stage and writes every row."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ROOT, run_script
from tests.support.scripts import load_script

SIZES = {"demo": "2x128x128", "bbbc021": "3x128x160"}
GOAL_ROWS = {("bbbc021", "fp32", "forward"), ("bbbc021", "bf16", "forward"), ("bbbc021", "bf16", "train")}


def _load_device() -> ModuleType:
    sys.path.insert(0, str(ROOT / "bench"))  # device.py imports plain_torch beside it
    return load_script("bench/device.py", "device_bench")


@pytest.mark.slow
def test_dry_run_writes_every_stage_and_row(tmp_path: Path) -> None:
    run = run_script("bench/device.py", "--device", "cpu", "--quick", "--threads", "1", "--reps", "1",
                     "--out", tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    [json_path], [md_path] = sorted(tmp_path.glob("device-*.json")), sorted(tmp_path.glob("device-*.md"))
    assert json_path.stem == md_path.stem
    record = json.loads(json_path.read_text())
    assert record["device"] == "cpu" and record["quick"] is True
    works = [(w, s, p) for w in ("forward", "train") for s in SIZES for p in ("fp32", "bf16")]
    assert list(record["stages"]) == [f"{w}:{s}:{p}" for w, s, p in works] + ["agreement", "ddp"]
    assert {s["status"] for s in record["stages"].values()} == {"ok"}
    assert all(0 <= s["seconds"] <= s["budget_s"] for s in record["stages"].values())
    rows = record["throughput"]
    assert [(r["work"], r["size"], r["precision"]) for r in rows] == works
    for r in rows:
        assert r["input"] == SIZES[r["size"]]
        assert [p["batch"] for p in r["points"]] == [1, 2] and r["largest_batch"] == 2
        assert r["best_images_per_s"] == max(p["images_per_s"] for p in r["points"]) > 0
        assert r["peak_memory_gib"] is None and r["stopped"] == "reached --max-batch 2"
        if (r["size"], r["precision"], r["work"]) in GOAL_ROWS:
            assert r["goal_images_per_s"] in (250.0, 300.0, 1000.0) and r["goal_status"].startswith("n/a")
        else:
            assert r["goal_images_per_s"] is None
    agree = record["agreement"]["comparisons"]
    assert agree["fp32"]["logits_max_rel_diff"] == 0.0 and agree["tf32"]["prob_max_abs_diff"] == 0.0  # CPU vs CPU
    assert 1e-5 < agree["bf16"]["logits_max_rel_diff"] < 0.1
    ddp = record["ddp"]
    assert (ddp["backend"], ddp["processes"], ddp["steps"]) == ("gloo", 2, 2)
    assert ddp["ranks_max_rel_diff"] == 0.0 and ddp["update_rel_diff_vs_one_process"] < 1e-3
    text = md_path.read_text()
    for w, s, p in works:
        assert f"| {s} | {SIZES[s]} | {p} | {w} |" in text
    for title in ("| fp32, TF32 off |", "| TF32 |", "| bf16 autocast, channels_last |", "| gloo | 2 | cpu | 2 | 1 |"):
        assert title in text
    assert text.count("| ok |") == len(record["stages"])
    assert "ddp: ok" in run.stdout and "results:" in run.stdout


def test_goal_status_is_computed_at_the_goal_size() -> None:
    device = _load_device()
    full = (3, 1024, 1280)
    assert device.goal_status("bbbc021", "bf16", "forward", full, 1200.0) == (1000.0, "met")
    assert device.goal_status("bbbc021", "fp32", "forward", full, 249.0) == (250.0, "not met")
    assert device.goal_status("bbbc021", "bf16", "train", full, None) == (300.0, "not measured")
    assert device.goal_status("bbbc021", "fp32", "train", full, 5.0) == (None, "—")
    assert device.goal_status("bbbc021", "bf16", "train", (3, 128, 160), 900.0)[1].startswith("n/a")
