"""Caffe's snapshots: ``<prefix>_iter_<N>.caffemodel`` (weights) and ``.solverstate`` (solver history).

Written as src/caffe/solver.cpp (Snapshot) and src/caffe/solvers/sgd_solver.cpp
(SnapshotSolverStateToBinaryProto, RestoreSolverStateFromBinaryProto) write and read them, so
snapshots resume in Caffe and Caffe's resume here.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net
from mcnn.engine.solver import Updater
from mcnn.errors import ConfigError, TrainingError


def snapshot_paths(param: pb.SolverParameter, iteration: int, solver_file: str | None = None) -> tuple[Path, Path]:
    """Caffe's names at ``iteration``: the prefix is ``snapshot_prefix``, else the solver file without suffix."""
    prefix = param.snapshot_prefix or (Path(solver_file).with_suffix("").as_posix() if solver_file else "snapshot")
    return Path(f"{prefix}_iter_{iteration}.caffemodel"), Path(f"{prefix}_iter_{iteration}.solverstate")


def write_snapshot(paths: tuple[Path, Path], net: Net, updater: Updater, iteration: int, current_step: int,
                   log: GlogWriter) -> None:
    """Write the weights of ``net`` and the solver state (iteration, multistep counter, history)."""
    model_path, state_path = paths
    model_path.parent.mkdir(parents=True, exist_ok=True)
    log(f"Snapshotting to binary proto file {model_path}", "solver.cpp:464")
    cio.write_caffemodel(model_path, net.to_caffemodel())
    state = pb.SolverState(iter=iteration, learned_net=str(model_path), current_step=current_step)
    for h in updater.history:
        state.history.append(cio.array_to_blob(h.detach().cpu().numpy()))
    log(f"Snapshotting solver state to binary proto file {state_path}", "sgd_solver.cpp:284")
    try:
        cio.write_solverstate(state_path, state)
    except OSError:  # a full disk: leave the last complete pair, not weights without their state
        model_path.unlink(missing_ok=True)
        raise


def restore_snapshot(path: str | os.PathLike[str], net: Net, updater: Updater, log: GlogWriter) -> tuple[int, int]:
    """Load a ``.solverstate`` (and the caffemodel it names) into ``net`` and ``updater``.

    Returns (iteration, current_step). The caffemodel is looked up as written, then next to the
    solverstate (snapshots moved together).
    """
    state_path = Path(path)
    log(f"Restoring previous solver status from {state_path}", "sgd_solver.cpp:303")
    state = cio.read_solverstate(state_path)
    if state.learned_net:
        model = Path(state.learned_net)
        if not model.exists() and (state_path.parent / model.name).exists():
            model = state_path.parent / model.name
        if not model.exists():
            raise TrainingError(f"{state_path}: the weights it names, {state.learned_net}, do not exist")
        net.load_weights(model)
    try:
        updater.load_history([torch.from_numpy(cio.blob_to_array(b)) for b in state.history])
    except ConfigError as exc:
        raise TrainingError(f"{state_path}: {exc}") from None
    return state.iter, state.current_step
