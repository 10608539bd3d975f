"""Real BVLC Caffe's ``caffe`` binary for the benchmarks (bench/vs_caffe.py): where the build is, the
environment of its processes (and of the engine's, with the same threads), and the figures of a glog
training log (Caffe's and the engine's lines read alike).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mcnn.caffe.trainlog import parse_lines
from mcnn.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

# -- finding Caffe, environments ----------------------------------------------------------------------

def caffe_prefix(given: Path | None) -> tuple[Path, str, str]:
    """Caffe's install prefix, why it cannot be used ("" when it can) and what ``caffe --version`` says:
    ``given`` (ConfigError unless it holds bin/caffe), else $MCNN_CAFFE_PREFIX, else .cache/caffe/prefix."""
    prefix = given or Path(os.environ.get("MCNN_CAFFE_PREFIX") or ROOT / ".cache" / "caffe" / "prefix")
    binary = prefix / "bin" / "caffe"
    if not os.access(binary, os.X_OK):
        if given is not None:
            raise ConfigError(f"--caffe {given}: no executable bin/caffe under it (build one with `make caffe`)")
        return prefix, f"no Caffe build at {prefix} (run `make caffe`, or give --caffe PREFIX)", ""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60,
                              env=caffe_env(prefix, 1))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return prefix, f"{binary} does not run ({exc})", ""
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return prefix, f"{binary} --version failed: {last}", ""
    return prefix, "", " ".join(done.stdout.split())


def engine_env(threads: int) -> dict[str, str]:
    """The environment of an engine (or OpenCV script) process: ``threads`` intra-op threads."""
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    return env


def caffe_env(prefix: Path, threads: int) -> dict[str, str]:
    """The environment of ``caffe train``: its libraries, ``threads`` OpenBLAS threads, glog's INFO lines
    (their time stamps) on stderr only (no log files)."""
    env = engine_env(threads)
    env.pop("PYTHONPATH", None)
    env["LD_LIBRARY_PATH"] = ":".join([str(prefix / "lib"), *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
    env.update(GLOG_logtostderr="1", GLOG_minloglevel="0")
    return env


# -- logs ---------------------------------------------------------------------------------------------

def log_figures(text: str, iterations: int) -> dict[str, float | None]:
    """From a training log (Caffe's or the engine's, read by :func:`mcnn.caffe.trainlog.parse_lines`):
    seconds per iteration after iteration 0 (from its output lines to the last iteration's, over the
    iterations between: each covers one update and one forward-backward) and the last iteration's loss.
    SystemExit if the log lacks the outputs of iteration 0 or of the last iteration."""
    rows = {int(row["NumIters"]): row for row in parse_lines(text.splitlines(), 2000).train}
    last = iterations - 1
    if last not in rows or 0 not in rows:
        raise SystemExit(f"bench: the training log has no outputs of iteration {last}:\n"
                         + "\n".join(text.splitlines()[-20:]))
    span = float(rows[last]["Seconds"]) - float(rows[0]["Seconds"])
    return {"log_s_per_iter": span / last if last else None, "final_loss": float(rows[last]["loss"])}
