"""Learning-rate policies and solver update rules against Caffe's definitions (src/caffe/solvers/*.cpp).

Caffe facts used (sgd_solver.cpp and the solvers/ directory):
- rate: fixed base_lr; step base_lr*gamma^floor(iter/stepsize); exp base_lr*gamma^iter;
  inv base_lr*(1 + gamma*iter)^(-power); multistep base_lr*gamma^current_step, where current_step
  advances by one when iter >= stepvalue[current_step] (at most one step per call);
  poly base_lr*(1 - iter/max_iter)^power; sigmoid base_lr/(1 + exp(-gamma*(iter - stepsize))).
- ApplyUpdate: clip_gradients (if >= 0) scales all gradients so their global L2 norm is at most
  clip (on the SUM over iter_size passes); then each gradient is divided by iter_size; then
  g += local_decay*w (L2) or local_decay*sign(w) (L1), local_decay = weight_decay*decay_mult;
  then the per-blob rule with local_rate = rate*lr_mult; then w -= update.
- SGD: V = m*V + lr*g, update V. Nesterov: h_old = h; h = m*h + lr*g; update (1+m)*h - m*h_old.
  AdaGrad: h += g^2; update lr*g/(sqrt(h)+delta). RMSProp: h = d*h + (1-d)*g^2; update
  lr*g/(sqrt(h)+delta). AdaDelta: h = m*h + (1-m)*g^2; s = g*sqrt((h2+delta)/(h+delta));
  h2 = m*h2 + (1-m)*s^2; update lr*s. Adam (t = iter+1): m1 = b1*m1 + (1-b1)*g;
  v = b2*v + (1-b2)*g^2; update lr*sqrt(1-b2^t)/(1-b1^t)*m1/(sqrt(v)+eps).
- History blobs (solverstate order): one per learnable blob; AdaDelta and Adam append a second
  set (squared-update history, resp. second moment) after the first.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.engine.glog import GlogWriter
from mcnn.engine.net import LearnableBlob
from mcnn.engine.solver import Updater, learning_rate
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.errors import McnnError
from tests.support.tiny import make_setup

# ---------------------------------------------------------------------------
# learning-rate policies
# ---------------------------------------------------------------------------


def rate_at(param: pb.SolverParameter, iteration: int, step: int = 0) -> float:
    rate, _ = learning_rate(param, iteration, step)
    return rate


def test_fixed() -> None:
    p = pb.SolverParameter(base_lr=0.01, lr_policy="fixed")
    for it in (0, 1, 7, 1000, 10**6):
        assert rate_at(p, it) == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize(("it", "want"), [(0, 0.01), (9, 0.01), (10, 0.001), (19, 0.001), (20, 1e-4), (35, 1e-5)])
def test_step(it: int, want: float) -> None:
    """step: base_lr * gamma^floor(iter / stepsize) with stepsize 10, gamma 0.1."""
    p = pb.SolverParameter(base_lr=0.01, lr_policy="step", gamma=0.1, stepsize=10)
    assert rate_at(p, it) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("it", [0, 1, 10, 100, 1234])
def test_exp(it: int) -> None:
    p = pb.SolverParameter(base_lr=0.1, lr_policy="exp", gamma=0.99)
    gamma = float(np.float32(0.99))   # SolverParameter.gamma is a float field: 0.99 is stored as float32
    assert rate_at(p, it) == pytest.approx(0.1 * gamma ** it, rel=1e-6)


@pytest.mark.parametrize(("it", "want"), [
    (0, 0.01),
    (1000, 0.01 * 2 ** -0.75),           # 1 + 1e-3*1000 = 2
    (3000, 0.01 * 4 ** -0.75),           # = 0.01 / 2^1.5
    (10000, 0.01 * 11 ** -0.75),
])
def test_inv(it: int, want: float) -> None:
    """inv: base_lr * (1 + gamma*iter)^(-power), gamma 1e-3, power 0.75."""
    p = pb.SolverParameter(base_lr=0.01, lr_policy="inv", gamma=1e-3, power=0.75)
    assert rate_at(p, it) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize(("power", "it", "want"), [
    (0.5, 0, 0.1), (0.5, 25, 0.1 * math.sqrt(0.75)), (0.5, 99, 0.1 * math.sqrt(0.01)), (0.5, 100, 0.0),
    (2.0, 50, 0.1 * 0.25), (1.0, 80, 0.1 * 0.2),
])
def test_poly(power: float, it: int, want: float) -> None:
    """poly: base_lr * (1 - iter/max_iter)^power, max_iter 100."""
    p = pb.SolverParameter(base_lr=0.1, lr_policy="poly", power=power, max_iter=100)
    assert rate_at(p, it) == pytest.approx(want, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize(("it", "want"), [
    (50, 0.05),                                 # 1/(1+e^0) = 1/2
    (0, 0.1 / (1 + math.exp(5.0))),             # -gamma*(0-50) = 5
    (60, 0.1 / (1 + math.exp(-1.0))),
    (200, 0.1 / (1 + math.exp(-15.0))),
])
def test_sigmoid(it: int, want: float) -> None:
    """sigmoid: base_lr / (1 + exp(-gamma*(iter - stepsize))), gamma 0.1, stepsize 50."""
    p = pb.SolverParameter(base_lr=0.1, lr_policy="sigmoid", gamma=0.1, stepsize=50)
    assert rate_at(p, it) == pytest.approx(want, rel=1e-6)


def multistep() -> pb.SolverParameter:
    return pb.SolverParameter(base_lr=0.1, lr_policy="multistep", gamma=0.5, stepvalue=[5, 8, 12])


def test_multistep_sequence() -> None:
    """Called once per iteration (carrying current_step), the rate at iter is base*gamma^#(stepvalue <= iter):
    it changes AT the stepvalue iteration (5, 8, 12) and stays changed right after it."""
    p = multistep()
    step = 0
    seen = []
    for it in range(16):
        rate, step = learning_rate(p, it, step)
        seen.append(rate)
        n = sum(v <= it for v in (5, 8, 12))
        assert step == n
        assert rate == pytest.approx(0.1 * 0.5 ** n, rel=1e-6), it
    assert seen[4] == pytest.approx(0.1) and seen[5] == pytest.approx(0.05) and seen[6] == pytest.approx(0.05)
    assert seen[7] == pytest.approx(0.05) and seen[8] == pytest.approx(0.025) and seen[12] == pytest.approx(0.0125)


def test_multistep_advances_at_most_one_step_per_call() -> None:
    """Caffe increments current_step once per GetLearningRate call, even if several stepvalues passed."""
    p = multistep()
    assert learning_rate(p, 20, 0) == (pytest.approx(0.05), 1)
    assert learning_rate(p, 20, 1) == (pytest.approx(0.025), 2)
    assert learning_rate(p, 20, 2) == (pytest.approx(0.0125), 3)
    assert learning_rate(p, 20, 3) == (pytest.approx(0.0125), 3)   # no stepvalues left
    assert learning_rate(p, 6, 1) == (pytest.approx(0.05), 1)      # 6 < 8: stays


@pytest.mark.parametrize(("policy", "params", "it", "caffe"), [
    ("exp", {"gamma": 0.98}, 11, "0.00800731"),
    ("inv", {"gamma": 0.01, "power": 0.75}, 6, "0.0095724"),
    ("inv", {"gamma": 0.01, "power": 0.75}, 49, "0.00741498"),
    ("poly", {"power": 1.5, "max_iter": 50}, 1, "0.00970151"),
    ("poly", {"power": 1.5, "max_iter": 50}, 37, "0.00132574"),
    ("poly", {"power": 1.5, "max_iter": 50}, 48, "8.00001e-05"),
    ("sigmoid", {"gamma": 0.2, "stepsize": 25}, 36, "0.0090025"),
])
def test_the_rate_is_caffes_float(policy: str, params: dict[str, float], it: int, caffe: str) -> None:
    """``lr = `` as real Caffe 1.0 (9b89154, CPU) logged it with base_lr 0.01 (tests/parity/test_solvers.py
    compares every line): the rate is a float, inv/poly/sigmoid computed in float. The same formulas in
    double print differently in the 6th digit (0.0095724 vs 0.00957239, 8.00001e-05 vs 8e-05)."""
    rate = rate_at(pb.SolverParameter(base_lr=0.01, lr_policy=policy, **params), it)
    assert rate == float(np.float32(rate))
    assert f"{rate:.6g}" == caffe


def test_rates_that_overflow_are_what_c_computes_not_an_error() -> None:
    """exp(2000 * 10) and 2 ** 2000 overflow: C's expf/pow give inf (a sigmoid rate of 0, an exp rate of inf),
    where Python's math.exp and ** raise OverflowError."""
    sigmoid = pb.SolverParameter(base_lr=0.01, lr_policy="sigmoid", gamma=10.0, stepsize=200)
    assert rate_at(sigmoid, 0) == 0.0 and rate_at(sigmoid, 400) == pytest.approx(0.01)
    assert rate_at(pb.SolverParameter(base_lr=0.01, lr_policy="exp", gamma=2.0), 2000) == math.inf


def test_training_logs_caffes_multistep_status_lines(tmp_path) -> None:
    """Caffe logs ``MultiStep Status: Iteration I, step = S`` (sgd_solver.cpp:50) where the step changes, with
    or without ``display``, before that iteration's ``lr = `` line."""
    setup = make_setup(tmp_path, max_epochs=0.5, train_count=16, test_count=4)
    solver = cio.read_solver(setup.solver)
    solver.lr_policy, solver.gamma, solver.max_iter, solver.display = "multistep", 0.5, 6, 4
    solver.ClearField("stepvalue")
    solver.stepvalue.extend([2, 4, 40])
    solver.ClearField("test_iter")
    solver.test_interval = 0
    stream = io.StringIO()
    Trainer(solver, TrainOptions(), log=GlogWriter(stream)).solve()
    lines = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()
             if "sgd_solver.cpp:50]" in line or "sgd_solver.cpp:112]" in line]
    rate = f"{float(np.float32(solver.base_lr)) * 0.25:.6g}"
    assert lines == ["Iteration 0, lr = " + f"{solver.base_lr:.6g}", "MultiStep Status: Iteration 2, step = 1",
                     "MultiStep Status: Iteration 4, step = 2", f"Iteration 4, lr = {rate}"]


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(McnnError, match="cosine"):
        learning_rate(pb.SolverParameter(base_lr=0.1, lr_policy="cosine"), 0, 0)


# ---------------------------------------------------------------------------
# update rules: numpy re-implementation of Caffe's ApplyUpdate
# ---------------------------------------------------------------------------

SHAPES = [(3, 4), (3,), (2, 2, 3, 3)]
LR_MULTS = [1.0, 2.0, 0.5]
DECAY_MULTS = [1.0, 0.0, 2.0]
RATES = [0.1, 0.1, 0.05, 0.05, 0.01]   # the rate changes twice in five updates
SETTINGS = {
    "SGD": dict(momentum=0.9),
    "Nesterov": dict(momentum=0.9),
    "AdaGrad": dict(delta=1e-8),
    "RMSProp": dict(rms_decay=0.9, delta=1e-8),
    "AdaDelta": dict(momentum=0.95, delta=1e-6),
    "Adam": dict(momentum=0.9, momentum2=0.999, delta=1e-8),
}


def reference(kind: str, opts: dict, w0: list[np.ndarray], grads: list[list[np.ndarray]], rates: list[float],
              lr_mults=LR_MULTS, decay_mults=DECAY_MULTS, start_iter: int = 0):
    """Weights after every update and the final history sets, in float64."""
    m = opts.get("momentum", 0.0)
    m2 = opts.get("momentum2", 0.999)
    delta = opts.get("delta", 1e-8)
    rms = opts.get("rms_decay", 0.99)
    wd = opts.get("weight_decay", 0.0)
    reg = opts.get("regularization_type", "L2")
    iter_size = opts.get("iter_size", 1)
    clip = opts.get("clip_gradients", -1.0)
    w = [a.astype(np.float64).copy() for a in w0]
    h = [np.zeros_like(a) for a in w]
    h2 = [np.zeros_like(a) for a in w]
    trace = []
    for step, (rate, gsum) in enumerate(zip(rates, grads, strict=True)):
        g = [a.astype(np.float64).copy() for a in gsum]
        if clip >= 0:
            norm = math.sqrt(sum(float((a ** 2).sum()) for a in g))
            if norm > clip:
                g = [a * (clip / norm) for a in g]
        g = [a / iter_size for a in g]
        t = start_iter + step + 1
        for i in range(len(w)):
            decay = wd * decay_mults[i]
            if decay:
                g[i] = g[i] + decay * (w[i] if reg == "L2" else np.sign(w[i]))
            lr = rate * lr_mults[i]
            gi = g[i]
            if kind == "SGD":
                h[i] = m * h[i] + lr * gi
                update = h[i]
            elif kind == "Nesterov":
                old = h[i]
                h[i] = m * h[i] + lr * gi
                update = (1 + m) * h[i] - m * old
            elif kind == "AdaGrad":
                h[i] = h[i] + gi ** 2
                update = lr * gi / (np.sqrt(h[i]) + delta)
            elif kind == "RMSProp":
                h[i] = rms * h[i] + (1 - rms) * gi ** 2
                update = lr * gi / (np.sqrt(h[i]) + delta)
            elif kind == "AdaDelta":
                h[i] = m * h[i] + (1 - m) * gi ** 2
                s = gi * np.sqrt((h2[i] + delta) / (h[i] + delta))
                h2[i] = m * h2[i] + (1 - m) * s ** 2
                update = lr * s
            elif kind == "Adam":
                h[i] = m * h[i] + (1 - m) * gi
                h2[i] = m2 * h2[i] + (1 - m2) * gi ** 2
                update = lr * math.sqrt(1 - m2 ** t) / (1 - m ** t) * h[i] / (np.sqrt(h2[i]) + delta)
            else:
                raise AssertionError(kind)
            w[i] = w[i] - update
        trace.append([a.copy() for a in w])
    history = h + (h2 if kind in ("AdaDelta", "Adam") else [])
    return trace, history


def problem(seed: int, steps: int = len(RATES), shapes=SHAPES):
    rng = np.random.default_rng(seed)
    w0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    # gradients of different scale per blob so per-blob and global quantities differ
    grads = [[(rng.standard_normal(s) * (i + 1)).astype(np.float32) for i, s in enumerate(shapes)]
             for _ in range(steps)]
    return w0, grads


def engine_run(kind: str, opts: dict, w0, grads, rates, lr_mults=LR_MULTS, decay_mults=DECAY_MULTS,
               start_iter: int = 0):
    blobs = [LearnableBlob("layer", i, torch.nn.Parameter(torch.from_numpy(a.copy())), lr, dm)
             for i, (a, lr, dm) in enumerate(zip(w0, lr_mults, decay_mults, strict=True))]
    updater = Updater(pb.SolverParameter(type=kind, base_lr=rates[0], lr_policy="fixed", **opts), blobs)
    trace = []
    for step, (rate, g) in enumerate(zip(rates, grads, strict=True)):
        for blob, gi in zip(blobs, g, strict=True):
            blob.tensor.grad = torch.from_numpy(gi.copy())
        updater.apply(rate, start_iter + step)
        trace.append([b.tensor.detach().numpy().astype(np.float64).copy() for b in blobs])
    return trace, [h.numpy().astype(np.float64) for h in updater.history]


def assert_traces_equal(got, want, rtol=2e-5, atol=2e-6) -> None:
    for step, (g_step, w_step) in enumerate(zip(got, want, strict=True)):
        for i, (g, w) in enumerate(zip(g_step, w_step, strict=True)):
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"update {step}, blob {i}")


@pytest.mark.parametrize("reg", ["L2", "L1"])
@pytest.mark.parametrize("kind", list(SETTINGS))
def test_update_rule_matches_reference(kind: str, reg: str) -> None:
    """Five updates with rate changes, lr_mult/decay_mult per blob and L2 or L1 weight decay."""
    opts = dict(SETTINGS[kind], weight_decay=0.05, regularization_type=reg)
    w0, grads = problem(seed=list(SETTINGS).index(kind) * 2 + (reg == "L1"))
    want, want_hist = reference(kind, opts, w0, grads, RATES)
    got, got_hist = engine_run(kind, opts, w0, grads, RATES)
    assert_traces_equal(got, want)
    assert len(got_hist) == len(want_hist) == (6 if kind in ("AdaDelta", "Adam") else 3)
    for i, (g, w) in enumerate(zip(got_hist, want_hist, strict=True)):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-7, err_msg=f"history {i}")


def test_sgd_hand_computed() -> None:
    """One scalar, momentum 0.9, weight_decay 0.1 (L2), lr_mult 2, rates 0.1 then 0.01, g = 1 each time, w0 = 1:
    step 1: g' = 1 + 0.1*1 = 1.1; V = 0.2*1.1 = 0.22; w = 0.78.
    step 2: g' = 1 + 0.078 = 1.078; V = 0.9*0.22 + 0.02*1.078 = 0.21956; w = 0.56044."""
    blob = LearnableBlob("l", 0, torch.nn.Parameter(torch.tensor([1.0])), 2.0, 1.0)
    up = Updater(pb.SolverParameter(type="SGD", momentum=0.9, weight_decay=0.1, base_lr=0.1, lr_policy="fixed"),
                 [blob])
    for rate, w_want, v_want in ((0.1, 0.78, 0.22), (0.01, 0.56044, 0.21956)):
        blob.tensor.grad = torch.tensor([1.0])
        up.apply(rate, 0)
        assert float(blob.tensor.detach()) == pytest.approx(w_want, rel=1e-6)
        assert float(up.history[0].detach()) == pytest.approx(v_want, rel=1e-6)


def test_l1_uses_sign_of_weight() -> None:
    """L1: g += weight_decay * sign(w), with sign(0) = 0; plain SGD without momentum, zero gradient:
    w = [2, -3, 0] -> w - 0.5*0.1*sign(w) = [1.95, -2.95, 0]."""
    blob = LearnableBlob("l", 0, torch.nn.Parameter(torch.tensor([2.0, -3.0, 0.0])), 1.0, 1.0)
    up = Updater(pb.SolverParameter(type="SGD", weight_decay=0.1, regularization_type="L1"), [blob])
    blob.tensor.grad = torch.zeros(3)
    up.apply(0.5, 0)
    np.testing.assert_allclose(blob.tensor.detach().numpy(), [1.95, -2.95, 0.0], rtol=1e-6)


def test_adam_bias_correction_first_step() -> None:
    """Adam at iteration 0 (t = 1): m1 = 0.1 g, v = 0.001 g^2, correction sqrt(0.001)/0.1, so the update is
    lr * g/|g| (up to eps): w = 1 - 0.01 * 1 for g = 4."""
    blob = LearnableBlob("l", 0, torch.nn.Parameter(torch.tensor([1.0])), 1.0, 1.0)
    up = Updater(pb.SolverParameter(type="Adam", momentum=0.9, momentum2=0.999, delta=1e-8), [blob])
    blob.tensor.grad = torch.tensor([4.0])
    up.apply(0.01, 0)
    assert float(blob.tensor.detach()) == pytest.approx(0.99, rel=1e-6)


def test_adam_uses_iteration_for_bias_correction() -> None:
    """t = iteration + 1: starting at iteration 10 (a resumed run) gives a different first update."""
    opts = dict(SETTINGS["Adam"])
    w0, grads = problem(seed=3, steps=3)
    want, _ = reference("Adam", opts, w0, grads, [0.01] * 3, start_iter=10)
    got, _ = engine_run("Adam", opts, w0, grads, [0.01] * 3, start_iter=10)
    assert_traces_equal(got, want)
    fresh, _ = reference("Adam", opts, w0, grads, [0.01] * 3, start_iter=0)
    assert not np.allclose(fresh[0][0], want[0][0], rtol=1e-4)


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdaGrad"])
@pytest.mark.parametrize(("iter_size", "clip"), [(2, -1.0), (1, 1.5), (3, 2.0), (4, 0.0)])
def test_iter_size_and_clip_gradients(kind: str, iter_size: int, clip: float) -> None:
    """The gradient given to the updater is the SUM over iter_size passes: it is clipped to a global L2
    norm <= clip (all blobs together), then divided by iter_size, then decayed."""
    opts = dict(SETTINGS[kind], weight_decay=0.01, iter_size=iter_size, clip_gradients=clip)
    w0, grads = problem(seed=10 + iter_size)
    grads[2] = [g * 1e-3 for g in grads[2]]   # one update whose norm is below the clip threshold
    if clip > 0:
        norms = [math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in gs)) for gs in grads]
        assert max(norms) > clip and min(norms) < clip   # both branches are exercised
    want, _ = reference(kind, opts, w0, grads, RATES)
    got, _ = engine_run(kind, opts, w0, grads, RATES)
    assert_traces_equal(got, want)


def test_clip_is_global_not_per_blob() -> None:
    """Two blobs with gradients [3, 0] and [4]: global norm 5, clip 1 -> [0.6, 0] and [0.8];
    plain SGD (no momentum) at rate 1 moves the weights by exactly those amounts."""
    blobs = [LearnableBlob("l", 0, torch.nn.Parameter(torch.zeros(2)), 1.0, 1.0),
             LearnableBlob("l", 1, torch.nn.Parameter(torch.zeros(1)), 1.0, 1.0)]
    up = Updater(pb.SolverParameter(type="SGD", clip_gradients=1.0), blobs)
    blobs[0].tensor.grad = torch.tensor([3.0, 0.0])
    blobs[1].tensor.grad = torch.tensor([4.0])
    up.apply(1.0, 0)
    np.testing.assert_allclose(blobs[0].tensor.detach().numpy(), [-0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(blobs[1].tensor.detach().numpy(), [-0.8], rtol=1e-6)


def test_iter_size_divides_after_clipping() -> None:
    """Gradient sum 10 over iter_size 2 with clip 4: clipped to 4 first, then halved -> step 2 (not 5 -> 4)."""
    blob = LearnableBlob("l", 0, torch.nn.Parameter(torch.zeros(1)), 1.0, 1.0)
    up = Updater(pb.SolverParameter(type="SGD", clip_gradients=4.0, iter_size=2), [blob])
    blob.tensor.grad = torch.tensor([10.0])
    up.apply(1.0, 0)
    assert float(blob.tensor.detach()) == pytest.approx(-2.0, rel=1e-6)


# ---------------------------------------------------------------------------
# Caffe SGD vs torch.optim.SGD
# ---------------------------------------------------------------------------

def test_caffe_sgd_differs_from_torch_after_lr_step() -> None:
    """Caffe puts the rate inside the history (V = mV + lr g, w -= V); torch.optim.SGD outside it
    (b = m b + g, w -= lr b). Equal while the rate is constant, different right after it changes."""
    rates = [0.1, 0.1, 0.1, 0.01, 0.01]
    wd, momentum = 0.001, 0.9
    w0, grads = problem(seed=99, steps=len(rates), shapes=[(4, 5)])
    caffe, _ = engine_run("SGD", dict(momentum=momentum, weight_decay=wd), w0, grads, rates,
                          lr_mults=[1.0], decay_mults=[1.0])
    want, _ = reference("SGD", dict(momentum=momentum, weight_decay=wd), w0, grads, rates,
                        lr_mults=[1.0], decay_mults=[1.0])
    assert_traces_equal(caffe, want)

    w = torch.nn.Parameter(torch.from_numpy(w0[0].copy()))
    opt = torch.optim.SGD([w], lr=rates[0], momentum=momentum, weight_decay=wd)
    torch_trace = []
    for rate, g in zip(rates, grads, strict=True):
        for group in opt.param_groups:
            group["lr"] = rate
        w.grad = torch.from_numpy(g[0].copy())
        opt.step()
        torch_trace.append(w.detach().numpy().astype(np.float64).copy())

    for step in range(3):   # constant rate: identical
        np.testing.assert_allclose(caffe[step][0], torch_trace[step], rtol=1e-5, atol=1e-6)
    # right after the rate drop: Caffe's update is 0.9*V_old + 0.01*g with V_old = 0.1*b_old,
    # torch's 0.01*(0.9*b_old + g): the momentum term differs by a factor 10.
    diff = np.abs(caffe[3][0] - torch_trace[3]).max()
    assert diff > 1e-2
    v_old = (caffe[1][0] - caffe[2][0])             # Caffe's V after update 3 (w2 = w1 - V)
    g3 = grads[3][0].astype(np.float64) + wd * caffe[2][0]
    np.testing.assert_allclose(caffe[3][0], caffe[2][0] - (0.9 * v_old + 0.01 * g3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(torch_trace[3], caffe[2][0] - 0.01 * (0.9 * v_old / 0.1 + g3), rtol=1e-4, atol=1e-5)
