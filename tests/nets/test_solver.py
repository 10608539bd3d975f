"""The solver builder: iterations from set sizes, lr policies, validation."""

from __future__ import annotations

import pytest

from mcnn.caffe import pb
from mcnn.errors import ConfigError
from mcnn.nets.solver import SolverOptions, build_solver
from mcnn.setsizes import cv_sizes, holdout_count


def test_iterations_from_epochs_and_sets() -> None:
    s = build_solver("net.prototxt", train_size=775, test_size=87, train_batch=32, test_batch=16).solver
    assert s.net == "net.prototxt"
    assert s.max_iter == 436          # ceil(18 * 775 / 32)
    assert list(s.test_iter) == [6]   # ceil(87 / 16)
    assert s.test_interval == 25      # one epoch = ceil(775 / 32)
    assert s.stepsize == 150          # 6 epochs
    assert s.snapshot == 150
    assert (s.base_lr, s.lr_policy, s.momentum) == (pytest.approx(0.01), "step", pytest.approx(0.9))
    assert s.weight_decay == pytest.approx(0.0005)
    assert s.solver_mode == pb.SolverParameter.GPU and s.random_seed == 0
    assert s.display == 20 and s.average_loss == 20
    assert not s.HasField("type")     # Caffe's default SGD is left implicit


def test_policies_and_options() -> None:
    opts = SolverOptions(type="Adam", lr_policy="multistep", stepvalue=(10, 20), mode="CPU", seed=None,
                         iter_size=2, snapshot_epochs=0, epochs=3, regularization="L1")
    s = build_solver("n", 100, 0, 10, 10, opts).solver
    assert s.type == "Adam" and list(s.stepvalue) == [10, 20] and s.gamma == pytest.approx(0.1)
    assert s.max_iter == 15 and s.iter_size == 2      # 3 epochs x ceil(100 / 20)
    assert not s.HasField("snapshot") and not s.HasField("random_seed")
    assert not s.test_iter and s.test_interval > s.max_iter
    assert s.regularization_type == "L1" and s.solver_mode == pb.SolverParameter.CPU
    poly = build_solver("n", 100, 10, 10, 10, SolverOptions(lr_policy="poly", power=0.5)).solver
    assert poly.power == 0.5 and not poly.HasField("stepsize")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SolverOptions(lr_policy="cosine"), "--lr-policy"),
        (SolverOptions(lr_policy="multistep"), "--stepvalue"),
        (SolverOptions(base_lr=0), "--base-lr"),
        (SolverOptions(epochs=0), "--epochs"),
        (SolverOptions(type="LBFGS"), "--type"),
    ],
)
def test_bad_solver_options(options: SolverOptions, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_solver("n", 10, 2, 2, 2, options)


def test_holdout_counts() -> None:
    assert [holdout_count(n) for n in (1, 2, 4, 6, 15, 16, 85, 98)] == [0, 1, 1, 1, 2, 2, 9, 10]
    assert cv_sizes([16, 16]) == (28, 4)
