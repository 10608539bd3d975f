"""Caffe's snapshots: ``<prefix>_iter_<N>.caffemodel`` (weights) and ``.solverstate`` (solver history).

Written as src/caffe/solver.cpp (Snapshot) and src/caffe/solvers/sgd_solver.cpp
(SnapshotSolverStateToBinaryProto, RestoreSolverStateFromBinaryProto) write and read them, so
snapshots resume in Caffe and Caffe's resume here.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.solver_rules import snapshot_prefix
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net
from mcnn.engine.solver import Updater
from mcnn.errors import ConfigError, TrainingError


def snapshot_paths(param: pb.SolverParameter, iteration: int, solver_file: str | None = None) -> tuple[Path, Path]:
    """Caffe's names at ``iteration`` under :func:`mcnn.caffe.solver_rules.snapshot_prefix` (the solver
    file without suffix when unset, ``<folder>/<solver stem>`` when it names a folder)."""
    prefix = snapshot_prefix(param, solver_file)
    return Path(f"{prefix}_iter_{iteration}.caffemodel"), Path(f"{prefix}_iter_{iteration}.solverstate")


def check_snapshot_room(folder: Path, net: Net, updater: Updater) -> None:
    """OSError (ENOSPC) before the first iteration when ``folder`` cannot hold one snapshot pair.

    A pair is the float32 weights (caffemodel) plus the solver history (solverstate), with 5 % and
    1 MB for the protobuf framing; the check is against the free space now, so a disk filled during
    training still fails at that snapshot (the previous pair is kept).
    """
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    values = sum(b.tensor.numel() for b in net.learnable()) + sum(h.numel() for h in updater.history)
    needed = int(4 * values * 1.05) + (1 << 20)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"one snapshot (caffemodel + solverstate) needs about {needed / 1e6:.1f} MB, "
                      f"{free / 1e6:.1f} MB are free", str(folder))


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


def load_fine_tune_weights(nets: Sequence[Net], models: Sequence[str], log: GlogWriter) -> None:
    """Copy each caffemodel of ``models`` into every net of ``nets`` (the train net first, then the test nets).

    Caffe's LoadNetWeights (src/caffe/solver.cpp) loads the solver's weights into the train net and
    into each test net, so layers that only a test net has get them too. Logs the source layers that
    no net has.
    """
    for path in models:
        ignored: set[str] | None = None
        for net in nets:
            missing = set(net.load_weights(path))
            ignored = missing if ignored is None else ignored & missing
        note = f"; ignored source layers {', '.join(sorted(ignored))}" if ignored else ""
        log(f"Copied weights from {path}{note}", "net.cpp:744")
