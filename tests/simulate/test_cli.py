"""The simulator's command line: tools/simulate.py (forwarded to by data_prep/synthesize.py simulate)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
import tifffile

from tests.simulate.support import read_rows
from tests.support import run_script
from tests.support.scripts import load_script

SCRIPT = "tools/simulate.py"


def load_tool() -> ModuleType:
    """tools/simulate.py as a module, for its parser."""
    return load_script(SCRIPT, "simulate_tool")


def test_writes_a_screen_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    done = run_script(SCRIPT, "--preset", "test", "--out", out, "--seed", "4", "--size", "48", "--sites", "1",
                      "--phenotypes", "translocation,fragmentation")
    assert done.returncode == 0, done.stderr
    err = done.stderr
    # One summary line; no progress bar when stderr is not a terminal.
    assert err.count("\n") == 1 and err.startswith("wrote 9 fields (48x48") and "simulate:" not in err
    assert "OME-Zarr" not in err and not (out / "plates").exists()
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["seed"] == 4 and truth["phenotypes"] == ["control", "translocation", "fragmentation"]
    assert [name for name, c in truth["compounds"].items() if c["role"] == "treatment"] == ["CPD-01"]
    assert tifffile.imread(out / "images" / "P01" / "P01_A01_s1_nuclei.tif").shape == (48, 48)
    assert len(read_rows(out / "load_data.csv")) == 9 and len(read_rows(out / "platemap.csv")) == 9


def test_synthesize_simulate_forwards_ome_zarr(tmp_path: Path) -> None:
    pytest.importorskip("ome_zarr")
    out = tmp_path / "raw"
    done = run_script("data_prep/synthesize.py", "simulate", "--preset", "test", "--out", out, "--size", "32",
                      "--sites", "1", "--ome-zarr")
    assert done.returncode == 0, done.stderr
    assert "wrote 14 fields (32x32" in done.stderr and "1 OME-Zarr plate(s)" in done.stderr
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["ome_zarr_plates"] == ["plates/P01.ome.zarr"]
    assert (out / "plates" / "P01.ome.zarr" / "B" / "02" / "0").is_dir()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--phenotypes", "spots,blebs"], "--phenotypes: unknown 'blebs'"),
        (["--plates", "0"], "--plates must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--size", "8"], "--size must be at least 32"),
        (["--preset", "demo", "--plates", "1"], "needs 184 wells"),
    ],
)
def test_errors_are_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    done = run_script(SCRIPT, *argv, "--out", tmp_path / "x")
    assert done.returncode == 2, done.stderr
    err = done.stderr
    assert err.startswith("simulate: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_script_with_preview(tmp_path: Path) -> None:
    out, png = tmp_path / "raw", tmp_path / "preview.png"
    done = run_script(SCRIPT, "--preset", "test", "--out", out, "--preview", png)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 28 fields" in done.stderr and f"wrote {png}" in done.stderr


def test_parser_can_be_renamed() -> None:
    parser = load_tool().get_args_parser(prog="synthesize.py simulate")
    assert parser.format_usage().startswith("usage: synthesize.py simulate")
    args = parser.parse_args(["--out", "x"])
    assert (args.preset, args.workers, args.overwrite, args.seed, args.ome_zarr) == ("demo", 1, False, None, False)
    assert parser.parse_args(["--out", "x", "--ome-zarr"]).ome_zarr is True
