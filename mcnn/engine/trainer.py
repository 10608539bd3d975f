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
"""

from __future__ import annotations

import collections
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import torch

from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.data import DataFeed, batches
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import Net
from mcnn.engine.solver import Updater, learning_rate, solver_type
from mcnn.errors import ConfigError, TrainingError

ACTIONS = ("stop", "snapshot", "none")



@dataclass
class TrainOptions:
    """How to run a solver (the ``caffe train`` flags and the engine's own)."""

    weights: list[str] = field(default_factory=list)
    snapshot: str | None = None
    iterations: int | None = None
    device: str = "cpu"
    workers: int = 0
    sigint_effect: str = "stop"
    sighup_effect: str = "snapshot"
    progress: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    rank: int = 0
    world: int = 1


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind."""

    iterations: int
    snapshots: list[Path]
    stopped_early: bool
    last_test: dict[str, float]


def _resolve(path: str, base: Path, what: str) -> Path:
    """A path from a solver/net file: relative to the working directory (Caffe), else to ``base``."""
    p = Path(path)
    if p.exists():
        return p
    if not p.is_absolute() and (base / p).exists():
        return base / p
    where = "" if p.is_absolute() else f" (looked relative to {Path.cwd()} and {base})"
    raise ConfigError(f"{what} {path!r} not found{where}")


class Trainer:
    """One solver run (one process of a data-parallel run when ``options.world`` > 1)."""

    def __init__(self, solver: pb.SolverParameter | str | os.PathLike[str], options: TrainOptions | None = None,
                 log: GlogWriter | None = None):
        self.options = options or TrainOptions()
        self.root = self.options.rank == 0
        self.log = log or GlogWriter(enabled=self.root)
        if isinstance(solver, pb.SolverParameter):
            self.param, self.base = solver, Path.cwd()
        else:
            self.param, self.base = cio.read_solver(solver), Path(solver).resolve().parent
            self.solver_file = str(solver)
        p = self.param
        self.type = solver_type(p)
        for action in (self.options.sigint_effect, self.options.sighup_effect):
            if action not in ACTIONS:
                raise ConfigError(f"signal effect must be one of {', '.join(ACTIONS)}, got {action!r}")
        if self.options.snapshot and self.options.weights:
            raise ConfigError("give -snapshot to resume or -weights to fine-tune, not both")
        if p.snapshot_format == pb.SolverParameter.HDF5:
            raise ConfigError("snapshot_format HDF5 is not supported by the engine; use BINARYPROTO")
        if p.max_iter < 0 or (p.max_iter == 0 and self.options.iterations is None):
            raise ConfigError("solver max_iter must be positive")
        self.seed = p.random_seed if p.random_seed >= 0 else int(time.time() * 1000) % (2**31)
        self.device = torch.device(self.options.device)
        generator = torch.Generator().manual_seed(self.seed)
        train_param, test_params = self._net_params()
        self.train_feeds = self._feeds(train_param, pb.TRAIN)
        self.net = Net(train_param, pb.TRAIN, data_shapes=self._shapes(self.train_feeds), generator=generator,
                       device=self.device, source=self.net_source)
        self.test_nets: list[Net] = []
        self.test_feeds: list[list[DataFeed]] = []
        for i, test_param in enumerate(test_params):
            feeds = self._feeds(test_param, pb.TEST)
            self.test_feeds.append(feeds)
            self.test_nets.append(Net(test_param, pb.TEST, data_shapes=self._shapes(feeds), share_with=self.net,
                                      generator=generator, device=self.device, source=f"{self.net_source} (test {i})"))
        for path in self.options.weights:
            ignored = self.net.load_weights(path)
            note = f"; ignored source layers {', '.join(ignored)}" if ignored else ""
            self.log(f"Copied weights from {path}{note}", "net.cpp:744")
        self.updater = Updater(p, self.net.learnable())
        self.iter = 0
        self.current_step = 0
        self.test_passes = [0] * len(self.test_nets)
        self.losses: collections.deque[float] = collections.deque(maxlen=max(1, p.average_loss))
        self.snapshots: list[Path] = []
        self.last_test: dict[str, float] = {}
        self._requested: str | None = None
        self._forward = self._make_forward()
        self._ddp = None
        if self.options.world > 1:
            self._setup_ddp()

    # -- construction ------------------------------------------------------------------

    def _net_params(self) -> tuple[pb.NetParameter, list[pb.NetParameter]]:
        p = self.param
        if p.HasField("train_net_param"):
            train, self.net_source = p.train_net_param, "train_net_param"
        elif p.train_net:
            path = _resolve(p.train_net, self.base, "train_net")
            train, self.net_source = cio.read_net(path), str(path)
        elif p.HasField("net_param"):
            train, self.net_source = p.net_param, "net_param"
        elif p.net:
            path = _resolve(p.net, self.base, "solver net")
            train, self.net_source = cio.read_net(path), str(path)
        else:
            raise ConfigError("the solver names no net (net, net_param, train_net or train_net_param)")
        self.net_base = Path(self.net_source).resolve().parent if Path(self.net_source).exists() else self.base
        tests: list[pb.NetParameter] = list(p.test_net_param)
        tests += [cio.read_net(_resolve(t, self.base, "test_net")) for t in p.test_net]
        if not tests and len(p.test_iter):
            tests = [train] * len(p.test_iter)
        if len(tests) != len(p.test_iter):
            raise ConfigError(f"the solver has {len(tests)} test nets and {len(p.test_iter)} test_iter values; "
                              "give one test_iter per test net")
        if tests and p.test_interval <= 0:
            raise ConfigError("test_interval must be positive when test_iter is given")
        return train, tests

    def _feeds(self, net: pb.NetParameter, phase: int) -> list[DataFeed]:
        from mcnn.caffe.netstate import filter_net

        feeds = []
        for layer in filter_net(net, phase).layer:
            if layer.type == "Data":
                world = self.options.world if phase == pb.TRAIN else 1
                rank = self.options.rank if phase == pb.TRAIN else 0
                feeds.append(DataFeed(layer, phase, self.seed, rank=rank, world=world, base_dir=self.net_base))
            elif layer.type == "Input":
                raise ConfigError(f"layer {layer.name!r}: an Input layer has no data to train on; "
                                  "train the train_val net (with Data layers), not the deploy net")
        if not feeds:
            phase_name = "TRAIN" if phase == pb.TRAIN else "TEST"
            raise ConfigError(f"{self.net_source}: the {phase_name} net has no Data layer")
        return feeds

    @staticmethod
    def _shapes(feeds: list[DataFeed]) -> dict[str, tuple[int, ...]]:
        return {feed.tops[0]: feed.image_shape for feed in feeds}

    def _make_forward(self) -> Callable[[Net, dict[str, torch.Tensor], bool], dict[str, torch.Tensor]]:
        def forward(net: Net, feeds: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
            if self.options.channels_last:
                feeds = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                         for k, v in feeds.items()}
            if self.options.bf16 and self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    blobs = net.forward(feeds, train)
                return {k: v.float() if v.is_floating_point() else v for k, v in blobs.items()}
            return net.forward(feeds, train)

        if self.options.compile:
            return torch.compile(forward, dynamic=False)
        return forward

    def _setup_ddp(self) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise ConfigError("a data-parallel run needs torch.distributed to be initialised (use tools/train.py)")
        # Every process starts from the root's weights, as Caffe broadcasts the root solver's net.
        for blob in self.net.learnable():
            dist.broadcast(blob.tensor.data, src=0)

    # -- the loop ------------------------------------------------------------------------

    def _seed_iteration(self, iteration: int, sub: int) -> None:
        torch.manual_seed((self.seed * 1_000_003 + iteration * 101 + sub) % (2**63))

    def solve(self) -> TrainResult:
        """Run from the current iteration (or the resume snapshot) to ``max_iter``."""
        p = self.param
        self.log(f"Solving {self.net.name}", "solver.cpp:289")
        self.log(f"Learning Rate Policy: {p.lr_policy}", "solver.cpp:290")
        if self.options.snapshot:
            self.restore(self.options.snapshot)
        stop_iter = self.options.iterations if self.options.iterations is not None else p.max_iter
        previous = self._install_signals()
        try:
            self.step(stop_iter - self.iter)
        finally:
            self._restore_signals(previous)
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        stopped = self._requested == "stop"
        if stopped:
            self.log("Optimization stopped early.", "solver.cpp:306")
        else:
            if p.display and self.iter % p.display == 0:
                with torch.no_grad():
                    loss = self._forward_train_batch(self.iter * max(1, p.iter_size), self.iter, 0)[0]
                self._smooth(float(loss))
                self.log(f"Iteration {self.iter}, loss = {self._smoothed():.6g}", "solver.cpp:310")
            if p.test_interval and self.iter % p.test_interval == 0 and self.root:
                self.test_all()
            self.log("Optimization Done.", "solver.cpp:316")
        return TrainResult(self.iter, list(self.snapshots), stopped, dict(self.last_test))

    def _forward_train_batch(self, batch: int, iteration: int, sub: int,
                             feeds: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict]:
        if feeds is None:
            feeds = {}
            for feed in self.train_feeds:
                feeds.update(feed.batch(batch))
        self._seed_iteration(iteration, sub)
        blobs = self._forward(self.net, feeds, True)
        return self.net.loss(blobs), blobs

    def step(self, iters: int) -> None:
        """Caffe's Solver::Step: ``iters`` iterations of test / forward-backward / update / snapshot."""
        p = self.param
        iter_size = max(1, p.iter_size)
        start_iter, stop_iter = self.iter, self.iter + iters
        if iters <= 0:
            return
        loader = iter(batches(self.train_feeds, self.iter * iter_size, iters * iter_size, self.options.workers,
                              pin_memory=self.device.type == "cuda"))
        bar = self._progress(start_iter, stop_iter)
        tick, tick_iter = time.time(), self.iter
        while self.iter < stop_iter:
            for blob in self.net.learnable():
                blob.tensor.grad = None
            if (p.test_interval and self.iter % p.test_interval == 0
                    and (self.iter > 0 or p.test_initialization) and self.root):
                self.test_all()
            if self._poll_action() == "stop":
                break
            loss_sum = 0.0
            blobs: dict[str, torch.Tensor] = {}
            for sub in range(iter_size):
                feeds = next(loader)
                loss, blobs = self._forward_train_batch(0, self.iter, sub, feeds)
                loss.backward()
                self._allreduce_grads(sub == iter_size - 1)
                loss_sum += float(loss.detach())
            loss_value = loss_sum / iter_size
            if not self._all_finite(loss_value):
                last = str(self.snapshots[-1]) if self.snapshots else "none written in this run"
                raise TrainingError(f"iteration {self.iter}: loss is {loss_value} (training diverged); stopped "
                                    f"without a snapshot; last good snapshot: {last}. Lower base_lr or check the data")
            self._smooth(loss_value)
            if p.display and self.iter % p.display == 0:
                now = time.time()
                lapse = now - tick
                per_s = (self.iter - tick_iter) / lapse if lapse > 0 and self.iter > tick_iter else 0.0
                self.log(f"Iteration {self.iter} ({per_s:.6g} iter/s, {lapse:.4g}s/{p.display} iters), "
                         f"loss = {self._smoothed():.6g}", "solver.cpp:243")
                self._log_outputs("Train", self.net, {k: blobs[k].detach() for k in self.net.outputs})
                tick, tick_iter = now, self.iter
            rate, self.current_step = learning_rate(p, self.iter, self.current_step)
            if p.display and self.iter % p.display == 0:
                self.log(f"Iteration {self.iter}, lr = {rate:.6g}", "sgd_solver.cpp:138")
            self.updater.apply(rate, self.iter)
            self.iter += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{self._smoothed():.4g}", lr=f"{rate:.3g}")
            action = self._poll_action()
            if (p.snapshot and self.iter % p.snapshot == 0) or action == "snapshot":
                self.snapshot()
                self._requested = None if action == "snapshot" else self._requested
            if action == "stop":
                break
        if bar is not None:
            bar.close()

    # -- pieces of the loop --------------------------------------------------------------

    def _smooth(self, loss: float) -> None:
        self.losses.append(loss)

    def _smoothed(self) -> float:
        return sum(self.losses) / len(self.losses) if self.losses else float("nan")

    def _log_outputs(self, kind: str, net: Net, values: dict[str, torch.Tensor]) -> None:
        weights = net.output_weights()
        index = 0
        for name in net.outputs:
            for v in values[name].float().reshape(-1).tolist():
                weight = weights.get(name, 0.0)
                extra = f" (* {weight:.6g} = {weight * v:.6g} loss)" if weight else ""
                self.log(f"    {kind} net output #{index}: {name} = {v:.6g}{extra}", "solver.cpp:259")
                index += 1

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
        """Caffe's names: ``<prefix>_iter_<N>.caffemodel`` and ``.solverstate``."""
        n = self.iter if iteration is None else iteration
        prefix = self.param.snapshot_prefix or (Path(self.solver_file).with_suffix("").as_posix()
                                                 if hasattr(self, "solver_file") else "snapshot")
        return Path(f"{prefix}_iter_{n}.caffemodel"), Path(f"{prefix}_iter_{n}.solverstate")

    def snapshot(self) -> tuple[Path, Path] | None:
        """Write the weights and the solver state (root process only)."""
        if not self.root:
            return None
        model_path, state_path = self.snapshot_paths()
        model_path.parent.mkdir(parents=True, exist_ok=True)
        self.log(f"Snapshotting to binary proto file {model_path}", "solver.cpp:464")
        cio.write_caffemodel(model_path, self.net.to_caffemodel())
        state = pb.SolverState(iter=self.iter, learned_net=str(model_path), current_step=self.current_step)
        for h in self.updater.history:
            state.history.append(cio.array_to_blob(h.detach().cpu().numpy()))
        self.log(f"Snapshotting solver state to binary proto file {state_path}", "sgd_solver.cpp:284")
        cio.write_solverstate(state_path, state)
        self.snapshots.append(model_path)
        return model_path, state_path

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Resume from a ``.solverstate`` (and the caffemodel it names)."""
        state_path = Path(path)
        self.log(f"Restoring previous solver status from {state_path}", "sgd_solver.cpp:303")
        state = cio.read_solverstate(state_path)
        if state.learned_net:
            model = Path(state.learned_net)
            if not model.exists() and (state_path.parent / model.name).exists():
                model = state_path.parent / model.name
            if not model.exists():
                raise TrainingError(f"{state_path}: the weights it names, {state.learned_net}, do not exist")
            self.net.load_weights(model)
        try:
            self.updater.load_history([torch.from_numpy(cio.blob_to_array(b)) for b in state.history])
        except ConfigError as exc:
            raise TrainingError(f"{state_path}: {exc}") from None
        self.iter = state.iter
        self.current_step = state.current_step

    # -- signals and processes -----------------------------------------------------------

    def _install_signals(self) -> dict[int, object]:
        previous: dict[int, object] = {}
        if self.options.rank != 0 and self.options.world > 1:
            return previous

        def handler(effect: str) -> Callable[[int, FrameType | None], None]:
            def on_signal(signum: int, frame: FrameType | None) -> None:
                if effect != "none":
                    self._requested = effect
            return on_signal

        try:
            for sig, effect in ((signal.SIGINT, self.options.sigint_effect),
                                (signal.SIGTERM, self.options.sigint_effect),
                                (signal.SIGHUP, self.options.sighup_effect)):
                previous[sig] = signal.signal(sig, handler(effect))
        except ValueError:  # not the main thread
            pass
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, object]) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)  # type: ignore[arg-type]

    def _poll_action(self) -> str | None:
        action = self._requested
        if self.options.world > 1:
            import torch.distributed as dist

            code = torch.tensor([ACTIONS.index(action) + 1 if action else 0], dtype=torch.int64)
            dist.broadcast(code, src=0)
            action = ACTIONS[int(code) - 1] if int(code) else None
            self._requested = action
        if action == "snapshot":
            self._requested = None
            return "snapshot"
        return action

    def _all_finite(self, loss: float) -> bool:
        finite = math.isfinite(loss)
        if self.options.world > 1:
            import torch.distributed as dist

            flag = torch.tensor([0 if finite else 1], dtype=torch.int64)
            dist.all_reduce(flag)
            finite = int(flag) == 0
        return finite

    def _allreduce_grads(self, last: bool) -> None:
        """Average gradients over processes once per iteration (Caffe divides by the solver count)."""
        if self.options.world <= 1 or not last:
            return
        import torch.distributed as dist

        grads = [b.tensor.grad if b.tensor.grad is not None else torch.zeros_like(b.tensor)
                 for b in self.net.learnable()]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.options.world
        offset = 0
        for blob, g in zip(self.net.learnable(), grads, strict=True):
            n = g.numel()
            blob.tensor.grad = flat[offset:offset + n].view_as(blob.tensor).clone()
            offset += n

