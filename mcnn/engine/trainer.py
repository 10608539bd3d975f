"""Training with Caffe's solver loop: ``caffe train`` semantics on PyTorch.

The loop follows Caffe's ``Solver::Step``: test every ``test_interval`` iterations (and at
iteration 0 unless ``test_initialization: false``), run ``iter_size`` forward/backward
passes, log the smoothed loss and the net outputs every ``display`` iterations, apply the
update, snapshot every ``snapshot`` iterations and after training. Logs are glog lines.

Two deliberate differences from Caffe, both so that results are reproducible: the
training data position and all random draws (crops, mirrors, dropout) are derived from the
iteration number and ``random_seed``, so a run resumed from ``<prefix>_iter_N.solverstate``
ends with exactly the weights of an uninterrupted run (Caffe restarts its data cursor); and
a non-finite loss stops training without writing a snapshot, so the last snapshot on disk
is the last good one.

Snapshots are written and read by :mod:`mcnn.engine.snapshots`, signals are handled by
:mod:`mcnn.engine.signals`, and the collectives of a data-parallel run live in
:mod:`mcnn.engine.distributed`.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch

from mcnn.caffe import io as cio
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine import distributed, snapshots
from mcnn.engine.dashboard import TrainObserver
from mcnn.engine.data import FEED_TYPES, Feed, batches, feed_mismatch, feed_shapes, make_feed
from mcnn.engine.glog import GlogWriter, log_outputs
from mcnn.engine.net import Net
from mcnn.engine.process import cuda_precision
from mcnn.engine.signals import SignalRequests
from mcnn.engine.solver import Updater, fine_tune_models, learning_rate, solver_nets, solver_type
from mcnn.engine.train_options import TrainOptions, TrainResult, make_forward
from mcnn.errors import ConfigError, ShapeError, TrainingError


class Trainer:
    """One solver run (one process of a data-parallel run when ``options.world`` > 1).

    ``solver_file`` names the file a ``solver`` message was read from (for snapshot names and
    relative paths). Subclasses may take over the hooks below (pycaffe's solvers do): nets fed
    by :meth:`input_values` instead of Data layers, how gradients are cleared, and calls at the
    start of an iteration and once its gradients are ready.
    """

    #: Whether nets may have Input layers or no Data layer; their inputs then come from :meth:`input_values`.
    external_inputs: ClassVar[bool] = False

    def __init__(self, solver: pb.SolverParameter | str | os.PathLike[str], options: TrainOptions | None = None,
                 log: GlogWriter | None = None, *, solver_file: str | os.PathLike[str] | None = None):
        self.options = options or TrainOptions()
        self.root = self.options.rank == 0
        self.log = log or GlogWriter(enabled=self.root)
        if isinstance(solver, pb.SolverParameter):
            base = Path(solver_file).resolve().parent if solver_file is not None else Path.cwd()
            self.param, self.base = solver, base
            self.solver_file: str | None = None if solver_file is None else str(solver_file)
        else:
            self.param, self.base = cio.read_solver(solver), Path(solver).resolve().parent
            self.solver_file = str(solver)
        p = self.param
        self.type = solver_type(p)
        self.signals = SignalRequests(self.options.sigint_effect, self.options.sighup_effect,
                                      self.options.rank, self.options.world)
        if self.options.snapshot and self.options.weights:
            raise ConfigError("give -snapshot to resume or -weights to fine-tune, not both")
        if p.max_iter < 0 or (p.max_iter == 0 and self.options.iterations is None):
            raise ConfigError("solver max_iter must be positive")
        self.seed = p.random_seed if p.random_seed >= 0 else int(time.time() * 1000) % (2**31)
        self.device = torch.device(self.options.device)
        cuda_precision(self.options.tf32)
        generator = torch.Generator().manual_seed(self.seed)
        nets = solver_nets(p, self.base, self.options.level, self.options.stages)
        self.net_source, self.net_base = nets.source, nets.base
        train_param, test_params, state = nets.train, nets.tests, nets.train_state
        self.train_feeds = self._feeds(train_param, pb.TRAIN, state)
        self.net = Net(train_param, state.phase, data_shapes=self._shapes(self.train_feeds), generator=generator,
                       device=self.device, source=self.net_source, level=state.level, stages=state.stage)
        self.test_nets: list[Net] = []
        self.test_feeds: list[list[Feed]] = []
        for i, (test_param, state) in enumerate(zip(test_params, nets.test_states, strict=True)):
            feeds = self._feeds(test_param, pb.TEST, state)
            self.test_feeds.append(feeds)
            try:
                self.test_nets.append(Net(test_param, state.phase, data_shapes=self._shapes(feeds), share_with=self.net,
                                          generator=generator, device=self.device, level=state.level,
                                          stages=state.stage, source=f"{self.net_source} (test {i})"))
            except ShapeError as e:
                raise feed_mismatch(self.train_feeds, feeds) or e from None
        models = fine_tune_models(p, self.options.weights, self.options.snapshot, self.base)
        snapshots.load_fine_tune_weights([self.net, *self.test_nets], models, self.log)
        self.updater = Updater(p, self.net.learnable(), log=self.log)
        self.iter = 0
        self.current_step = 0
        self.test_passes = [0] * len(self.test_nets)
        self.losses: collections.deque[float] = collections.deque(maxlen=max(1, p.average_loss))
        self.snapshots: list[Path] = []
        self.last_test: dict[str, float] = {}
        self.observer: TrainObserver | None = None
        self._tick = (time.time(), 0)  # (wall time, iteration) of the last display line
        self._forward = make_forward(self.options, self.device)
        if self.root and (p.snapshot or p.snapshot_after_train):
            snapshots.check_snapshot_room(self.snapshot_paths(0)[0].parent, self.net, self.updater)
        if self.options.world > 1:
            # Every process starts from the root's weights, as Caffe broadcasts the root solver's net.
            distributed.broadcast_weights(self.net.learnable())

    # -- construction ------------------------------------------------------------------

    def _feeds(self, net: pb.NetParameter, phase: int, state: pb.NetState) -> list[Feed]:
        """One feed per Data or HDF5Data layer of ``net`` in ``state``; TRAIN feeds take this rank's share."""
        feeds = []
        for layer in filter_net(net, state.phase, state.level, state.stage).layer:
            if layer.type in FEED_TYPES:
                world = self.options.world if phase == pb.TRAIN else 1
                rank = self.options.rank if phase == pb.TRAIN else 0
                feeds.append(make_feed(layer, phase, self.seed, rank=rank, world=world, base_dir=self.net_base))
                for severity, where, message in feeds[-1].notes:
                    self.log(message, where, severity)
            elif layer.type == "Input" and not self.external_inputs:
                raise ConfigError(f"layer {layer.name!r}: an Input layer has no data to train on; "
                                  "train the train_val net (with Data layers), not the deploy net")
        if not feeds and not self.external_inputs:
            phase_name = "TRAIN" if phase == pb.TRAIN else "TEST"
            raise ConfigError(f"{self.net_source}: the {phase_name} net has no Data layer")
        return feeds

    @staticmethod
    def _shapes(feeds: list[Feed]) -> dict[str, tuple[int, ...]]:
        return feed_shapes(feeds)

    # -- hooks (see the class docstring) -------------------------------------------------

    def input_values(self, net: Net) -> dict[str, torch.Tensor]:
        """Values of ``net``'s inputs that no Data layer provides (none: a plain run has Data layers only)."""
        return {}

    def clear_gradients(self) -> None:
        """Forget the gradients of the last iteration (Caffe's ClearParamDiffs)."""
        for blob in self.net.learnable():
            blob.tensor.grad = None

    def on_iteration_start(self) -> None:
        """Called in each iteration after testing, before the forward/backward passes."""

    def on_gradients_ready(self, blobs: dict[str, torch.Tensor]) -> None:
        """Called once an iteration's gradients are summed, before the update; ``blobs``: the last pass."""

    # -- the loop ------------------------------------------------------------------------

    def _seed_iteration(self, iteration: int, sub: int) -> None:
        seed = distributed.rank_seed(self.seed, self.options.rank)  # dropout masks differ between processes
        torch.manual_seed((seed * 1_000_003 + iteration * 101 + sub) % (2**63))

    def solve(self) -> TrainResult:
        """Run from the current iteration (or the resume snapshot) to ``max_iter``."""
        self.observer = self.options.observer() if self.options.observer is not None and self.root else None
        try:
            return self._solve()
        finally:
            if self.observer is not None:
                self.observer.close()

    def _solve(self) -> TrainResult:
        p = self.param
        self.log(f"Solving {self.net.name}", "solver.cpp:289")
        self.log(f"Learning Rate Policy: {p.lr_policy}", "solver.cpp:290")
        if self.options.snapshot:
            self.restore(self.options.snapshot)
        stop_iter = self.options.iterations if self.options.iterations is not None else p.max_iter
        self.signals.install()
        try:
            self.step(stop_iter - self.iter)
        finally:
            self.signals.restore()
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        stopped = self.signals.requested == "stop"
        if stopped:
            self.log("Optimization stopped early.", "solver.cpp:306")
        else:
            if p.display and self.iter % p.display == 0:
                with torch.no_grad():
                    loss = self._forward_train_batch(self.iter * max(1, p.iter_size), self.iter, 0)[0]
                self._smooth(float(loss))
                self.log(f"Iteration {self.iter}, loss = {self._smoothed():.6g}", "solver.cpp:310")
            if self._test_due():
                self.test_all()
            self.log("Optimization Done.", "solver.cpp:316")
        return TrainResult(self.iter, list(self.snapshots), stopped, dict(self.last_test))

    def _forward_train_batch(self, batch: int, iteration: int, sub: int,
                             feeds: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
        if feeds is None:
            feeds = {}
            for feed in self.train_feeds:
                feeds.update(feed.batch(batch))
        extra = self.input_values(self.net)
        if extra:
            feeds = {**feeds, **extra}
        self._seed_iteration(iteration, sub)
        blobs = self._forward(self.net, feeds, True)
        return self.net.loss(blobs), blobs

    def step(self, iters: int) -> None:
        """Caffe's Solver::Step: ``iters`` iterations of test / forward-backward / update / snapshot."""
        p = self.param
        iter_size = max(1, p.iter_size)
        stop_iter = self.iter + iters
        if iters <= 0:
            return
        loader = iter(batches(self.train_feeds, self.iter * iter_size, iters * iter_size, self.options.workers,
                              pin_memory=self.device.type == "cuda"))
        bar = self._progress(self.iter, stop_iter)
        self._tick = (time.time(), self.iter)
        while self.iter < stop_iter:
            self.clear_gradients()
            if self._test_due() and (self.iter > 0 or p.test_initialization):
                self.test_all()
            if self.signals.poll() == "stop":
                break
            self.on_iteration_start()
            blobs = self._forward_backward(loader, iter_size)
            displayed = bool(p.display) and self.iter % p.display == 0
            if displayed:
                self._display(blobs)
            self.on_gradients_ready(blobs)
            rate, step = learning_rate(p, self.iter, self.current_step)
            if p.lr_policy == "multistep" and step != self.current_step:
                self.log(f"MultiStep Status: Iteration {self.iter}, step = {step}", "sgd_solver.cpp:50")
            self.current_step = step
            if displayed:
                self.log(f"Iteration {self.iter}, lr = {rate:.6g}", "sgd_solver.cpp:112")
                if self.observer is not None:
                    self.observer.train(self.iter, self.losses[-1], self._smoothed(), rate,
                                        {k: blobs[k] for k in self.net.outputs},
                                        {f.tops[0]: blobs[f.tops[0]] for f in self.train_feeds})
            self.updater.apply(rate, self.iter)
            self.iter += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{self._smoothed():.4g}", lr=f"{rate:.3g}")
            if self._snapshot_or_stop():
                break
        if bar is not None:
            bar.close()

    # -- pieces of the loop --------------------------------------------------------------

    def _test_due(self) -> bool:
        """Whether the test nets run at this iteration (every ``test_interval``, root process only)."""
        return bool(self.param.test_interval) and self.iter % self.param.test_interval == 0 and self.root

    def _forward_backward(self, loader: Iterator[dict[str, torch.Tensor]], iter_size: int) -> dict[str, torch.Tensor]:
        """``iter_size`` forward/backward passes accumulating gradients; returns the last pass's blobs.

        Records the mean loss for smoothing; :class:`TrainingError` if it is not finite on some process.
        """
        loss_sum = 0.0
        blobs: dict[str, torch.Tensor] = {}
        for sub in range(iter_size):
            loss, blobs = self._forward_train_batch(0, self.iter, sub, next(loader))
            loss.backward()
            if sub == iter_size - 1:
                distributed.average_gradients(self.net.learnable(), self.options.world)
            loss_sum += float(loss.detach())
        loss_value = loss_sum / iter_size
        if not distributed.all_finite(loss_value, self.options.world):
            last = str(self.snapshots[-1]) if self.snapshots else "none written in this run"
            raise TrainingError(f"iteration {self.iter}: loss is {loss_value} (training diverged); stopped "
                                f"without a snapshot; last good snapshot: {last}. Lower base_lr or check the data")
        self._smooth(loss_value)
        return blobs

    def _display(self, blobs: dict[str, torch.Tensor]) -> None:
        """Log the speed, the smoothed loss and the train net outputs (Caffe's display lines)."""
        now = time.time()
        tick, tick_iter = self._tick
        lapse = now - tick
        per_s = (self.iter - tick_iter) / lapse if lapse > 0 and self.iter > tick_iter else 0.0
        self.log(f"Iteration {self.iter} ({per_s:.6g} iter/s, {lapse:.4g}s/{self.param.display} iters), "
                 f"loss = {self._smoothed():.6g}", "solver.cpp:243")
        self._log_outputs("Train", self.net, {k: blobs[k].detach() for k in self.net.outputs})
        self._tick = (now, self.iter)

    def _snapshot_or_stop(self) -> bool:
        """Snapshot when due or requested by a signal; True when a signal asks to stop."""
        action = self.signals.poll()
        if (self.param.snapshot and self.iter % self.param.snapshot == 0) or action == "snapshot":
            self.snapshot()
        return action == "stop"

    def _smooth(self, loss: float) -> None:
        self.losses.append(loss)

    def _smoothed(self) -> float:
        return sum(self.losses) / len(self.losses) if self.losses else float("nan")

    def _log_outputs(self, kind: str, net: Net, values: dict[str, torch.Tensor]) -> None:
        log_outputs(self.log, kind, {n: values[n].float().reshape(-1).tolist() for n in net.outputs},
                    net.output_weights())

    @torch.no_grad()
    def test_all(self) -> dict[str, float]:
        """Run every test net for its test_iter batches and log the averaged outputs."""
        results: dict[str, float] = {}
        for i, (net, feeds) in enumerate(zip(self.test_nets, self.test_feeds, strict=True)):
            self.log(f"Iteration {self.iter}, Testing net (#{i})", "solver.cpp:347")
            count = self.param.test_iter[i]
            totals: dict[str, torch.Tensor] = {}
            start = self.test_passes[i] * count
            for b in range(count):
                fed: dict[str, torch.Tensor] = {}
                for feed in feeds:
                    fed.update(feed.batch(start + b))
                fed.update(self.input_values(net))
                blobs = self._forward(net, fed, False)
                for name in net.outputs:
                    value = blobs[name].detach().float()
                    totals[name] = totals.get(name, 0) + value
            self.test_passes[i] += 1
            means = {name: (total / count) for name, total in totals.items()}
            if self.param.test_compute_loss:
                loss = sum(float(means[n].sum()) * w for n, w in net.output_weights().items() if w)
                self.log(f"Test loss: {loss:.6g}", "solver.cpp:410")
            self._log_outputs("Test", net, means)
            if self.observer is not None:
                self.observer.test(self.iter, i, means)
            for name, value in means.items():
                if value.numel() == 1:
                    results[name if i == 0 else f"{name}#{i}"] = float(value)
        self.last_test = results
        return results

    def _progress(self, start: int, stop: int) -> Any:  # a tqdm bar, or None without progress
        if not (self.options.progress and self.root):
            return None
        from tqdm import tqdm

        bar = tqdm(total=stop - start, initial=0, desc=f"train {self.net.name}", unit="it", dynamic_ncols=True,
                   leave=True)
        self.log.echo = tqdm.write
        return bar

    # -- snapshots ---------------------------------------------------------------------

    def snapshot_paths(self, iteration: int | None = None) -> tuple[Path, Path]:
        """Caffe's names: ``<prefix>_iter_<N>.caffemodel`` and ``.solverstate`` (N: the current iteration)."""
        return snapshots.snapshot_paths(self.param, self.iter if iteration is None else iteration, self.solver_file)

    def snapshot(self) -> tuple[Path, Path] | None:
        """Write the weights and the solver state (root process only)."""
        if not self.root:
            return None
        paths = self.snapshot_paths()
        snapshots.write_snapshot(paths, self.net, self.updater, self.iter, self.current_step, self.log)
        self.snapshots.append(paths[0])
        return paths

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Resume from a ``.solverstate`` (and the caffemodel it names)."""
        self.iter, self.current_step = snapshots.restore_snapshot(path, self.net, self.updater, self.log)
