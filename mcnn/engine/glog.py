"""Log lines in glog's format, so Caffe's ``parse_log.py`` and users' habits keep working.

A line reads ``I1127 10:53:27.123456  4242 solver.cpp:218] Iteration 20, loss = 0.69``:
severity and month/day, wall time, thread id, source location, message.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable
from typing import TextIO


class GlogWriter:
    """Writes glog-formatted lines to a stream (stderr by default), optionally through ``echo``.

    ``echo`` (e.g. ``tqdm.write``) lets a progress bar on the same terminal stay intact.
    """

    def __init__(self, stream: TextIO | None = None, echo: Callable[[str], None] | None = None,
                 enabled: bool = True):
        self.stream = stream
        self.echo = echo
        self.enabled = enabled

    def line(self, message: str, where: str = "solver.cpp:0", severity: str = "I") -> str:
        """Format one log line (without writing it)."""
        now = datetime.datetime.now()
        return (f"{severity}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {os.getpid() % 100000:>5d} "
                f"{where}] {message}")

    def __call__(self, message: str, where: str = "solver.cpp:0", severity: str = "I") -> None:
        if not self.enabled:
            return
        text = self.line(message, where, severity)
        if self.echo is not None:
            self.echo(text)
        else:
            stream = self.stream or sys.stderr
            stream.write(text + "\n")
            stream.flush()
