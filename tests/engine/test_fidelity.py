"""Caffe's behaviour in the solver, the net and the launcher (issue 13 items 2-8, 10, 12, 14).

Caffe facts asserted here, from the BVLC source:
- Net::Init (src/caffe/net.cpp): a blob with ``lr_mult: 0`` gets param_propagate_down false, so no
  diff is computed for it (unless ``force_backward``); ClearParamDiffs zeroes diffs, so
  SGDSolver::ClipGradients (sgd_solver.cpp) sums no frozen gradient into its norm and the adaptive
  solvers' histories see only the regularisation term; ``propagate_down: false`` stops the diff of
  that bottom, and a count other than 0 or one per bottom is a CHECK failure.
- SoftmaxWithLossLayer (softmax_loss_layer.cpp): loss -log(max(p, FLT_MIN)); backward p - onehot.
- Solver::InitTrainNet/InitTestNets (solver.cpp): NetState = phase, then the net's state, then
  train_state / test_state[i]; ``caffe train`` (tools/caffe.cpp) sets train_state.level = -level
  (default 0) and adds the -stage names; ``weights`` load into the train net and every test net;
  ``-weights`` replaces them, ``-snapshot`` clears them.
- Solver::Init seeds each solver with random_seed + solver rank.
- tools/caffe.cpp: no -gpu and ``solver_mode: GPU`` -> device_id; train() never reads -iterations.
- UpgradeSnapshotPrefixProperty (util/upgrade_proto.cpp): a prefix naming a folder becomes
  ``<folder>/<solver stem>``; CheckSnapshotWritePermissions aborts on a missing folder.
"""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.caffe.solver_rules import snapshot_prefix
from mcnn.engine import distributed
from mcnn.engine.glog import GlogWriter
from mcnn.engine.launch import solver_gpus
from mcnn.engine.net import Net
from mcnn.engine.process import cuda_precision
from mcnn.engine.snapshots import snapshot_paths
from mcnn.engine.solver import Updater, solver_nets
from mcnn.engine.trainer import Trainer, TrainOptions
from mcnn.errors import ConfigError
from tests.support import ROOT
from tests.support.scripts import load_script
from tests.support.tiny import write_lmdb

FAKES = ROOT / "tests" / "fakes"

#: data (4 values) -> ip1 (3) -> ip2 (2 classes) -> SoftmaxWithLoss; ``{ip1_param}`` is ip1's param specs.
MLP = """
name: "mlp" {force}
layer {{ name: "data" type: "Input" top: "data" top: "label"
        input_param {{ shape {{ dim: 5 dim: 4 }} shape {{ dim: 5 }} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" {ip1_param}
        inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" std: 0.5 }}
                              bias_filler {{ type: "constant" value: 0.1 }} }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" {ip2_extra}
        inner_product_param {{ num_output: 2 weight_filler {{ type: "gaussian" std: 0.5 }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }}
"""
FROZEN = 'param { lr_mult: 0 } param { lr_mult: 0 }'


def mlp(ip1_param: str = "", ip2_extra: str = "", force: bool = False) -> Net:
    text = MLP.format(ip1_param=ip1_param, ip2_extra=ip2_extra, force="force_backward: true" if force else "")
    return Net(cio.parse_prototxt(text, pb.NetParameter), pb.TRAIN, generator=torch.Generator().manual_seed(3))


def backward(net: Net) -> None:
    gen = torch.Generator().manual_seed(1)
    feeds = {"data": torch.randn(5, 4, generator=gen), "label": torch.tensor([0.0, 1, 1, 0, 1])}
    net.loss(net.forward(feeds, train=True)).backward()


# -- item 3: frozen blobs ---------------------------------------------------------------------------

def test_frozen_blobs_get_no_gradient_and_stay_out_of_the_clip_norm() -> None:
    net = mlp(FROZEN)
    backward(net)
    ip1, ip2 = net.layer_blobs("ip1"), net.layer_blobs("ip2")
    assert all(b.tensor.grad is None for b in ip1) and all(b.tensor.grad is not None for b in ip2)
    want = math.sqrt(sum(float((b.tensor.grad.double() ** 2).sum()) for b in ip2))
    updater = Updater(pb.SolverParameter(base_lr=0.1, clip_gradients=1e-3, lr_policy="fixed"), net.learnable())
    assert updater.clip_gradients() == pytest.approx(want, rel=1e-12)
    clipped = math.sqrt(sum(float((b.tensor.grad.double() ** 2).sum()) for b in ip2))
    assert clipped == pytest.approx(1e-3, rel=1e-6)  # scaled by clip / norm, as ClipGradients does
    forced = mlp(FROZEN, force=True)  # force_backward: Caffe computes every diff
    backward(forced)
    assert all(b.tensor.grad is not None for b in forced.layer_blobs("ip1"))


@pytest.mark.parametrize("kind", ["AdaGrad", "RMSProp", "Adam"])
def test_adaptive_histories_of_frozen_blobs_hold_only_the_decay_term(kind: str) -> None:
    net = mlp(FROZEN)
    w0 = [b.tensor.detach().clone() for b in net.layer_blobs("ip1")]
    param = pb.SolverParameter(base_lr=0.1, lr_policy="fixed", weight_decay=0.01, type=kind, rms_decay=0.9,
                               momentum=0.9 if kind == "Adam" else 0.0)
    updater = Updater(param, net.learnable())
    backward(net)
    updater.apply(0.1, 0)
    for i, (blob, w) in enumerate(zip(net.layer_blobs("ip1"), w0, strict=True)):
        decay = 0.01 * w  # the diff Caffe has for a frozen blob: 0 + weight_decay * w
        want = {"AdaGrad": decay ** 2, "RMSProp": 0.1 * decay ** 2, "Adam": 0.1 * decay}[kind]
        torch.testing.assert_close(updater.history[i], want, rtol=1e-6, atol=0)
        torch.testing.assert_close(blob.tensor.detach(), w, rtol=0, atol=0)  # lr_mult 0: unchanged


# -- item 12: SoftmaxWithLoss where p(label) underflows --------------------------------------------

def test_softmax_loss_gradient_is_p_minus_onehot_when_the_probability_underflows() -> None:
    text = """layer { name: "s" type: "Input" top: "s" top: "l"
                      input_param { shape { dim: 3 dim: 2 } shape { dim: 3 } } }
              layer { name: "loss" type: "SoftmaxWithLoss" bottom: "s" bottom: "l" top: "loss"
                      loss_param { ignore_label: 7 } }"""
    net = Net(cio.parse_prototxt(text, pb.NetParameter), pb.TRAIN)
    scores = torch.tensor([[0.0, 200.0], [0.0, 0.0], [5.0, 1.0]], requires_grad=True)
    loss = net.loss(net.forward({"s": scores, "l": torch.tensor([0.0, 1.0, 7.0])}, train=True))
    flt_min = float(np.finfo(np.float32).tiny)
    # VALID normalisation: 2 non-ignored rows; p(0) of row 0 is exp(-200) = 0 in float32 -> clamped
    assert float(loss.detach()) == pytest.approx((-math.log(flt_min) + math.log(2)) / 2, rel=1e-6)
    loss.backward()
    np.testing.assert_allclose(scores.grad.numpy(), [[-0.5, 0.5], [0.25, -0.25], [0.0, 0.0]], rtol=1e-6)


# -- item 4: propagate_down -------------------------------------------------------------------------

def test_propagate_down_false_stops_the_gradient_of_that_bottom() -> None:
    net = mlp(ip2_extra="propagate_down: false")
    backward(net)
    assert all(b.tensor.grad is None for b in net.layer_blobs("ip1"))  # nothing reaches ip1
    assert all(b.tensor.grad is not None and float(b.tensor.grad.abs().sum()) > 0 for b in net.layer_blobs("ip2"))
    with pytest.raises(ConfigError, match=r"layer 'ip2': propagate_down has 2 values for 1 bottoms; give none or one "
                                          r"per bottom"):
        mlp(ip2_extra="propagate_down: false propagate_down: true")


# -- item 5: NetState from the solver and caffe train -level/-stage --------------------------------

STATE_NET = """
name: "states" state { stage: "from_net" level: 1 }
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 } } }
layer { name: "lvl" type: "ReLU" bottom: "data" top: "lvl" include { min_level: 2 } }
layer { name: "stg" type: "ReLU" bottom: "data" top: "stg" include { stage: "extra" stage: "from_net" } }
layer { name: "nostg" type: "ReLU" bottom: "data" top: "nostg" exclude { stage: "deploy" } }
layer { name: "maxl" type: "ReLU" bottom: "data" top: "maxl" include { max_level: 0 } }
"""


def _layers(state: pb.NetState, net: pb.NetParameter) -> list[str]:
    built = Net(net, state.phase, level=state.level, stages=state.stage)
    return [e.param.name for e in built.entries]


def test_train_and_test_state_select_layers_as_caffe_merges_them() -> None:
    net = cio.parse_prototxt(STATE_NET, pb.NetParameter)
    solver = pb.SolverParameter(net_param=net, test_iter=[1, 1], test_interval=1)
    solver.train_state.stage.append("extra")
    solver.train_state.level = 3
    solver.test_state.add(stage=["deploy"])
    solver.test_state.add(level=0)
    nets = solver_nets(solver, Path.cwd())  # pycaffe-style: the solver's own levels
    assert (nets.train_state.phase, nets.train_state.level, list(nets.train_state.stage)) == (
        pb.TRAIN, 3, ["from_net", "extra"])
    assert _layers(nets.train_state, net) == ["data", "lvl", "stg", "nostg"]
    assert _layers(nets.test_states[0], net) == ["data"]  # level 1 from the net, stage deploy
    assert _layers(nets.test_states[1], net) == ["data", "nostg", "maxl"]
    flags = solver_nets(solver, Path.cwd(), level=0, stages=["extra2"])  # caffe train -stage extra2 (level 0)
    assert flags.train_state.level == 0 and list(flags.train_state.stage) == ["from_net", "extra", "extra2"]
    assert _layers(flags.train_state, net) == ["data", "stg", "nostg", "maxl"]
    solver.test_state.add()
    with pytest.raises(ConfigError, match="3 test_state messages for 2 test nets"):
        solver_nets(solver, Path.cwd())


def _load_train_tool():
    return load_script("tools/train.py", "train_tool")


def test_train_tool_passes_level_stage_and_tf32() -> None:
    tool = _load_train_tool()
    run = tool.training_run(tool.get_args_parser().parse_args(
        ["-solver", "s.prototxt", "-level", "2", "-stage", "a,b", "--tf32"]))
    assert (run.level, list(run.stages), run.tf32) == (2, ["a", "b"], True)
    default = tool.training_run(tool.get_args_parser().parse_args(["-solver", "s.prototxt"]))
    assert (default.level, list(default.stages), default.tf32) == (0, [], False)
    from mcnn.training import caffe_argv

    assert caffe_argv(run)[4:8] == ["-level", "2", "-stage", "a,b"]


# -- a tiny LMDB solver for the Trainer ----------------------------------------------------------

def tiny_solver(tmp_path: Path, extra_layers: str = "", solver_extra: str = "") -> Path:
    """data (2x32x32 LMDB) -> ip -> SoftmaxWithLoss, plus ``extra_layers``; solver file in ``tmp_path``."""
    lmdb = tmp_path / "lmdb"
    if not lmdb.exists():
        write_lmdb(lmdb, 6, seed=1)
    net = f"""
layer {{ name: "data" type: "Data" top: "data" top: "label"
        data_param {{ source: "{lmdb}" batch_size: 2 backend: LMDB }}
        transform_param {{ scale: 0.00390625 }} }}
layer {{ name: "drop" type: "Dropout" bottom: "data" top: "drop" dropout_param {{ dropout_ratio: 0.5 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "drop" top: "ip"
        inner_product_param {{ num_output: 3 weight_filler {{ type: "xavier" }} }} }}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }}
{extra_layers}"""
    (tmp_path / "net.prototxt").write_text(net)
    solver = tmp_path / "solver.prototxt"
    solver.write_text(f'net: "{tmp_path / "net.prototxt"}" base_lr: 0.01 lr_policy: "fixed" max_iter: 2 '
                      f'random_seed: 5 snapshot_after_train: false solver_mode: CPU {solver_extra}\n')
    return solver


# -- item 2: the solver's weights field -----------------------------------------------------------

def test_solver_weights_load_into_the_train_and_test_nets(tmp_path: Path) -> None:
    test_only = """layer { name: "head" type: "InnerProduct" bottom: "ip" top: "head" include { phase: TEST }
                          inner_product_param { num_output: 2 } }"""
    solver = tiny_solver(tmp_path, test_only, 'test_iter: 1 test_interval: 10 weights: " w.caffemodel "')
    rng = np.random.default_rng(0)
    stored = {"ip": [rng.normal(size=(3, 2048)).astype(np.float32), rng.normal(size=3).astype(np.float32)],
              "head": [rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=2).astype(np.float32)]}
    model = pb.NetParameter()
    for name, arrays in stored.items():
        model.layer.add(name=name, blobs=[cio.array_to_blob(a) for a in arrays])
    cio.write_caffemodel(tmp_path / "w.caffemodel", model)  # found beside the solver
    log = io.StringIO()
    trainer = Trainer(solver, TrainOptions(), GlogWriter(stream=log))
    np.testing.assert_array_equal(trainer.net.layer_blobs("ip")[0].tensor.detach().numpy(), stored["ip"][0])
    np.testing.assert_array_equal(trainer.test_nets[0].layer_blobs("head")[1].tensor.detach().numpy(),
                                  stored["head"][1])
    assert "Copied weights from" in log.getvalue() and "ignored source layers" not in log.getvalue()
    resumed = Trainer(solver, TrainOptions(snapshot="x.solverstate"), GlogWriter(enabled=False))  # clears them
    assert not np.array_equal(resumed.net.layer_blobs("ip")[0].tensor.detach().numpy(), stored["ip"][0])


# -- item 6: one seed per rank --------------------------------------------------------------------

def test_each_rank_draws_its_own_dropout_masks(tmp_path: Path) -> None:
    solver = tiny_solver(tmp_path)
    draws = []
    for rank in (0, 1, 0):
        trainer = Trainer(solver, TrainOptions(rank=rank), GlogWriter(enabled=False))
        trainer._seed_iteration(4, 0)
        draws.append(torch.rand(8))
    assert torch.equal(draws[0], draws[2]) and not torch.equal(draws[0], draws[1])
    assert distributed.rank_seed(5, 3) == 8


# -- item 7: float32 on CUDA unless --tf32 --------------------------------------------------------

def test_engine_turns_tf32_off_unless_asked(tmp_path: Path) -> None:
    solver = tiny_solver(tmp_path)
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions
        Trainer(solver, TrainOptions(), GlogWriter(enabled=False))
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (False, False)
        Trainer(solver, TrainOptions(tf32=True), GlogWriter(enabled=False))
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == (True, True)
    finally:
        cuda_precision(False)
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# -- item 8: solver_mode GPU without -gpu; -iterations with caffe ---------------------------------

def test_solver_mode_gpu_without_gpu_flag_uses_device_id(monkeypatch: pytest.MonkeyPatch) -> None:
    solver = pb.SolverParameter(solver_mode=pb.SolverParameter.GPU, device_id=1)
    log = io.StringIO()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    assert solver_gpus(None, solver, GlogWriter(stream=log)) == []
    (line,) = log.getvalue().splitlines()
    assert line.startswith("W") and "solver_mode: GPU (device_id 1) but no CUDA device is visible" in line
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert solver_gpus(None, solver) == [1]
    assert solver_gpus("0", solver) == [0]  # -gpu wins
    assert solver_gpus(None, pb.SolverParameter()) == []  # solver_mode not set: Caffe uses the CPU
    with pytest.raises(ConfigError, match="solver device_id 4: device not available"):
        solver_gpus(None, pb.SolverParameter(solver_mode=pb.SolverParameter.GPU, device_id=4))


def test_iterations_with_engine_caffe_is_refused(tmp_path: Path) -> None:
    from mcnn.training import TrainingRun, train

    solver = tiny_solver(tmp_path)
    with pytest.raises(ConfigError, match=r"^-iterations 3: `caffe train` has no such option"):
        train(TrainingRun(solver=str(solver), iterations=3), "caffe")


# -- item 10: snapshot_prefix naming a folder ------------------------------------------------------

def test_snapshot_prefix_naming_a_folder_writes_inside_it(tmp_path: Path) -> None:
    (tmp_path / "snaps").mkdir()
    solver = pb.SolverParameter(snapshot_prefix=str(tmp_path / "snaps"))
    file = str(tmp_path / "solvers" / "mcnn_solver.prototxt")
    assert snapshot_prefix(solver, file) == f"{tmp_path}/snaps/mcnn_solver"
    assert snapshot_paths(solver, 7, file)[0] == tmp_path / "snaps" / "mcnn_solver_iter_7.caffemodel"
    assert snapshot_prefix(pb.SolverParameter(snapshot_prefix=str(tmp_path / "snaps" / "x")), file).endswith("snaps/x")
    assert snapshot_prefix(pb.SolverParameter(), file) == f"{tmp_path}/solvers/mcnn_solver"


# -- item 14: real caffe needs the snapshot folder; the launcher creates it ------------------------

def _fake_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{FAKES / 'bin'}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env.pop("FAKE_CAFFE_EXIT", None)
    return env


def test_caffe_engine_creates_the_snapshot_folder_real_caffe_needs(tiny, tmp_path: Path) -> None:
    env = _fake_env(tmp_path)
    fake = subprocess.run([sys.executable, str(FAKES / "bin" / "caffe"), "train", "-solver", str(tiny.solver)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert fake.returncode == 134 and "Cannot write to snapshot prefix" in fake.stderr  # as real Caffe stops
    assert not (tiny.root / "snaps").exists()
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "train.py"), "-solver", str(tiny.solver),
                          "--engine", "caffe"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    max_iter = cio.read_solver(tiny.solver).max_iter
    assert (tiny.root / "snaps" / f"tiny_iter_{max_iter}.caffemodel").is_file()
