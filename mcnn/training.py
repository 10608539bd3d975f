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
from typing import TYPE_CHECKING

from mcnn.errors import ConfigError
from mcnn.machine import describe

if TYPE_CHECKING:
    from mcnn.engine.trainer import TrainResult

#: The training engines: the PyTorch engine or the real ``caffe`` binary.
ENGINES = ("torch", "caffe")


@dataclass
class TrainingRun:
    """One training run: the flags of ``caffe train`` plus the engine's own options.

    ``gpu`` is Caffe's text (``0``, ``0,1`` or ``all``; None = CPU). ``sigint_effect`` and
    ``sighup_effect`` left None are not passed to ``caffe`` (its defaults: stop, snapshot).
    The options below ``sighup_effect`` only apply to the torch engine; ``log_file`` gets the
    engine's glog lines appended (default: stderr); ``tensorboard`` names a folder for TensorBoard
    event files of the run (:mod:`mcnn.engine.dashboard`; torch engine only).
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
    tensorboard: Path | None = None
    tf32: bool = False  # TF32 CUDA maths (torch engine; faster, not Caffe-exact)
    level: int = 0  # caffe train -level (Caffe's default 0 replaces the solver's train_state level)
    stages: Sequence[str] = ()  # caffe train -stage


def caffe_argv(run: TrainingRun) -> list[str]:
    """The ``caffe train`` command line of ``run`` (flags in a fixed order, unset ones left out)."""
    cmd = ["caffe", "train", "-solver", run.solver]
    values = {"weights": ",".join(run.weights) or None, "snapshot": run.snapshot, "gpu": run.gpu,
              "level": str(run.level) if run.level else None, "stage": ",".join(run.stages) or None,
              "sigint_effect": run.sigint_effect, "sighup_effect": run.sighup_effect,
              "iterations": None if run.iterations is None else str(run.iterations)}
    for flag, value in values.items():
        if value is not None:
            cmd += [f"-{flag}", value]
    return cmd


def _train_caffe(run: TrainingRun) -> int:
    from mcnn.caffe import io as cio
    from mcnn.caffe.solver_rules import snapshot_prefix

    if run.iterations is not None:  # tools/caffe.cpp's train() never reads FLAGS_iterations
        raise ConfigError(f"-iterations {run.iterations}: `caffe train` has no such option (it trains to max_iter); "
                          "lower max_iter in the solver or use --engine torch")
    if shutil.which("caffe") is None:
        raise ConfigError("--engine caffe needs the `caffe` binary on PATH; it is in the Docker image built "
                          "from Dockerfile.caffe (see README, Inside Docker), or use --engine torch")
    # Caffe aborts on a missing snapshot folder ("Cannot write to snapshot prefix"); the engine creates it
    Path(snapshot_prefix(cio.read_solver(run.solver), run.solver)).absolute().parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    return subprocess.call(caffe_argv(run))


def _train_torch(run: TrainingRun) -> int:
    from mcnn.caffe import io as cio
    from mcnn.engine.dashboard import tensorboard_observer
    from mcnn.engine.glog import GlogWriter
    from mcnn.engine.launch import run_training, solver_gpus
    from mcnn.engine.trainer import TrainOptions

    options = TrainOptions(weights=list(run.weights), snapshot=run.snapshot, iterations=run.iterations,
                           workers=max(0, run.workers), sigint_effect=run.sigint_effect or "stop",
                           sighup_effect=run.sighup_effect or "snapshot", progress=run.progress,
                           channels_last=run.channels_last, bf16=run.bf16, compile=run.compile,
                           observer=None if run.tensorboard is None else tensorboard_observer(run.tensorboard),
                           tf32=run.tf32, level=run.level, stages=list(run.stages))
    gpus = solver_gpus(run.gpu, cio.read_solver(run.solver))
    if run.log_file is None:
        result = run_training(run.solver, options, gpus)
    else:
        with open(run.log_file, "a", encoding="utf-8") as stream:
            result = run_training(run.solver, options, gpus, GlogWriter(stream=stream))
    _write_card(run, result, gpus)
    return 0


def _write_card(run: TrainingRun, result: TrainResult | None, gpus: Sequence[int]) -> None:
    """The model card beside the run's final caffemodel (:mod:`mcnn.caffe.modelcard`); a card that cannot
    be built is a warning, since the weights are already written."""
    from mcnn.caffe import io as cio
    from mcnn.caffe.modelcard_build import write_training_card
    from mcnn.errors import McnnError

    # processes spawned per GPU report nothing back (result None): the final iteration is the solver's
    iterations = result.iterations if result is not None else run.iterations or cio.read_solver(run.solver).max_iter
    try:
        write_training_card(run.solver, iterations, engine="torch",
                            snapshots=None if result is None else result.snapshots, weights=list(run.weights),
                            resumed_from=run.snapshot, stopped_early=result is not None and result.stopped_early,
                            gpu=gpus[0] if gpus else None, test_outputs=None if result is None else result.last_test)
    except McnnError as exc:
        print(f"train: warning: no model card written: {exc}", file=sys.stderr)


def check_tensorboard(engine: str) -> None:
    """ConfigError (one line) when ``--tensorboard`` cannot be written: with real Caffe, or without the extra."""
    if engine == "caffe":
        raise ConfigError("--tensorboard needs --engine torch; real Caffe's log becomes CSVs and a figure of the "
                          "training curves with tools/parse_log.py LOG")
    from mcnn.engine.dashboard import require_tensorboard

    require_tensorboard()


def check_run(run: TrainingRun) -> None:
    """ConfigError (one line) for a solver value, ``-iterations`` or snapshot location that cannot train."""
    from mcnn.caffe import io as cio
    from mcnn.caffe.solver_rules import check_solver, snapshot_prefix

    solver = cio.read_solver(run.solver)
    check_solver(solver, str(run.solver))
    if run.iterations is not None and run.iterations < 1:
        raise ConfigError(f"-iterations {run.iterations}: need at least 1")
    if run.snapshot and run.weights:  # tools/caffe/caffe.cpp refuses the pair as well
        raise ConfigError("give -snapshot to resume or -weights to fine-tune, not both")
    if run.snapshot:
        if not Path(run.snapshot).is_file():
            raise ConfigError(f"-snapshot {run.snapshot}: no such file")
        if str(run.snapshot).endswith((".caffemodel", ".caffemodel.h5")):
            raise ConfigError(f"-snapshot {run.snapshot}: a caffemodel, not a .solverstate; -snapshot resumes a "
                              "run, -weights starts one from these weights")
    prefix = Path(snapshot_prefix(solver, run.solver))  # as Caffe and mcnn.engine.snapshots name them
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
    if run.tensorboard is not None:
        check_tensorboard(engine)
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
    """The highest-iteration ``<prefix>_iter_N.solverstate`` (or ``.solverstate.h5``) whose caffemodel also exists."""
    folder, stem = Path(prefix).parent, Path(prefix).name
    best = None
    for path in folder.glob(f"{stem}_iter_*.solverstate*"):
        match = re.fullmatch(re.escape(stem) + r"_iter_(\d+)\.solverstate(\.h5)?", path.name)
        if match and path.with_name(path.name.replace(".solverstate", ".caffemodel")).exists():
            n = int(match.group(1))
            if best is None or n > best[0]:
                best = (n, path)
    return best
