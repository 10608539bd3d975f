"""The one place that launches training, on either engine.

``engine="torch"`` runs the solver with the PyTorch engine (:func:`mcnn.engine.launch.run_training`:
one process on the CPU or a GPU, or data-parallel over several GPUs); ``engine="caffe"`` runs the
real ``caffe train`` binary with the same flags (``tools/caffe/caffe.cpp`` of Caffe: ``-solver``,
``-weights``, ``-snapshot``, ``-gpu``, ``-iterations``, ``-sigint_effect``, ``-sighup_effect``).
``tools/train.py`` and the reproduction harness (:mod:`mcnn.reproduce`) both go through :func:`train`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcnn.errors import ConfigError
from mcnn.machine import describe

#: The training engines: the PyTorch engine or the real ``caffe`` binary.
ENGINES = ("torch", "caffe")


@dataclass
class TrainingRun:
    """One training run: the flags of ``caffe train`` plus the engine's own options.

    ``gpu`` is Caffe's text (``0``, ``0,1`` or ``all``; None = CPU). ``sigint_effect`` and
    ``sighup_effect`` left None are not passed to ``caffe`` (its defaults: stop, snapshot).
    The options below ``sighup_effect`` only apply to the torch engine; ``log_file`` gets the
    engine's glog lines appended (default: stderr).
    """

    solver: str
    weights: Sequence[str] = ()
    snapshot: str | None = None
    gpu: str | None = None
    iterations: int | None = None
    sigint_effect: str | None = None
    sighup_effect: str | None = None
    workers: int = 0
    progress: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    log_file: Path | None = None


def caffe_argv(run: TrainingRun) -> list[str]:
    """The ``caffe train`` command line of ``run`` (flags in a fixed order, unset ones left out)."""
    cmd = ["caffe", "train", "-solver", run.solver]
    values = {"weights": ",".join(run.weights) or None, "snapshot": run.snapshot, "gpu": run.gpu,
              "sigint_effect": run.sigint_effect, "sighup_effect": run.sighup_effect,
              "iterations": None if run.iterations is None else str(run.iterations)}
    for flag, value in values.items():
        if value is not None:
            cmd += [f"-{flag}", value]
    return cmd


def _train_caffe(run: TrainingRun) -> int:
    if shutil.which("caffe") is None:
        raise ConfigError("--engine caffe needs the `caffe` binary on PATH; it is in the Docker image built "
                          "from Dockerfile.caffe (see README, Inside Docker), or use --engine torch")
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.call(caffe_argv(run))


def _train_torch(run: TrainingRun) -> int:
    from mcnn.engine.glog import GlogWriter
    from mcnn.engine.launch import parse_gpus, run_training
    from mcnn.engine.trainer import TrainOptions

    options = TrainOptions(weights=list(run.weights), snapshot=run.snapshot, iterations=run.iterations,
                           workers=max(0, run.workers), sigint_effect=run.sigint_effect or "stop",
                           sighup_effect=run.sighup_effect or "snapshot", progress=run.progress,
                           channels_last=run.channels_last, bf16=run.bf16, compile=run.compile)
    gpus = parse_gpus(run.gpu)
    if run.log_file is None:
        run_training(run.solver, options, gpus)
        return 0
    with open(run.log_file, "a", encoding="utf-8") as stream:
        run_training(run.solver, options, gpus, GlogWriter(stream=stream))
    return 0


def check_run(run: TrainingRun) -> None:
    """ConfigError (one line) for a solver value, ``-iterations`` or snapshot location that cannot train."""
    from mcnn.caffe import io as cio
    from mcnn.caffe.solver_rules import check_solver

    solver = cio.read_solver(run.solver)
    check_solver(solver, str(run.solver))
    if run.iterations is not None and run.iterations < 1:
        raise ConfigError(f"-iterations {run.iterations}: need at least 1")
    if run.snapshot and run.weights:  # tools/caffe/caffe.cpp refuses the pair as well
        raise ConfigError("give -snapshot to resume or -weights to fine-tune, not both")
    if run.snapshot:
        if not Path(run.snapshot).is_file():
            raise ConfigError(f"-snapshot {run.snapshot}: no such file")
        if Path(run.snapshot).suffix == ".caffemodel":
            raise ConfigError(f"-snapshot {run.snapshot}: a caffemodel, not a .solverstate; -snapshot resumes a "
                              "run, -weights starts one from these weights")
    # as mcnn.engine.snapshots names them: snapshot_prefix (relative to the working folder), else the solver file
    prefix = Path(solver.snapshot_prefix) if solver.snapshot_prefix else Path(run.solver).with_suffix("")
    folder = prefix.absolute().parent
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(f"{run.solver}: field snapshot_prefix: {solver.snapshot_prefix!r}: {existing} is "
                          f"{'not a folder' if not existing.is_dir() else 'not writable'}; snapshots could not be "
                          "written")


def train(run: TrainingRun, engine: str = "torch") -> int:
    """Train ``run`` with ``engine`` (torch or caffe); returns the exit status (caffe's, or 0).

    Before anything starts, the solver's values (:func:`mcnn.caffe.solver_rules.check_solver`),
    ``-iterations`` and the snapshot folder are checked: a bad value or an unwritable snapshot
    location stops the run at once instead of after the training."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    check_run(run)
    return _train_caffe(run) if engine == "caffe" else _train_torch(run)


def resolve_gpu(text: str | int | None) -> int | None:
    """``--gpu``: an id, ``cpu`` (None) or ``auto`` (GPU 0 when one is visible, else None)."""
    if text is None or isinstance(text, int):
        return text
    if text == "cpu":
        return None
    if text == "auto":
        try:
            import torch

            return 0 if torch.cuda.is_available() else None
        except ImportError:  # the Caffe image may come without PyTorch: ask the driver
            smi = shutil.which("nvidia-smi")
            if smi is None:
                return None
            listing = subprocess.run([smi, "-L"], capture_output=True, text=True)
            return 0 if listing.returncode == 0 and "GPU 0" in listing.stdout else None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"--gpu {text!r}: expected a GPU id, 'auto' or 'cpu'") from None


def hardware(engine: str, gpu: int | None) -> str:
    """A one-line description of where training ran (``engine`` is kept for the caller's record)."""
    del engine
    return describe(gpu)


def latest_snapshot(prefix: str) -> tuple[int, Path] | None:
    """The highest-iteration ``<prefix>_iter_N.solverstate`` whose caffemodel also exists."""
    folder, stem = Path(prefix).parent, Path(prefix).name
    best = None
    for path in folder.glob(f"{stem}_iter_*.solverstate"):
        match = re.fullmatch(re.escape(stem) + r"_iter_(\d+)\.solverstate", path.name)
        if match and path.with_suffix(".caffemodel").exists():
            n = int(match.group(1))
            if best is None or n > best[0]:
                best = (n, path)
    return best
