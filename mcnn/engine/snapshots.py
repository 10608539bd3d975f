"""Caffe's snapshots: ``<prefix>_iter_<N>.caffemodel`` (weights) and ``.solverstate`` (solver history).

Written as src/caffe/solver.cpp (Snapshot) and src/caffe/solvers/sgd_solver.cpp
(SnapshotSolverStateToBinaryProto, RestoreSolverStateFromBinaryProto) write and read them, so
snapshots resume in Caffe and Caffe's resume here. With ``snapshot_format: HDF5`` the pair is
``.caffemodel.h5`` / ``.solverstate.h5`` in Caffe's HDF5 layout (:mod:`mcnn.caffe.hdf5`); as in Caffe,
a file is read as HDF5 when its name ends in ``.h5`` (resume and ``-weights`` alike).
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from mcnn.caffe import hdf5
from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.solver_rules import snapshot_prefix
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net
from mcnn.engine.solver import Updater
from mcnn.errors import ConfigError, TrainingError


def snapshot_paths(param: pb.SolverParameter, iteration: int, solver_file: str | None = None) -> tuple[Path, Path]:
    """Caffe's names at ``iteration`` under :func:`mcnn.caffe.solver_rules.snapshot_prefix` (the solver
    file without suffix when unset, ``<folder>/<solver stem>`` when it names a folder); ``snapshot_format:
    HDF5`` adds ``.h5`` to both (src/caffe/solver.cpp SnapshotToHDF5)."""
    prefix = snapshot_prefix(param, solver_file)
    h5 = ".h5" if param.snapshot_format == pb.SolverParameter.HDF5 else ""
    return Path(f"{prefix}_iter_{iteration}.caffemodel{h5}"), Path(f"{prefix}_iter_{iteration}.solverstate{h5}")


def read_weights(path: str | os.PathLike[str]) -> pb.NetParameter:
    """The weights file ``path``: HDF5 when its name ends in ``.h5`` (Caffe's rule), else a binary caffemodel."""
    return cio.read_caffemodel(path)


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
    history = [h.detach().cpu().numpy() for h in updater.history]
    if hdf5.is_hdf5_name(model_path):
        log(f"Snapshotting to HDF5 file {model_path}", "solver.cpp:474")
        hdf5.write_caffemodel_h5(model_path, net.to_caffemodel())
    else:
        log(f"Snapshotting to binary proto file {model_path}", "solver.cpp:464")
        cio.write_caffemodel(model_path, net.to_caffemodel())
    try:
        if hdf5.is_hdf5_name(state_path):
            log(f"Snapshotting solver state to HDF5 file {state_path}", "sgd_solver.cpp:296")
            hdf5.write_solverstate_h5(state_path, iteration, str(model_path), current_step, history)
        else:
            state = pb.SolverState(iter=iteration, learned_net=str(model_path), current_step=current_step)
            state.history.extend(cio.array_to_blob(h) for h in history)
            log(f"Snapshotting solver state to binary proto file {state_path}", "sgd_solver.cpp:284")
            cio.write_solverstate(state_path, state)
    except OSError:  # a full disk: leave the last complete pair, not weights without their state
        model_path.unlink(missing_ok=True)
        raise


def restore_snapshot(path: str | os.PathLike[str], net: Net, updater: Updater, log: GlogWriter) -> tuple[int, int]:
    """Load a ``.solverstate`` or ``.solverstate.h5`` (and the caffemodel it names) into ``net`` and ``updater``.

    Returns (iteration, current_step). The caffemodel is looked up as written, then next to the
    solverstate (snapshots moved together).
    """
    state_path = Path(path)
    log(f"Restoring previous solver status from {state_path}", "sgd_solver.cpp:303")
    state = hdf5.read_solverstate_h5(state_path) if hdf5.is_hdf5_name(state_path) else cio.read_solverstate(state_path)
    if state.learned_net:
        model = Path(state.learned_net)
        if not model.exists() and (state_path.parent / model.name).exists():
            model = state_path.parent / model.name
        if not model.exists():
            raise TrainingError(f"{state_path}: the weights it names, {state.learned_net}, do not exist")
        net.load_weights(read_weights(model), source=str(model))
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
        model = read_weights(path)
        for net in nets:
            missing = set(net.load_weights(model, source=str(path)))
            ignored = missing if ignored is None else ignored & missing
        note = f"; ignored source layers {', '.join(sorted(ignored))}" if ignored else ""
        log(f"Copied weights from {path}{note}", "net.cpp:744")
