"""The solver value rules: every committed solver passes; each rule refuses its bad value in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.caffe.solver_rules import check_solver
from mcnn.errors import ConfigError
from tests.support import ROOT


@pytest.mark.parametrize("path", sorted((ROOT / "solvers").rglob("*.prototxt")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_solvers_pass(path: Path) -> None:
    check_solver(cio.read_solver(path), str(path))


def _solver(**fields: object) -> pb.SolverParameter:
    s = pb.SolverParameter(base_lr=0.01, max_iter=10, lr_policy="fixed", momentum=0.9)
    for name, value in fields.items():
        if isinstance(value, list):
            getattr(s, name).extend(value)
        else:
            setattr(s, name, value)
    return s


@pytest.mark.parametrize(("fields", "message"), [
    ({"type": "Adam", "delta": 0.0}, "field delta: 0, expected > 0 with type Adam"),
    ({"type": "Adam", "momentum2": 1.0}, "field momentum2: 1, expected 0 <= momentum2 < 1"),
    ({"type": "RMSProp", "momentum": 0.0, "rms_decay": 1.5}, "field rms_decay: 1.5"),
    ({"type": "Momentum"}, "field type: 'Momentum', expected one of SGD"),
    ({"lr_policy": "multistep", "gamma": 0.1, "stepvalue": [100, 50]}, "field stepvalue: [100, 50]"),
    ({"lr_policy": "exp", "gamma": 0.0}, "field gamma: 0, expected > 0 with lr_policy exp"),
    ({"lr_policy": "sigmoid", "gamma": -0.1, "stepsize": 10}, "field gamma: -0.1, expected >= 0 with lr_policy "
     "sigmoid (Caffe's CHECK)"),
    ({"lr_policy": "sigmoid", "gamma": 0.1, "stepsize": 0}, "field stepsize: 0, expected > 0 with lr_policy sigmoid"),
    ({"lr_policy": "poly", "power": -1.0}, "field power: -1"),
    ({"max_iter": 0}, "field max_iter: 0, expected >= 1"),
    ({"iter_size": 0}, "field iter_size: 0"),
    ({"test_iter": [5], "test_interval": 0}, "field test_interval: 0, expected > 0 when test_iter is given"),
    ({"base_lr": float("nan")}, "field base_lr: nan, expected a finite number"),
])
def test_each_rule_names_its_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_solver(_solver(**fields), "s.prototxt")
    assert str(info.value).startswith("s.prototxt: ") and message in str(info.value)
    assert "\n" not in str(info.value)
