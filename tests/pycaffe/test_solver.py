"""pycaffe's solvers on the engine's Trainer: bit-identical to tools/train.py, updates by hand, callbacks, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mcnn.pycaffe as caffe
from mcnn.caffe import io as cio
from tests.support import run_script
from tests.support.tiny import TinySetup

TOY_NET = """name: "toy"
layer { name: "in" type: "Input" top: "data" top: "label" input_param { shape { dim: 8 dim: 4 } shape { dim: 8 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.3 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def toy_solver(tmp_path: Path, solver_type: str = "SGD", weight_decay: float = 0.01) -> Path:
    """A solver over :data:`TOY_NET` (Input layers: the data comes from the blobs)."""
    (tmp_path / "toy.prototxt").write_text(TOY_NET)
    solver = tmp_path / "toy_solver.prototxt"
    solver.write_text(f'net: "{tmp_path / "toy.prototxt"}"\ntype: "{solver_type}"\nbase_lr: 0.5\nlr_policy: "fixed"\n'
                      f"momentum: 0.9\nweight_decay: {weight_decay}\nmax_iter: 100\ndisplay: 0\nrandom_seed: 1\n"
                      f'snapshot_prefix: "{tmp_path / "snaps" / "toy"}"\n')
    return solver


def toy_batch() -> tuple[np.ndarray, np.ndarray]:
    """Eight 4-vectors whose class is the index of their largest of the first three values."""
    x = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    return x, x[:, :3].argmax(axis=1).astype(np.float32)


def feed(solver: caffe.Solver) -> tuple[np.ndarray, np.ndarray]:
    """Write the toy batch into the train net's input blobs."""
    x, y = toy_batch()
    solver.net.blobs["data"].data[...] = x
    solver.net.blobs["label"].data[...] = y
    return x, y


def test_sgd_step_equals_tools_train_to_the_bit(tiny: TinySetup) -> None:
    out = run_script("tools/train.py", "-solver", tiny.solver, "-iterations", "10", "--workers", "0")
    assert out.returncode == 0, out.stderr
    model = Path(f"{tiny.snapshot_prefix}_iter_10.caffemodel")
    state = model.with_suffix(".solverstate")
    expected_model, expected_state = model.read_bytes(), state.read_bytes()
    model.unlink()
    solver = caffe.SGDSolver(str(tiny.solver))
    solver.step(10)
    assert solver.iter == 10
    solver.snapshot()
    assert model.read_bytes() == expected_model and state.read_bytes() == expected_state
    weights = cio.net_weights(cio.read_caffemodel(model))
    np.testing.assert_array_equal(solver.net.params["fc2"][0].data, weights["fc2"][0])


def test_train_net_shows_the_last_pass_and_data_follows_the_iteration(tiny: TinySetup) -> None:
    solver = caffe.SGDSolver(str(tiny.solver))
    solver.step(1)
    assert solver.net.blobs["label"].data.tolist() == [0, 1, 2, 0, 1, 2, 0, 1]  # batch 0 of the LMDB
    loss = float(solver.net.blobs["loss"].data)
    assert np.log(3) * 0.5 < loss < np.log(3) * 2
    solver.net.forward()  # the batch iteration 1 will read
    assert solver.net.blobs["label"].data.tolist() == [2, 0, 1, 2, 0, 1, 2, 0]
    test = solver.test_nets[0]
    assert np.shares_memory(test.params["conv1_s1"][0].data, solver.net.params["conv1_s1"][0].data)
    test.forward()
    scores, labels = test.blobs["fc2"].data, test.blobs["label"].data
    assert float(test.blobs["accuracy"].data) == pytest.approx(float((scores.argmax(axis=1) == labels).mean()))


def test_update_by_hand_and_callbacks(tmp_path: Path) -> None:
    solver = caffe.SGDSolver(str(toy_solver(tmp_path)))
    x, y = feed(solver)
    events: list[str] = []
    grads: list[np.ndarray] = []
    solver.add_callback(lambda: events.append("start"),
                        lambda: (events.append("ready"), grads.append(solver.net.params["ip"][0].diff.copy())))
    w0 = solver.net.params["ip"][0].data.copy()
    b0 = solver.net.params["ip"][1].data.copy()
    solver.step(1)
    assert events == ["start", "ready"]
    # The gradient of the mean softmax cross-entropy, by hand.
    scores = x @ w0.T + b0
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(8), y.astype(int)] -= 1
    np.testing.assert_allclose(grads[0], p.T @ x / 8, rtol=1e-5, atol=1e-7)
    # SGD from a zero history: w -= lr * (g + weight_decay * w).
    np.testing.assert_allclose(solver.net.params["ip"][0].data, w0 - 0.5 * (grads[0] + 0.01 * w0), rtol=1e-6)
    losses = []
    for _ in range(30):
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert events == ["start", "ready"] * 31 and losses[-1] < 0.3 * losses[0]


def test_apply_update_uses_the_diffs(tmp_path: Path) -> None:
    solver = caffe.SGDSolver(str(toy_solver(tmp_path, weight_decay=0.0)))
    feed(solver)
    net = solver.net
    net.forward()
    net.backward()
    g = net.params["ip"][0].diff.copy()
    w0 = net.params["ip"][0].data.copy()
    solver.apply_update()
    np.testing.assert_allclose(net.params["ip"][0].data, w0 - 0.5 * g, rtol=1e-6)
    assert solver.iter == 0  # apply_update does not advance the iteration (Caffe's ApplyUpdate)


def test_snapshot_restore_resumes_exactly(tmp_path: Path) -> None:
    path = toy_solver(tmp_path)
    first = caffe.SGDSolver(str(path))
    feed(first)
    first.step(3)
    first.snapshot()
    first.step(3)
    second = caffe.SGDSolver(str(path))
    feed(second)
    second.restore(str(tmp_path / "snaps" / "toy_iter_3.solverstate"))
    assert second.iter == 3
    second.step(3)
    np.testing.assert_array_equal(second.net.params["ip"][0].data, first.net.params["ip"][0].data)


def test_solver_classes_choose_the_update_rule(tmp_path: Path) -> None:
    path = toy_solver(tmp_path, solver_type="Adam")
    adam = caffe.get_solver(str(path))
    assert isinstance(adam, caffe.AdamSolver) and adam.param.type == "Adam"
    sgd = caffe.SGDSolver(str(path))  # pycaffe: the class decides, whatever the file says
    assert sgd.param.type == "SGD"
    for solver, sets in ((adam, 2), (sgd, 1)):
        feed(solver)
        solver.step(1)
        solver.snapshot()
        state = cio.read_solverstate(tmp_path / "snaps" / "toy_iter_1.solverstate")
        assert len(state.history) == 2 * sets  # weights and bias, once per history set
    assert not np.array_equal(adam.net.params["ip"][0].data, sgd.net.params["ip"][0].data)
    default = tmp_path / "plain.prototxt"
    default.write_text(path.read_text().replace(f'snapshot_prefix: "{tmp_path / "snaps" / "toy"}"\n', ""))
    assert caffe.NesterovSolver(str(default)).param.snapshot_prefix == str(tmp_path / "plain")


def test_solve_runs_to_max_iter_and_snapshots(tmp_path: Path) -> None:
    path = toy_solver(tmp_path)
    path.write_text(path.read_text().replace("max_iter: 100", "max_iter: 7"))
    solver = caffe.SGDSolver(str(path))
    feed(solver)
    solver.solve()
    assert solver.iter == 7
    weights = cio.net_weights(cio.read_caffemodel(tmp_path / "snaps" / "toy_iter_7.caffemodel"))
    np.testing.assert_array_equal(weights["ip"][0], solver.net.params["ip"][0].data)
    again = caffe.SGDSolver(str(path))
    feed(again)
    again.step(4)
    again.snapshot()
    again.solve(str(tmp_path / "snaps" / "toy_iter_4.solverstate"))  # resumes, then runs to max_iter
    np.testing.assert_array_equal(again.net.params["ip"][0].data, solver.net.params["ip"][0].data)


@pytest.mark.parametrize(("cls", "kind", "sets"), [
    ("SGDSolver", "SGD", 1), ("NesterovSolver", "Nesterov", 1), ("AdaGradSolver", "AdaGrad", 1),
    ("RMSPropSolver", "RMSProp", 1), ("AdaDeltaSolver", "AdaDelta", 2), ("AdamSolver", "Adam", 2)])
def test_every_solver_class_trains_with_its_rule(tmp_path: Path, cls: str, kind: str, sets: int) -> None:
    path = toy_solver(tmp_path, solver_type="SGD")
    text = path.read_text()
    if kind == "RMSProp":  # Caffe's RMSProp takes rms_decay and no momentum
        text = text.replace("momentum: 0.9\n", "rms_decay: 0.98\n")
    if kind in ("AdaGrad", "AdaDelta"):
        text = text.replace("momentum: 0.9\n", "momentum: 0.9\ndelta: 1e-6\n" if kind == "AdaDelta" else "")
    path.write_text(text)
    solver = getattr(caffe, cls)(str(path))
    assert solver.param.type == kind and isinstance(solver, caffe.Solver)
    losses = []
    for _ in range(15):
        feed(solver)
        solver.step(1)
        losses.append(float(solver.net.blobs["loss"].data))
    assert solver.iter == 15 and losses[-1] < losses[0]  # each rule lowers the loss on the toy batch
    solver.snapshot()
    state = cio.read_solverstate(tmp_path / "snaps" / "toy_iter_15.solverstate")
    assert len(state.history) == 2 * sets
