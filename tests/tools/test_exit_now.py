"""mcnn.cli.exit_now: the status, the flushed streams and the atexit handlers of a normal exit, without the teardown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

SCRIPT = """
import atexit, pathlib, sys
from mcnn.cli import exit_now
atexit.register(lambda: pathlib.Path(sys.argv[1]).write_text("handler ran"))
sys.stdout.write("buffered, no newline")
sys.stderr.write("to stderr")
exit_now(3)
print("never")
"""


def test_exit_now_keeps_what_exit_must_do(tmp_path: Path) -> None:
    marker = tmp_path / "atexit.txt"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(marker)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 3
    assert out.stdout == "buffered, no newline" and out.stderr == "to stderr"
    assert marker.read_text() == "handler ran"
