"""Caffe's solvers: learning-rate policies and the update rules, in Caffe's order.

One update (Caffe's ``ApplyUpdate``): clip the summed gradients to ``clip_gradients`` (global
L2 norm), divide by ``iter_size``, add the regularisation term ``weight_decay * decay_mult``
times w (L2) or sign(w) (L1), turn the gradient into the update with the solver's rule at
``local_rate = rate * lr_mult``, and subtract it from the weights. Unlike PyTorch's SGD, the
learning rate enters the momentum history: ``V = m V + lr (g + wd w)``, ``w -= V``.

The history blobs are kept in Caffe's order so ``.solverstate`` files are interchangeable:
one per learnable blob, and for AdaDelta and Adam a second set after the first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.upgrade import SOLVER_TYPES as LEGACY_SOLVER_TYPES
from mcnn.engine.net import LearnableBlob
from mcnn.errors import ConfigError

#: Caffe's solver types, in its enum's order (the names of the deprecated ``solver_type`` values, mapped).
SOLVER_TYPES = tuple(LEGACY_SOLVER_TYPES.values())


def solver_type(param: pb.SolverParameter) -> str:
    """The solver type, honouring the deprecated ``solver_type`` enum like Caffe."""
    if param.HasField("solver_type") and not param.HasField("type"):
        return LEGACY_SOLVER_TYPES[pb.SolverParameter.SolverType.Name(param.solver_type)]
    if param.type not in SOLVER_TYPES:
        raise ConfigError(f"solver type {param.type!r} is not supported; choose from {', '.join(SOLVER_TYPES)}")
    return param.type


@dataclass
class SolverNets:
    """The nets a solver names: the train net, one test net per ``test_iter``, and where they come from.

    ``source`` is the train net's file (or the solver field holding it); ``base`` is the folder that
    relative paths in the nets (LMDB sources, mean files) are looked up in after the working directory.
    ``train_state`` and ``test_states`` (one per test net) are the NetStates that select their layers.
    """

    train: pb.NetParameter
    tests: list[pb.NetParameter]
    source: str
    base: Path
    train_state: pb.NetState = field(default_factory=lambda: pb.NetState(phase=pb.TRAIN))
    test_states: list[pb.NetState] = field(default_factory=list)


def _resolve(path: str, base: Path, what: str) -> Path:
    """A path from a solver/net file: relative to the working directory (Caffe), else to ``base``."""
    p = Path(path)
    if p.exists():
        return p
    if not p.is_absolute() and (base / p).exists():
        return base / p
    where = "" if p.is_absolute() else f" (looked relative to {Path.cwd()} and {base})"
    raise ConfigError(f"{what} {path!r} not found{where}")


def _train_net(param: pb.SolverParameter, base: Path) -> tuple[pb.NetParameter, str]:
    """The train net and its source, in Caffe's precedence: train_net_param, train_net, net_param, net."""
    if param.HasField("train_net_param"):
        return param.train_net_param, "train_net_param"
    if param.train_net:
        path = _resolve(param.train_net, base, "train_net")
        return cio.read_net(path), str(path)
    if param.HasField("net_param"):
        return param.net_param, "net_param"
    if param.net:
        path = _resolve(param.net, base, "solver net")
        return cio.read_net(path), str(path)
    raise ConfigError("the solver names no net (net, net_param, train_net or train_net_param)")


def merged_state(phase: int, net: pb.NetParameter, *overrides: pb.NetState) -> pb.NetState:
    """The NetState a solver gives a net: ``phase``, then the net's own ``state``, then ``overrides``.

    Protobuf merging as in Caffe's Solver::InitTrainNet/InitTestNets (src/caffe/solver.cpp): a field set
    in a later message wins (phase, level), stages accumulate.
    """
    state = pb.NetState(phase=phase)
    state.MergeFrom(net.state)
    for extra in overrides:
        state.MergeFrom(extra)
    return state


def flag_state(level: int | None, stages: Sequence[str]) -> pb.NetState:
    """What ``caffe train -level/-stage`` add to the solver's ``train_state`` (tools/caffe.cpp).

    Caffe's train sets the level unconditionally (its flag defaults to 0), so under ``caffe train``
    the net's and the solver's own levels give way; ``None`` leaves them (pycaffe's solvers).
    """
    state = pb.NetState(stage=list(stages))
    state.ClearField("phase")
    if level is not None:
        state.level = level
    return state


def solver_nets(param: pb.SolverParameter, base: Path, level: int | None = None,
                stages: Sequence[str] = ()) -> SolverNets:
    """Resolve the solver's nets as Caffe's Solver::InitTrainNet/InitTestNets (src/caffe/solver.cpp).

    File names are tried relative to the working directory, then to ``base`` (the solver's folder).
    Test nets are the ``test_net_param`` messages, then the ``test_net`` files, then, for the
    ``test_iter`` values left over, the generic ``net``/``net_param`` (tested in the TEST phase);
    a solver with ``train_net`` needs one test net per ``test_iter``. ``level``/``stages`` are
    the ``caffe train -level/-stage`` flags (:func:`flag_state`).
    """
    train, source = _train_net(param, base)
    net_base = Path(source).resolve().parent if Path(source).exists() else base
    tests: list[pb.NetParameter] = list(param.test_net_param)
    tests += [cio.read_net(_resolve(t, base, "test_net")) for t in param.test_net]
    generic = param.HasField("net_param") or bool(param.net)
    if generic and len(param.test_iter) >= len(tests):
        tests += [train] * (len(param.test_iter) - len(tests))
    if len(tests) != len(param.test_iter):
        where = "" if generic else " (test_iter values beyond the test nets only test a generic net or net_param)"
        raise ConfigError(f"the solver has {len(tests)} test nets and {len(param.test_iter)} test_iter values; "
                          f"give one test_iter per test net{where}")
    if len(param.test_state) not in (0, len(tests)):
        raise ConfigError(f"the solver has {len(param.test_state)} test_state messages for {len(tests)} test nets; "
                          "give none or one per test net")
    if tests and param.test_interval <= 0:
        raise ConfigError("test_interval must be positive when test_iter is given")
    train_state = merged_state(pb.TRAIN, train, param.train_state, flag_state(level, stages))
    test_states = [merged_state(pb.TEST, net, *param.test_state[i:i + 1]) for i, net in enumerate(tests)]
    return SolverNets(train, tests, source, net_base, train_state, test_states)


def fine_tune_models(param: pb.SolverParameter, flag_weights: Sequence[str], snapshot: str | None,
                     base: Path) -> list[str]:
    """The caffemodels a run starts from, as ``caffe train`` chooses them (tools/caffe.cpp, solver.cpp).

    ``-snapshot`` clears the solver's ``weights``; ``-weights`` replaces them; otherwise each
    ``weights`` entry (a comma list, names trimmed) is used, looked up in the working directory and
    then in ``base`` (the solver's folder).
    """
    if snapshot:
        return []
    if flag_weights:
        return list(flag_weights)
    names = [name.strip() for entry in param.weights for name in entry.split(",") if name.strip()]
    return [str(_resolve(name, base, "solver weights")) for name in names]


def _pow(a: float, b: float) -> np.float64:
    """``a ** b`` in double, inf where it overflows and NaN where it is undefined, as C's pow (Python's ``**``
    would raise)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.float64(a) ** np.float64(b)


def learning_rate(param: pb.SolverParameter, iteration: int, current_step: int = 0) -> tuple[float, int]:
    """(rate, current_step) at ``iteration`` (Caffe's GetLearningRate), the rate as the float Caffe computes.

    ``current_step`` is the multistep counter Caffe keeps (and stores in the solverstate); it
    advances by at most one step per call, as in Caffe.
    """
    # Caffe's types (src/caffe/solvers/sgd_solver.cpp): step, exp and multistep raise the float gamma to an
    # integer power, which C++ computes in double; inv, poly and sigmoid compute in float (powf, expf: here
    # the double result rounded to float, which glibc's functions match to their last bit but for rare ties).
    f32 = np.float32
    policy = param.lr_policy
    base, gamma, power = f32(param.base_lr), f32(param.gamma), f32(param.power)
    if policy == "fixed":
        return float(base), current_step
    if policy == "step":
        if param.stepsize <= 0:
            raise ConfigError("lr_policy step needs a positive stepsize")
        step = iteration // param.stepsize
        return float(f32(base * _pow(gamma, step))), step
    if policy == "exp":
        return float(f32(base * _pow(gamma, iteration))), current_step
    if policy == "inv":
        return float(base * f32(_pow(f32(1) + gamma * f32(iteration), -power))), current_step
    if policy == "multistep":
        if current_step < len(param.stepvalue) and iteration >= param.stepvalue[current_step]:
            current_step += 1
        return float(f32(base * _pow(gamma, current_step))), current_step
    if policy == "poly":
        return float(base * f32(_pow(f32(1) - f32(iteration) / f32(param.max_iter), power))), current_step
    if policy == "sigmoid":
        with np.errstate(over="ignore"):
            e = f32(np.exp(np.float64(-gamma * (f32(iteration) - f32(param.stepsize)))))
        return float(base * (f32(1) / (f32(1) + e))), current_step
    raise ConfigError(f"unknown lr_policy {policy!r}; choose from fixed, step, exp, inv, multistep, poly, sigmoid")


class Updater:
    """Turns accumulated gradients into Caffe's update for one solver type.

    ``log`` (a :class:`mcnn.engine.glog.GlogWriter` or any ``log(message, where)``) receives the lines
    Caffe's solver logs during an update: the ``Gradient clipping`` line of ClipGradients.
    """

    def __init__(self, param: pb.SolverParameter, blobs: Sequence[LearnableBlob],
                 log: Callable[[str, str], None] | None = None):
        self.param = param
        self.log = log
        self.type = solver_type(param)
        self.blobs = list(blobs)
        sets = 2 if self.type in ("AdaDelta", "Adam") else 1
        self.history: list[torch.Tensor] = [torch.zeros_like(b.tensor, memory_format=torch.contiguous_format)
                                            for _ in range(sets) for b in self.blobs]
        if param.regularization_type not in ("L1", "L2"):
            raise ConfigError(f"regularization_type {param.regularization_type!r}: use L1 or L2")
        if self.type in ("AdaGrad", "RMSProp") and param.momentum != 0:
            # the constructors' CHECK_EQ(0, momentum) in include/caffe/sgd_solvers.hpp
            raise ConfigError(f"momentum {param.momentum:g} cannot be used with {self.type} (Caffe refuses it); "
                              "remove momentum from the solver")

    @torch.no_grad()
    def clip_gradients(self) -> float:
        """Scale all gradients so their global L2 norm is at most ``clip_gradients``; returns the norm.

        Frozen blobs (no gradient) stay out of the norm, as Caffe computes no diff for them. When it
        scales, it logs Caffe's line (SGDSolver::ClipGradients, src/caffe/solvers/sgd_solver.cpp).
        """
        clip = self.param.clip_gradients
        grads = [b.tensor.grad for b in self.blobs if b.tensor.grad is not None]
        if clip < 0 or not grads:
            return float("nan")
        norm = math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))
        if norm > clip:
            scale = clip / norm
            if self.log is not None:
                self.log(f"Gradient clipping: scaling down gradients (L2 norm {norm:.6g} > {clip:.6g}) "
                         f"by scale factor {scale:.6g}", "sgd_solver.cpp:99")
            for g in grads:
                g.mul_(scale)
        return norm

    @torch.no_grad()
    def apply(self, rate: float, iteration: int) -> None:
        """One update of every learnable blob at learning rate ``rate`` (Caffe's ApplyUpdate)."""
        p = self.param
        self.clip_gradients()
        n = len(self.blobs)
        for i, blob in enumerate(self.blobs):
            w = blob.tensor
            if w.grad is None:
                w.grad = torch.zeros_like(w)
            g = w.grad
            if p.iter_size > 1:
                g.mul_(1.0 / p.iter_size)
            decay = p.weight_decay * blob.decay_mult
            if decay:
                if p.regularization_type == "L2":
                    g.add_(w, alpha=decay)
                else:
                    g.add_(torch.sign(w), alpha=decay)
            local_rate = rate * blob.lr_mult
            update = self._update(i, n, g, local_rate, iteration)
            w.sub_(update)

    def _update(self, i: int, n: int, g: torch.Tensor, lr: float, iteration: int) -> torch.Tensor:
        p, h = self.param, self.history[i]
        if self.type == "SGD":
            h.mul_(p.momentum).add_(g, alpha=lr)
            return h
        if self.type == "Nesterov":
            previous = h.clone()
            h.mul_(p.momentum).add_(g, alpha=lr)
            return h * (1 + p.momentum) - previous * p.momentum
        if self.type == "AdaGrad":
            h.add_(g * g)
            return lr * g / (h.sqrt() + p.delta)
        if self.type == "RMSProp":
            h.mul_(p.rms_decay).add_(g * g, alpha=1 - p.rms_decay)
            return lr * g / (h.sqrt() + p.delta)
        if self.type == "AdaDelta":
            h2 = self.history[n + i]
            h.mul_(p.momentum).add_(g * g, alpha=1 - p.momentum)
            step = g * torch.sqrt((h2 + p.delta) / (h + p.delta))
            h2.mul_(p.momentum).add_(step * step, alpha=1 - p.momentum)
            return lr * step
        # Adam: beta1 = momentum, beta2 = momentum2, eps = delta, t = iteration + 1.
        v = self.history[n + i]
        t = iteration + 1
        h.mul_(p.momentum).add_(g, alpha=1 - p.momentum)
        v.mul_(p.momentum2).add_(g * g, alpha=1 - p.momentum2)
        correction = math.sqrt(1 - p.momentum2 ** t) / (1 - p.momentum ** t)
        return lr * correction * h / (v.sqrt() + p.delta)

    def load_history(self, arrays: Sequence[torch.Tensor]) -> None:
        """Restore history blobs from a solverstate (count and shapes must match)."""
        if len(arrays) != len(self.history):
            raise ConfigError(f"solverstate has {len(arrays)} history blobs, a {self.type} solver for this net "
                              f"keeps {len(self.history)}")
        for dst, src in zip(self.history, arrays, strict=True):
            if src.numel() != dst.numel():
                raise ConfigError(f"solverstate history blob of {src.numel()} values, the net's is {dst.numel()}")
            dst.copy_(src.reshape(dst.shape).to(dst.device))
