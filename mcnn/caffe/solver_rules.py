"""The values a SolverParameter may hold: Caffe's own CHECKs and the ranges outside which training
means something else than intended (a negative learning rate climbs the loss).

Caffe checks some of these when its solver starts (``src/caffe/solver.cpp``: ``average_loss >= 1``,
``test_interval > 0`` with test nets; ``src/caffe/sgd_solver.cpp``: the ``lr_policy`` names and
``stepsize > 0``) and silently trains with the others. :func:`check_solver` refuses every one of them
before the first iteration, on either engine, with one line naming the solver file and the field.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError

LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


def _fail(source: str, field: str, value: object, expected: str) -> None:
    shown = f"{value:.7g}" if isinstance(value, float) else repr(value)  # float fields are float32
    raise ConfigError(f"{source}: field {field}: {shown}, expected {expected}")


def _check_range(source: str, s: pb.SolverParameter) -> None:
    """The numeric fields every solver has."""
    finite = ("base_lr", "momentum", "momentum2", "weight_decay", "gamma", "power", "delta", "rms_decay",
              "clip_gradients")
    for name in finite:
        if s.HasField(name) and not math.isfinite(getattr(s, name)):
            _fail(source, name, getattr(s, name), "a finite number")
    if s.base_lr <= 0:
        _fail(source, "base_lr", s.base_lr, "> 0 (a negative rate climbs the loss)")
    if not 0 <= s.momentum < 1:
        _fail(source, "momentum", s.momentum, "0 <= momentum < 1")
    if s.weight_decay < 0:
        _fail(source, "weight_decay", s.weight_decay, ">= 0")
    if s.max_iter < 1:
        _fail(source, "max_iter", s.max_iter, ">= 1")
    if s.iter_size < 1:
        _fail(source, "iter_size", s.iter_size, ">= 1")
    if s.average_loss < 1:
        _fail(source, "average_loss", s.average_loss, ">= 1 (Caffe's CHECK)")
    for name in ("display", "snapshot", "test_interval"):
        if getattr(s, name) < 0:
            _fail(source, name, getattr(s, name), ">= 0")
    if any(n < 0 for n in s.test_iter):
        _fail(source, "test_iter", list(s.test_iter), "counts >= 0")
    if len(s.test_iter) and s.test_interval <= 0:
        _fail(source, "test_interval", s.test_interval, "> 0 when test_iter is given (Caffe's CHECK)")


def _check_policy(source: str, s: pb.SolverParameter) -> None:
    """The learning-rate policy and the fields it reads (``SGDSolver::GetLearningRate``)."""
    if s.lr_policy not in LR_POLICIES:
        _fail(source, "lr_policy", s.lr_policy, f"one of {', '.join(LR_POLICIES)}")
    if s.lr_policy == "step" and s.stepsize <= 0:
        _fail(source, "stepsize", s.stepsize, "> 0 with lr_policy step (Caffe's CHECK)")
    if s.lr_policy == "sigmoid" and s.stepsize <= 0:
        _fail(source, "stepsize", s.stepsize, "> 0 with lr_policy sigmoid (Caffe's CHECK)")
    # Caffe CHECKs gamma >= 0 for these five (src/caffe/solvers/sgd_solver.cpp); gamma 0 is refused as well
    # where it would drop the rate to 0 after the first step (a sanity range), not for inv and sigmoid
    if s.lr_policy in ("step", "exp", "inv", "multistep", "sigmoid") and s.gamma < 0:
        _fail(source, "gamma", s.gamma, f">= 0 with lr_policy {s.lr_policy} (Caffe's CHECK)")
    if s.lr_policy in ("step", "exp", "multistep") and s.gamma == 0:
        _fail(source, "gamma", s.gamma, f"> 0 with lr_policy {s.lr_policy} (0 would stop learning after a step)")
    if s.lr_policy == "multistep":
        steps = list(s.stepvalue)
        if not steps or any(b <= a for a, b in itertools.pairwise(steps)) or steps[0] <= 0:
            _fail(source, "stepvalue", steps, "positive, increasing iterations with lr_policy multistep")
    if s.lr_policy == "poly" and s.power < 0:
        _fail(source, "power", s.power, ">= 0 with lr_policy poly")


def _check_type(source: str, s: pb.SolverParameter) -> None:
    """The solver type and its own fields (``src/caffe/solvers/*.cpp``)."""
    kind = s.type or "SGD"
    if kind not in SOLVER_TYPES:
        _fail(source, "type", kind, f"one of {', '.join(SOLVER_TYPES)}")
    if kind in ("AdaGrad", "AdaDelta", "Adam", "RMSProp") and s.delta <= 0:
        _fail(source, "delta", s.delta, f"> 0 with type {kind}")
    if kind == "Adam" and not 0 <= s.momentum2 < 1:
        _fail(source, "momentum2", s.momentum2, "0 <= momentum2 < 1 with type Adam")
    if kind == "RMSProp" and not 0 <= s.rms_decay < 1:
        _fail(source, "rms_decay", s.rms_decay, "0 <= rms_decay < 1 with type RMSProp")
    if kind in ("AdaGrad", "RMSProp") and s.momentum != 0:
        _fail(source, "momentum", s.momentum, f"0 with type {kind} (Caffe's CHECK in sgd_solvers.hpp)")


def _check_nets(source: str, s: pb.SolverParameter) -> None:
    """The net fields (``Solver::InitTrainNet``/``InitTestNets`` in src/caffe/solver.cpp)."""
    train = [name for name in ("net", "net_param", "train_net", "train_net_param") if s.HasField(name)]
    if len(train) != 1:
        _fail(source, "net", ", ".join(train) or "none", "exactly one of net, net_param, train_net, train_net_param")
    tests = len(s.test_net) + len(s.test_net_param)
    generic = s.HasField("net") or s.HasField("net_param")
    if len(s.test_iter) < tests or (not generic and len(s.test_iter) != tests):
        needs = ">=" if generic else "=="
        _fail(source, "test_iter", list(s.test_iter),
              f"one count per test net ({len(s.test_iter)} {needs} {tests} test_net/test_net_param; only a generic "
              "net or net_param is tested by extra test_iter values)")
    instances = len(s.test_iter)
    if len(s.test_state) not in (0, instances):
        _fail(source, "test_state", f"{len(s.test_state)} messages", f"none or one per test net ({instances})")


def snapshot_prefix(solver: pb.SolverParameter, solver_file: str | None = None) -> str:
    """The prefix snapshots are written under, as Caffe sets it when reading a solver file.

    UpgradeSnapshotPrefixProperty (src/caffe/util/upgrade_proto.cpp): without ``snapshot_prefix``
    it is the solver file's path without its extension; a ``snapshot_prefix`` naming an existing
    folder becomes ``<folder>/<solver file stem>``. Without a file (a message built in memory) the
    prefix is used as given, or ``snapshot``.
    """
    prefix = solver.snapshot_prefix
    if not prefix:
        return Path(solver_file).with_suffix("").as_posix() if solver_file else "snapshot"
    if solver_file and Path(prefix).is_dir():
        return (Path(prefix) / Path(solver_file).stem).as_posix()
    return prefix


def check_solver(solver: pb.SolverParameter, source: str = "solver") -> None:
    """Raise :class:`ConfigError` (one line: ``source``, the field, its value, what was expected) for a
    solver value Caffe refuses or that would not train as meant; see the module docstring."""
    _check_range(source, solver)
    _check_policy(source, solver)
    _check_type(source, solver)
    _check_nets(source, solver)
