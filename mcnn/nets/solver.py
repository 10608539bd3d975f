"""The solver builder: one SGD recipe for every architecture, as in the paper.

The paper fixes SGD with L2 weight decay, a softmax cross-entropy loss and 18 epochs, the
same for the M-CNN and both baselines; every number below that is ours says so in the
header of the emitted file. Iterations come from set sizes and batch sizes with Caffe's
bookkeeping: one iteration = one batch, ``max_iter = ceil(epochs * train_size / batch)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import ConfigError
from mcnn.setsizes import iterations

LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")
PAPER_EPOCHS = 18.0


@dataclass(frozen=True)
class SolverOptions:
    """Training parameters; epochs-based values are converted to iterations.

    ``step_epochs`` sets ``stepsize`` for the step/sigmoid policies unless ``stepsize``
    (iterations) is given; ``snapshot_epochs`` sets the snapshot interval (0 = only the
    final snapshot); ``seed`` None leaves Caffe's time-based seed.
    """

    epochs: float = PAPER_EPOCHS
    type: str = "SGD"
    base_lr: float = 0.01
    lr_policy: str = "step"
    gamma: float = 0.1
    step_epochs: float = 6.0
    stepsize: int | None = None
    stepvalue: tuple[int, ...] = ()
    power: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 0.0005
    regularization: str = "L2"
    display: int = 20
    test_epochs: float = 1.0
    snapshot_epochs: float = 6.0
    snapshot_prefix: str = "snapshot"
    seed: int | None = 0
    mode: str = "GPU"
    iter_size: int = 1

    def validate(self) -> None:
        """Raise :class:`ConfigError` for an option out of range (one line naming the flag)."""
        if self.epochs <= 0:
            raise ConfigError(f"--epochs must be positive, got {self.epochs}")
        if self.type not in SOLVER_TYPES:
            raise ConfigError(f"--type {self.type!r}: choose from {', '.join(SOLVER_TYPES)}")
        if self.lr_policy not in LR_POLICIES:
            raise ConfigError(f"--lr-policy {self.lr_policy!r}: choose from {', '.join(LR_POLICIES)}")
        if self.base_lr <= 0:
            raise ConfigError(f"--base-lr must be positive, got {self.base_lr}")
        if self.lr_policy == "multistep" and not self.stepvalue:
            raise ConfigError("--lr-policy multistep needs --stepvalue")
        if self.regularization not in ("L1", "L2"):
            raise ConfigError(f"--regularization must be L1 or L2, got {self.regularization!r}")
        if self.mode not in ("CPU", "GPU"):
            raise ConfigError(f"--mode must be CPU or GPU, got {self.mode!r}")
        if self.iter_size < 1:
            raise ConfigError(f"--iter-size must be at least 1, got {self.iter_size}")
        if self.momentum < 0 or self.weight_decay < 0:
            raise ConfigError("--momentum and --weight-decay must not be negative")


@dataclass
class BuiltSolver:
    """A generated solver and the lines for its file header."""

    solver: pb.SolverParameter
    header: list[str]


def build_solver(net: str, train_size: int, test_size: int, train_batch: int, test_batch: int,
                 options: SolverOptions | None = None) -> BuiltSolver:
    """A SolverParameter for training ``net`` (a train_val prototxt path, as written in the file).

    ``train_size``/``test_size`` are images; ``train_batch``/``test_batch`` the Data layers'
    batch sizes. The test phase covers the whole test set once per ``test_epochs``.
    """
    opts = options or SolverOptions()
    opts.validate()
    if train_size < 1:
        raise ConfigError(f"--train-size must be at least 1, got {train_size}")
    if test_size < 0:
        raise ConfigError(f"--test-size must not be negative, got {test_size}")
    if train_batch < 1 or test_batch < 1:
        raise ConfigError("batch sizes must be at least 1")
    per_epoch = iterations(train_size, train_batch * opts.iter_size)
    max_iter = iterations(train_size, train_batch * opts.iter_size, opts.epochs)
    s = pb.SolverParameter(net=net)
    if test_size:
        s.test_iter.append(math.ceil(test_size / test_batch))
        s.test_interval = max(1, round(opts.test_epochs * per_epoch))
    else:
        s.test_interval = max_iter + 1  # no test set: never test
    if opts.type != "SGD":
        s.type = opts.type
    s.base_lr = opts.base_lr
    s.lr_policy = opts.lr_policy
    if opts.lr_policy in ("step", "exp", "inv", "multistep", "sigmoid"):
        s.gamma = opts.gamma
    if opts.lr_policy in ("inv", "poly"):
        s.power = opts.power
    if opts.lr_policy in ("step", "sigmoid"):
        s.stepsize = opts.stepsize or max(1, round(opts.step_epochs * per_epoch))
    if opts.lr_policy == "multistep":
        s.stepvalue.extend(opts.stepvalue)
    s.display = max(1, min(opts.display, per_epoch))
    s.average_loss = s.display
    s.max_iter = max_iter
    if opts.iter_size != 1:
        s.iter_size = opts.iter_size
    if opts.type not in ("AdaGrad", "RMSProp"):  # Caffe CHECKs momentum == 0 for these (sgd_solvers.hpp)
        s.momentum = opts.momentum
    s.weight_decay = opts.weight_decay
    if opts.regularization != "L2":
        s.regularization_type = opts.regularization
    if opts.snapshot_epochs:
        s.snapshot = max(1, round(opts.snapshot_epochs * per_epoch))
    s.snapshot_prefix = opts.snapshot_prefix
    s.solver_mode = pb.SolverParameter.SolverMode.Value(opts.mode)
    if opts.seed is not None:
        s.random_seed = opts.seed
    step_note = f" (gamma {opts.gamma:g} every {opts.step_epochs:g} epochs)"
    header = [
        f"Solver for {net}: {opts.epochs:g} epochs of {train_size} training images at batch "
        f"{train_batch * opts.iter_size} = {max_iter} iterations ({per_epoch} per epoch); "
        f"test set {test_size} images at batch {test_batch}.",
        "From the paper: SGD with L2 weight decay, softmax cross-entropy, 18 epochs, the same "
        "parameters for M-CNN, AlexNet and GoogLeNet.",
        f"Ours (the paper's values are lost): base_lr {opts.base_lr:g}, lr_policy {opts.lr_policy}"
        + (step_note if opts.lr_policy == "step" and not opts.stepsize else "")
        + f", momentum {opts.momentum:g}, weight_decay {opts.weight_decay:g}, seed {opts.seed}.",
    ]
    return BuiltSolver(solver=s, header=header)
