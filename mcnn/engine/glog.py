"""Log lines in glog's format, so log parsers (``tools/parse_log.py``, Caffe's own) and users' habits keep working.

A line reads ``I1127 10:53:27.123456  4242 solver.cpp:218] Iteration 20, loss = 0.69``:
severity and month/day, wall time, thread id, source location, message. :func:`log_outputs`
writes the net-output lines in Caffe's order.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable, Mapping, Sequence
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


def log_outputs(log: Callable[[str, str], None], kind: str, values: Mapping[str, Sequence[float]],
                weights: Mapping[str, float]) -> None:
    """Log ``Train net output #k`` (``kind`` "Train") or ``Test net output #k`` lines as Caffe's solver does.

    ``values``: every value of each output blob by name; ``weights``: the loss weight of each (0 or absent
    for accuracy and the like). Caffe's net outputs are a ``std::set`` of blob names (``Net::Init``,
    ``src/caffe/net.cpp``), so the blobs come in alphabetical order and ``#k`` counts the values.
    """
    where = "solver.cpp:258" if kind == "Train" else "solver.cpp:414"  # Solver::Step and Solver::Test
    index = 0
    for name in sorted(values):
        weight = weights.get(name, 0.0)
        for v in values[name]:
            extra = f" (* {weight:.6g} = {weight * v:.6g} loss)" if weight else ""
            log(f"    {kind} net output #{index}: {name} = {v:.6g}{extra}", where)
            index += 1
