"""The simulator's command line: mcnn.simulate.cli (forwarded to by data_prep/synthesize.py simulate)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tifffile

from mcnn.cli import run
from mcnn.simulate.cli import get_args_parser, main
from tests.support import ROOT


def _run(argv: list[str]) -> int:
    return run("mcnn.simulate", lambda: main(get_args_parser().parse_args(argv)))


def test_writes_a_screen_and_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "raw"
    assert _run(["--preset", "test", "--out", str(out), "--seed", "4", "--size", "48", "--sites", "1",
                 "--phenotypes", "translocation,fragmentation"]) == 0
    err = capsys.readouterr().err
    # One summary line; no progress bar when stderr is not a terminal.
    assert err.count("\n") == 1 and err.startswith("wrote 9 fields (48x48") and "simulate:" not in err
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["seed"] == 4 and truth["phenotypes"] == ["control", "translocation", "fragmentation"]
    assert [name for name, c in truth["compounds"].items() if c["role"] == "treatment"] == ["CPD-01"]
    assert tifffile.imread(out / "images" / "P01" / "P01_A01_s1_nuclei.tif").shape == (48, 48)


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
def test_errors_are_one_line(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mcnn.simulate: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_module_entry_point_with_preview(tmp_path: Path) -> None:
    out, png = tmp_path / "raw", tmp_path / "preview.png"
    command = [sys.executable, "-m", "mcnn.simulate", "--preset", "test", "--out", str(out), "--preview", str(png)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 28 fields" in done.stderr and f"wrote {png}" in done.stderr


def test_parser_can_be_renamed() -> None:
    parser = get_args_parser(prog="synthesize.py simulate")
    assert parser.format_usage().startswith("usage: synthesize.py simulate")
    args = parser.parse_args(["--out", "x"])
    assert (args.preset, args.workers, args.overwrite, args.seed) == ("demo", 1, False, None)
