"""Every `python tools/...` command shown in the README runs as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT


def readme_blocks() -> list[list[str]]:
    """The `python tools/...` and `python data_prep/...` lines of each bash block, in order (a block's
    lines build on each other)."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        commands = [line.split("  #")[0].strip() for line in block.splitlines()]
        commands = [c for c in commands if c.startswith(("python tools/", "python data_prep/"))]
        if commands:
            blocks.append(commands)
    return blocks


def test_readme_has_commands() -> None:
    assert sum(len(b) for b in readme_blocks()) >= 4


@pytest.mark.parametrize("commands", readme_blocks(), ids=lambda b: b[0][:60])
def test_readme_block_runs(commands: list[str], tmp_path: Path) -> None:
    # Run in a scratch folder that sees the checkout's tools and committed files.
    for name in ("tools", "data_prep", "mcnn", "prototxt", "solvers"):
        (tmp_path / name).symlink_to(ROOT / name)
    for command in commands:
        argv = shlex.split(command)
        argv[0] = sys.executable
        out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, f"{command}: {out.stderr}"
