"""Real BVLC Caffe as a test oracle: where the build is, how to run a script under its pycaffe, the report.

``make caffe`` builds Caffe (CPU only) into ``.cache/caffe/prefix`` with its own virtual environment
``.cache/caffe/venv``; ``make parity`` points ``MCNN_CAFFE_PREFIX`` and ``MCNN_CAFFE_PYTHON`` at them.
Real pycaffe needs its own interpreter (NumPy < 2, its compiled ``_caffe.so``), so the parity tests
write their cases to files, run an ``oracle_*.py`` script under that interpreter, and compare what it
wrote with the engine in the test process.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tests.support import ROOT

PREFIX = os.environ.get("MCNN_CAFFE_PREFIX", "")
PYTHON = os.environ.get("MCNN_CAFFE_PYTHON", "")
ORACLES = ROOT / "tests" / "parity"


def missing_reason() -> str:
    """Why real Caffe cannot be used here ("" when it can): the variables unset or the build incomplete."""
    if not PREFIX or not PYTHON:
        return "real Caffe not configured: run `make parity` (MCNN_CAFFE_PREFIX/MCNN_CAFFE_PYTHON unset)"
    for path in (Path(PREFIX, "bin", "caffe"), Path(PREFIX, "python", "caffe", "_caffe.so"), Path(PYTHON)):
        if not path.exists():
            return f"real Caffe incomplete: {path} is missing (run `make caffe`)"
    return ""


def caffe_env(threads: int = 1, log_level: int = 1) -> dict[str, str]:
    """The environment of a real Caffe process: its pycaffe and libraries, glog from ``log_level`` on
    (0 INFO, 1 WARNING), ``threads`` BLAS threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    env["PYTHONPATH"] = str(Path(PREFIX, "python"))
    env["LD_LIBRARY_PATH"] = str(Path(PREFIX, "lib"))
    env["PATH"] = f"{Path(PREFIX, 'bin')}:{env.get('PATH', '')}"
    env["GLOG_minloglevel"] = str(log_level)
    env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_oracle(script: str, *args: object, threads: int = 1, timeout: float = 600,
               check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``tests/parity/<script>`` under real pycaffe; with ``check``, fail (its stderr's tail) unless it exits 0."""
    out = subprocess.run([PYTHON, str(ORACLES / script), *map(str, args)], capture_output=True, text=True,
                         env=caffe_env(threads), cwd=ROOT, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{script} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out


def run_caffe_tool(tool: str, *args: object, threads: int = 1, timeout: float = 600, cwd: Path | None = None,
                   log_level: int = 1) -> subprocess.CompletedProcess[str]:
    """Run ``PREFIX/bin/<tool>`` (``caffe``, ``upgrade_net_proto_text``, ...); its completed process."""
    return subprocess.run([str(Path(PREFIX, "bin", tool)), *map(str, args)], capture_output=True, text=True,
                          env=caffe_env(threads, log_level), cwd=cwd or ROOT, timeout=timeout)


def check_failure(stderr: str) -> str:
    """The line of a Caffe abort that says why (glog's ``Check failed`` or ``F...`` line), else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "Check failed" in line or line.startswith("F"):
            return line.split("] ", 1)[-1]
    return lines[-1] if lines else "(no output)"


def relative_difference(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| over max |want| (1 where want is all zero), as float; inf for another shape."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    if got.size == 0:
        return 0.0
    scale = float(np.abs(want).max()) or 1.0
    return float(np.abs(got - want).max()) / scale


@dataclass
class Row:
    """One case of the report: its worst relative difference against the tolerance, and a note."""

    case: str
    worst: float
    tolerance: float
    count: int = 1
    note: str = ""


@dataclass
class Report:
    """The parity suite's table of worst differences, written to ``MCNN_PARITY_REPORT`` at the end."""

    rows: list[Row] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def add(self, case: str, worst: float, tolerance: float, count: int = 1, note: str = "") -> None:
        """Record a case (``count`` compared configurations) and its worst relative difference."""
        self.rows.append(Row(case, worst, tolerance, count, note))

    def markdown(self) -> str:
        """The table (and the findings) as Markdown."""
        lines = ["| case | compared | worst relative difference | tolerance | note |", "|---|---|---|---|---|"]
        for r in self.rows:
            if r.tolerance == 0:  # a pass/fail case (same file, it ran): no number to show
                worst, tolerance = ("exact" if r.worst == 0 else "differs"), "-"
            else:
                worst, tolerance = f"{r.worst:.2e}", f"{r.tolerance:.0e}"
            lines.append(f"| {r.case} | {r.count} | {worst} | {tolerance} | {r.note} |")
        if self.findings:
            lines += ["", "Findings (documented differences):", ""] + [f"- {f}" for f in self.findings]
        return "\n".join(lines) + "\n"
