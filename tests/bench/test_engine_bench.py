"""bench/engine.py: alternated rounds of the engine and OpenCV forwards, ratios and the written tables."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.scripts import load_script

engine_bench = load_script("bench/engine.py", "engine_bench")


def test_alternating_times_alternate_the_calls_and_flip_their_order() -> None:
    calls: list[str] = []

    def slow() -> None:
        calls.append("slow")
        time.sleep(0.02)

    def fast() -> None:
        calls.append("fast")

    times = engine_bench.m.alternating_times({"slow": slow, "fast": fast}, 3)
    # one warm-up call each, then three rounds, the order flipped every round
    assert calls == ["slow", "fast", "slow", "fast", "fast", "slow", "slow", "fast"]
    assert len(times["slow"]) == len(times["fast"]) == 3
    assert min(times["slow"]) >= 0.02 > max(times["fast"])


def test_ratio_text_shows_the_median_and_the_per_round_range() -> None:
    assert engine_bench.ratio_text({"engine_over_opencv": 2.612, "engine_over_opencv_range": [2.4, 2.834]}) \
        == "2.61 (2.40-2.83)"
    assert engine_bench.ratio_text({"engine_over_opencv": None}) == "—"


def test_demo_run_writes_its_tables(tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    args = engine_bench.get_args_parser().parse_args(
        ["--sizes", "demo", "--batch", "2", "--repeat", "2", "--train-iters", "1",
         "--out", str(tmp_path)])
    assert engine_bench.main(args) == 0
    (result,) = json.loads(next(tmp_path.glob("engine-*.json")).read_text())["results"]
    assert result["size"] == "demo" and result["input"] == "2x128x128" and result["rounds"] == 2
    low, high = result["engine_over_opencv_range"]
    assert 0 < low <= result["engine_over_opencv"] <= high
    assert result["engine_forward_images_per_s"] > 0 and result["train_images_per_s"] > 0
    table = next(tmp_path.glob("engine-*.md")).read_text()
    assert "| demo | 2x128x128 | 2 | cpu |" in table and f"({low:.2f}-{high:.2f})" in table
