"""Every `python tools/...` command shown in the README runs as written."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("python tools/"):
                commands.append(line)
    return commands


def test_readme_has_commands() -> None:
    assert len(readme_commands()) >= 4


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command: str, tmp_path: Path) -> None:
    # Run in a scratch folder that sees the checkout's tools and committed files.
    for name in ("tools", "mcnn", "prototxt", "solvers"):
        (tmp_path / name).symlink_to(ROOT / name)
    argv = shlex.split(command)
    argv[0] = sys.executable
    out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
