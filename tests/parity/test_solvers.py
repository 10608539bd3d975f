"""Every solver type and lr policy for 50 iterations, `caffe train` against the engine (``make parity``).

A tiny net (a frozen convolution with lr_mult 0, a learned one, pooling, an InnerProduct) reads a
tiny LMDB (tests/support/tiny.py) with momentum, weight decay, clip_gradients and iter_size 2, from
the same initial caffemodel. The final weights must agree within 1e-4 relative, or, for the adaptive
solvers, within 3x the spread of two real Caffe runs with OPENBLAS_NUM_THREADS=1 and =2 (whichever is
larger); the frozen layer must come out unchanged on both sides.

A case over that tolerance gets one more, honest chance: Caffe runs again from ``ENSEMBLE`` initial
caffemodels whose learned weights are moved by one float32 ulp (up or down, seeded), and the engine must
end within the tolerance of the nearest of those real Caffe runs. It passes only when its trajectory is
one that Caffe itself takes from a start one rounding away; the report lists the case as a documented
difference. Adam + inv + clip_gradients needed it while the engine computed the rate in double: its
weights drifted 2.6e-7 from Caffe's by iteration 20, where two outputs of the learned convolution in one
max-pooling window (1.4 ulp apart in exact arithmetic) then rounded to the same float, and the tie sent
the gradient to another pixel (4.1e-4 at the end; 5 of 16 Caffe runs from 1-ulp-moved starts end as far
from Caffe). With the rate as the float Caffe computes (test_learning_rate_lines_match_caffe), the case
ends 3.4e-7 from Caffe.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.engine.net import load_net
from tests.support import run_script
from tests.support.parity import Report, relative_difference, run_caffe_tool
from tests.support.tiny import write_lmdb

ITERS, TOLERANCE = 50, 1e-4
ADAPTIVE = {"AdaGrad", "RMSProp", "AdaDelta", "Adam"}
ENSEMBLE = 16  # Caffe runs from 1-ulp-moved initial weights, only for a case over the tolerance

NET = """name: "tiny"
layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ scale: 0.00390625 }} data_param {{ source: "{lmdb}" batch_size: 4 backend: LMDB }} }}
layer {{ name: "frozen" type: "Convolution" bottom: "data" top: "c0" param {{ lr_mult: 0 }} param {{ lr_mult: 0 }}
  convolution_param {{ num_output: 4 kernel_size: 3 stride: 2 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "conv" type: "Convolution" bottom: "c0" top: "c1"
  param {{ lr_mult: 1 }} param {{ lr_mult: 2 decay_mult: 0 }}
  convolution_param {{ num_output: 6 kernel_size: 3 pad: 1 weight_filler {{ type: "xavier" }}
  bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "c1" top: "c1" }}
layer {{ name: "pool" type: "Pooling" bottom: "c1" top: "p1" pooling_param {{ pool: MAX kernel_size: 3 stride: 2 }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "p1" top: "fc" param {{ lr_mult: 1 decay_mult: 2 }}
  inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }}
"""

POLICIES = {
    "fixed": "",
    "step": "gamma: 0.5 stepsize: 15",
    "exp": "gamma: 0.98",
    "inv": "gamma: 0.01 power: 0.75",
    "multistep": "gamma: 0.5 stepvalue: 10 stepvalue: 30",
    "poly": "power: 1.5",
    "sigmoid": "gamma: 0.2 stepsize: 25",
}

TYPES = {
    "SGD": "momentum: 0.9",
    "Nesterov": "momentum: 0.9",
    "AdaGrad": "delta: 1e-8",
    "RMSProp": "rms_decay: 0.95 delta: 1e-8",
    "AdaDelta": "momentum: 0.95 delta: 1e-6",
    "Adam": "momentum: 0.9 momentum2: 0.999 delta: 1e-8",
}

#: Every policy with SGD, every type with one policy; clip_gradients on some.
RUNS = [("SGD", policy, policy in ("step", "poly")) for policy in POLICIES] + [
    ("Nesterov", "multistep", False), ("AdaGrad", "fixed", True), ("RMSProp", "step", False),
    ("AdaDelta", "fixed", False), ("Adam", "inv", False), ("Adam", "fixed", True), ("Adam", "inv", True)]


def write_solver(path: Path, net: Path, kind: str, policy: str, clip: bool, prefix: Path) -> Path:
    """A solver for ``ITERS`` iterations, snapshotting only at the end (Caffe's snapshot_after_train)."""
    base_lr = 1.0 if kind == "AdaDelta" else 0.01
    lines = [f'net: "{net}"', f'type: "{kind}"', f"base_lr: {base_lr}", f'lr_policy: "{policy}"', POLICIES[policy],
             TYPES[kind], "weight_decay: 0.002", "iter_size: 2", f"max_iter: {ITERS}", "display: 0",
             f'snapshot_prefix: "{prefix}"', "solver_mode: CPU", "random_seed: 3"]
    if clip:
        lines.append("clip_gradients: 0.5")
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


def final_weights(prefix: Path) -> dict[str, list[np.ndarray]]:
    """The weights of ``<prefix>_iter_<ITERS>.caffemodel``."""
    return cio.net_weights(cio.read_caffemodel(f"{prefix}_iter_{ITERS}.caffemodel"))


def ulp_moved(init: Path, out: Path, seed: int) -> Path:
    """``init`` with every nonzero weight of the learned layers moved by one float32 ulp, up or down at
    random (``seed``); the frozen layer stays as it is. Written to ``out``."""
    model = cio.read_caffemodel(init)
    rng = np.random.default_rng(seed)
    for layer in model.layer:
        if layer.name == "frozen":
            continue
        for blob in layer.blobs:
            values = np.asarray(blob.data, np.float32)
            toward = np.where(rng.random(values.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
            moved = np.where(values == 0, values, np.nextafter(values, toward))
            blob.ClearField("data")
            blob.data.extend(moved.tolist())
    cio.write_caffemodel(out, model)
    return out


def caffe_from_moved_starts(root: Path, net: Path, init: Path, case: tuple[str, str, bool],
                            ) -> list[dict[str, list[np.ndarray]]]:
    """The final weights of ``ENSEMBLE`` real Caffe runs of ``case`` (kind, policy, clip), each from
    :func:`ulp_moved` ``init`` with its own seed."""
    kind, policy, clip = case
    folder = root / f"moved-{kind}-{policy}{'-clip' if clip else ''}"
    folder.mkdir(exist_ok=True)
    runs = []
    for seed in range(ENSEMBLE):
        start = ulp_moved(init, folder / f"init{seed}.caffemodel", seed)
        prefix = folder / f"run{seed}"
        solver = write_solver(folder / f"solver{seed}.prototxt", net, kind, policy, clip, prefix)
        out = run_caffe_tool("caffe", "train", f"-solver={solver}", f"-weights={start}")
        assert out.returncode == 0, f"moved start {seed}: {out.stderr[-3000:]}"
        runs.append(final_weights(prefix))
    return runs


def worst(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> float:
    """The largest relative difference over every blob of two weight sets (same layers)."""
    assert sorted(a) == sorted(b)
    return max(relative_difference(x, y) for name in a for x, y in zip(a[name], b[name], strict=True))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The LMDB, the net and its initial caffemodel (the engine's fillers, seed fixed)."""
    root = tmp_path_factory.mktemp("solvers")
    lmdb = write_lmdb(root / "train_lmdb", 24, seed=5)
    net = root / "net.prototxt"
    net.write_text(NET.format(lmdb=lmdb))
    init = root / "init.caffemodel"
    cio.write_caffemodel(init, load_net(net, phase=0, data_shapes={"data": (2, 32, 32)}).to_caffemodel())
    return root, net, init


def _run_id(run: object) -> str:
    kind, policy, clip = run if isinstance(run, tuple) else run.values  # type: ignore[attr-defined]
    return f"{kind}-{policy}{'-clip' if clip else ''}"


@pytest.mark.parametrize(("kind", "policy", "clip"), RUNS, ids=[_run_id(r) for r in RUNS])
def test_solver_against_caffe(caffe_prefix: Path, setup: tuple[Path, Path, Path], kind: str, policy: str,
                              clip: bool, report: Report) -> None:
    root, net, init = setup
    name = f"{kind}-{policy}"
    runs = {}
    for side in ("caffe1", "caffe2", "engine") if kind in ADAPTIVE else ("caffe1", "engine"):
        (root / side).mkdir(exist_ok=True)
        prefix = root / side / name
        solver = write_solver(root / side / f"{name}.prototxt", net, kind, policy, clip, prefix)
        if side == "engine":
            out = run_script("tools/train.py", "-solver", solver, "-weights", init, "--quiet", timeout=600)
        else:
            out = run_caffe_tool("caffe", "train", f"-solver={solver}", f"-weights={init}", threads=int(side[-1]))
        assert out.returncode == 0, f"{side}: {out.stderr[-3000:]}"
        runs[side] = final_weights(prefix)
    initial = cio.net_weights(cio.read_caffemodel(init))
    for side, weights in runs.items():
        for a, b in zip(weights["frozen"], initial["frozen"], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{side}: the lr_mult 0 layer moved")
    assert worst(runs["caffe1"], initial) > 1e-3, "Caffe's weights did not move: the comparison would be empty"
    diff = worst(runs["engine"], runs["caffe1"])
    tolerance = TOLERANCE
    note = ""
    if "caffe2" in runs:
        spread = worst(runs["caffe2"], runs["caffe1"])
        tolerance = max(TOLERANCE, 3 * spread)
        note = f"Caffe 1 vs 2 BLAS threads: {spread:.2e}"
    nearest = diff
    if diff > tolerance:
        moved = caffe_from_moved_starts(root, net, init, (kind, policy, clip))
        nearest = min(worst(runs["engine"], other) for other in moved)
        apart = sum(worst(other, runs["caffe1"]) > tolerance for other in moved)
        found = (f"{apart} of {ENSEMBLE} Caffe runs from 1-ulp-moved weights end over the tolerance from Caffe; "
                 f"the engine is {nearest:.2e} from the nearest of them")
        note = f"{note}; {found}" if note else found
        if nearest > tolerance:
            note += "; OVER the tolerance"
        else:
            report.findings.append(f"solver {name}{' clip' if clip else ''}: engine vs Caffe {diff:.2e}, {found} "
                                   "(float32 rounding decides a tie, see tests/parity/test_solvers.py)")
    report.add(f"solver {name}{' clip' if clip else ''}, {ITERS} iterations", diff, tolerance, note=note)
    assert nearest <= tolerance, (f"{name}: engine vs Caffe {diff:.2e} > {tolerance:.2e}, and {nearest:.2e} from "
                                  f"the nearest of {ENSEMBLE} Caffe runs from 1-ulp-moved initial weights")


#: The solver's own lines: the rate of each displayed iteration and multistep's step changes.
RATE_LINE = re.compile(r"sgd_solver\.cpp:\d+\] ((?:Iteration \d+, lr = \S+)|(?:MultiStep Status: .*))$", re.M)


@pytest.mark.parametrize("policy", list(POLICIES))
def test_learning_rate_lines_match_caffe(caffe_prefix: Path, setup: tuple[Path, Path, Path], policy: str,
                                         report: Report) -> None:
    """With ``display: 1`` the engine's ``lr = `` lines (and multistep's status lines) read as Caffe's, digit for
    digit: the rate is the float Caffe computes (sgd_solver.cpp's GetLearningRate), printed as glog prints it."""
    root, net, init = setup
    folder = root / f"rates-{policy}"
    folder.mkdir()
    lines = {}
    for side in ("caffe", "engine"):
        solver = write_solver(folder / f"{side}.prototxt", net, "SGD", policy, False, folder / side)
        solver.write_text(solver.read_text().replace("display: 0", "display: 1"))
        if side == "engine":
            out = run_script("tools/train.py", "-solver", solver, "-weights", init, "--quiet", timeout=600)
        else:
            out = run_caffe_tool("caffe", "train", f"-solver={solver}", f"-weights={init}", log_level=0)
        assert out.returncode == 0, f"{side}: {out.stderr[-3000:]}"
        lines[side] = RATE_LINE.findall(out.stderr)
    assert sum("lr = " in line for line in lines["caffe"]) == ITERS
    differ = [(c, e) for c, e in zip(lines["caffe"], lines["engine"], strict=False) if c != e]
    report.add(f"lr lines, SGD {policy}, display 1", float(bool(differ)), 0.0, count=len(lines["caffe"]),
               note=f"{len(differ)} of {len(lines['caffe'])} lines differ")
    assert lines["engine"] == lines["caffe"], f"{len(differ)} lines differ, first: {differ[:3]}"


@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_resume_from_caffe_solverstate(caffe_prefix: Path, setup: tuple[Path, Path, Path], kind: str,
                                       report: Report) -> None:
    """Caffe snapshots at iteration 20 of 50; the engine resumes from Caffe's .solverstate and must end
    where Caffe's uninterrupted run ends."""
    root, net, init = setup
    policy = "step" if kind == "SGD" else "fixed"
    folder = root / f"resume-{kind}"
    folder.mkdir()
    solver = write_solver(folder / "solver.prototxt", net, kind, policy, False, folder / "caffe")
    solver.write_text(solver.read_text() + "snapshot: 20\n")
    out = run_caffe_tool("caffe", "train", f"-solver={solver}", f"-weights={init}")
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = write_solver(folder / "resumed.prototxt", net, kind, policy, False, folder / "engine")
    state = folder / "caffe_iter_20.solverstate"
    out = run_script("tools/train.py", "-solver", resumed, "-snapshot", state, "--quiet", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    diff = worst(final_weights(folder / "engine"), final_weights(folder / "caffe"))
    report.add(f"resume {kind} from Caffe's iteration-20 .solverstate, to {ITERS}", diff, TOLERANCE)
    assert diff <= TOLERANCE, f"resumed engine vs uninterrupted Caffe: {diff:.2e}"


@pytest.mark.parametrize("policy", ["step", "multistep", "sigmoid"])
def test_negative_gamma_is_refused(caffe_prefix: Path, setup: tuple[Path, Path, Path], policy: str) -> None:
    """Caffe's SGDSolver::GetLearningRate CHECKs gamma >= 0 for step, multistep and sigmoid
    (src/caffe/solvers/sgd_solver.cpp); the engine must refuse the solver too."""
    root, net, _ = setup
    folder = root / f"gamma-{policy}"
    folder.mkdir()
    solver = write_solver(folder / "solver.prototxt", net, "SGD", policy, False, folder / "snap")
    solver.write_text(re.sub(r"gamma: [0-9.]+", "gamma: -0.2", solver.read_text()))
    assert "gamma: -0.2" in solver.read_text()
    caffe = run_caffe_tool("caffe", "train", f"-solver={solver}")
    assert caffe.returncode != 0 and "Check failed: this->param_.gamma() >= 0" in caffe.stderr
    engine = run_script("tools/train.py", "-solver", solver, "--quiet", timeout=600)
    assert engine.returncode != 0 and "gamma" in engine.stderr
