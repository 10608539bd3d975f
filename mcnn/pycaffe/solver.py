"""pycaffe's solvers on the engine's Trainer: the loop, snapshots, logs and arithmetic of ``tools/train.py``.

``SGDSolver(file)`` (and the other five) run the update rule their name says whatever the
file's ``type`` is, as in pycaffe; :func:`get_solver` takes the type from the file. ``net`` and
``test_nets`` are pycaffe Nets sharing the trainer's weights: the train net's blobs hold the
values of the last training pass, its params' diffs the gradients (filled before the update,
which is when ``add_callback``'s ``on_gradients_ready`` runs). Input layers and nets without
Data layers are fed from their blobs, so ``net.blobs['data'].data[...] = x; solver.step(1)``
trains on ``x``. Data layers read the batch of the current iteration (``iter * iter_size``),
and a test net's Data layers read one batch per manual ``forward``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net as EngineNet
from mcnn.engine.solver import SOLVER_TYPES, learning_rate, solver_type
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.pycaffe import mode
from mcnn.pycaffe.net import Net

PathLike = str | os.PathLike[str]
Callback = Callable[[], None]


def _caffe_prefix(param: pb.SolverParameter, filename: PathLike) -> None:
    """Caffe's default snapshot prefix: the solver file without its extension (or inside a prefix folder)."""
    stem = Path(filename).with_suffix("").name
    if not param.snapshot_prefix:
        param.snapshot_prefix = Path(filename).with_suffix("").as_posix()
    elif Path(param.snapshot_prefix).is_dir():
        param.snapshot_prefix = (Path(param.snapshot_prefix) / stem).as_posix()


class _Trainer(Trainer):
    """The engine's Trainer feeding input blobs from, and reporting passes to, the pycaffe side."""

    external_inputs = True

    def __init__(self, owner: Solver, param: pb.SolverParameter, filename: PathLike):
        self.owner = owner
        options = TrainOptions(device=str(mode.engine_device()), workers=0)
        super().__init__(param, options, solver_file=filename)

    def input_values(self, net: EngineNet) -> dict[str, torch.Tensor]:
        """The input blobs of the pycaffe Net around ``net`` (before the Nets exist: none)."""
        wrapper = self.owner._wrapper(net)
        return wrapper._input_tensors() if wrapper is not None else {}

    def clear_gradients(self) -> None:
        """Zero the params' diffs in place (they are the gradient buffers the backward adds into)."""
        self.owner._bind_gradients()

    def on_iteration_start(self) -> None:
        """Write CPU edits of the weights to the device; run the users' ``on_start`` callbacks."""
        self.owner.net._push_params()
        for on_start, _ in self.owner._callbacks:
            on_start()

    def on_gradients_ready(self, blobs: dict[str, torch.Tensor]) -> None:
        """Show the pass in ``net.blobs`` and the gradients in the diffs; run ``on_gradients_ready``."""
        owner = self.owner
        owner.net._store_blobs(blobs)
        owner._gradients_to_diffs()
        for _, on_ready in owner._callbacks:
            on_ready()
        owner._diffs_to_gradients()


class Solver:
    """A solver built from a solver prototxt; the update rule is :attr:`solver_type` (the file's if None)."""

    solver_type: ClassVar[str | None] = None

    def __init__(self, filename: PathLike):
        param = cio.read_solver(filename)
        if self.solver_type is not None:
            param.ClearField("solver_type")
            param.type = self.solver_type
        _caffe_prefix(param, filename)
        self._nets: list[Net] = []
        self._callbacks: list[tuple[Callback, Callback]] = []
        self._trainer = _Trainer(self, param, filename)
        t = self._trainer
        iter_size = max(1, t.param.iter_size)
        self._net = Net._wrap(t.net, t.train_feeds, cursor=lambda: t.iter * iter_size)
        shared = self._net._param_blobs
        self._test_nets = [Net._wrap(tn, feeds, params=shared) for tn, feeds in zip(t.test_nets, t.test_feeds,
                                                                                  strict=True)]
        self._nets = [self._net, *self._test_nets]
        self._bind_gradients()

    def _wrapper(self, engine: EngineNet) -> Net | None:
        for net in self._nets:
            if net._engine is engine:
                return net
        return None

    # -- gradients as the params' diffs -------------------------------------------------------

    def _bind_gradients(self) -> None:
        """Zero every diff and make it the gradient buffer (CPU) or zero the device gradient (GPU)."""
        for blob in self._net._layer_blobs():
            blob._diff.zero_()
            param = blob._param
            if param is None:
                continue
            if blob._mirrored:
                param.grad = torch.zeros_like(param)
            else:
                param.grad = blob._diff

    def _gradients_to_diffs(self) -> None:
        for blob in self._net._layer_blobs():
            grad = blob._param.grad if blob._param is not None else None
            if grad is not None and grad.data_ptr() != blob._diff.data_ptr():
                blob._diff.copy_(grad.detach())  # autograd replaced the buffer, or the gradient is on a GPU

    def _diffs_to_gradients(self) -> None:
        for blob in self._net._layer_blobs():
            param = blob._param
            if param is None:
                continue
            if blob._mirrored:
                param.grad = blob._diff.to(param.device)
            elif param.grad is None or param.grad.data_ptr() != blob._diff.data_ptr():
                param.grad = blob._diff

    def _changed(self) -> None:
        for net in self._nets:
            net._params_changed()

    # -- pycaffe's methods --------------------------------------------------------------------

    @property
    def net(self) -> Net:
        """The train net."""
        return self._net

    @property
    def test_nets(self) -> list[Net]:
        """The test nets, sharing the train net's weights."""
        return list(self._test_nets)

    @property
    def iter(self) -> int:
        """The current iteration."""
        return self._trainer.iter

    @property
    def param(self) -> pb.SolverParameter:
        """The solver parameters as used (type and snapshot prefix filled in)."""
        return self._trainer.param

    def step(self, iters: int) -> None:
        """``iters`` iterations: test when due, forward/backward, update, snapshot when due."""
        self._net._push_params()
        self._trainer.step(int(iters))
        self._changed()

    def solve(self, resume_file: PathLike | None = None) -> None:
        """Train to ``max_iter`` (from ``resume_file``, a .solverstate, if given), then snapshot and test."""
        self._net._push_params()
        if resume_file is not None:
            self._trainer.restore(resume_file)
        self._trainer.solve()
        self._changed()

    def apply_update(self) -> None:
        """One update from the gradients in the params' diffs, at the current iteration's rate."""
        self._net._push_params()
        self._diffs_to_gradients()
        t = self._trainer
        rate, t.current_step = learning_rate(t.param, t.iter, t.current_step)
        t.updater.apply(rate, t.iter)
        self._gradients_to_diffs()
        self._changed()

    def snapshot(self) -> None:
        """Write ``<prefix>_iter_<N>.caffemodel`` and ``.solverstate``."""
        self._net._push_params()
        self._trainer.snapshot()

    def restore(self, state_file: PathLike) -> None:
        """Resume from a ``.solverstate`` (and the caffemodel it names)."""
        self._trainer.restore(state_file)
        self._changed()

    def add_callback(self, on_start: Callback, on_gradients_ready: Callback) -> None:
        """Call ``on_start()`` before each iteration's passes and ``on_gradients_ready()`` before its update."""
        self._callbacks.append((on_start, on_gradients_ready))

    def share_weights(self, net: Net) -> None:
        """Make ``net`` use this solver's weights (its same-named layers)."""
        net.share_with(self._net)


class SGDSolver(Solver):
    """Stochastic gradient descent with momentum (Caffe's SGD)."""

    solver_type = "SGD"


class NesterovSolver(Solver):
    """Nesterov's accelerated gradient."""

    solver_type = "Nesterov"


class AdaGradSolver(Solver):
    """AdaGrad."""

    solver_type = "AdaGrad"


class RMSPropSolver(Solver):
    """RMSProp (``rms_decay``)."""

    solver_type = "RMSProp"


class AdaDeltaSolver(Solver):
    """AdaDelta."""

    solver_type = "AdaDelta"


class AdamSolver(Solver):
    """Adam (``momentum``, ``momentum2``, ``delta``)."""

    solver_type = "Adam"


_BY_TYPE: dict[str, type[Solver]] = {cls.solver_type: cls for cls in  # type: ignore[misc]
                                     (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver, AdaDeltaSolver,
                                      AdamSolver)}
assert set(_BY_TYPE) == set(SOLVER_TYPES)


def get_solver(filename: PathLike) -> Solver:
    """The solver of the type the file names (``type``, or the deprecated ``solver_type``)."""
    return _BY_TYPE[solver_type(cio.read_solver(filename))](filename)
