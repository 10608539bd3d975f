"""clip_gradients' log line and the max-pooling tie behind the Adam + inv + clip parity case (issue 13).

Caffe's SGDSolver::ClipGradients (src/caffe/solvers/sgd_solver.cpp, line 99) logs one INFO line per
scaled update; the engine's Updater logs the same text through its ``log``. The pooling tests pin the
float32 behaviour the parity suite ran into: a MAX window gives its gradient to the first of equal
values (Caffe's strict ``>``, src/caffe/layers/pooling_layer.cpp), so one ulp decides which input
pixel learns.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt
from mcnn.engine.glog import GlogWriter
from mcnn.engine.layers import make_layer
from mcnn.engine.net import LearnableBlob
from mcnn.engine.solver import Updater


def blobs_with(*grads: list[float]) -> list[LearnableBlob]:
    """One zero-initialised learnable blob per gradient list, with that gradient set."""
    out = []
    for i, grad in enumerate(grads):
        blob = LearnableBlob("l", i, torch.nn.Parameter(torch.zeros(len(grad))), 1.0, 1.0)
        blob.tensor.grad = torch.tensor(grad)
        out.append(blob)
    return out


def clip_lines(clip: float, *grads: list[float]) -> tuple[list[tuple[str, str]], list[LearnableBlob]]:
    """The (message, where) pairs one update logs with ``clip_gradients: clip``, and the blobs."""
    lines: list[tuple[str, str]] = []
    blobs = blobs_with(*grads)
    up = Updater(pb.SolverParameter(type="SGD", clip_gradients=clip), blobs,
                 log=lambda message, where: lines.append((message, where)))
    up.apply(1.0, 0)
    return lines, blobs


def test_clipping_logs_caffes_line() -> None:
    """Gradients [3, 0] and [4]: global norm 5 over clip 1, scale 0.2 (Caffe prints floats with 6 digits)."""
    lines, blobs = clip_lines(1.0, [3.0, 0.0], [4.0])
    assert lines == [("Gradient clipping: scaling down gradients (L2 norm 5 > 1) by scale factor 0.2",
                      "sgd_solver.cpp:99")]
    np.testing.assert_allclose(blobs[1].tensor.detach().numpy(), [-0.8], rtol=1e-6)


def test_clipping_line_has_six_significant_digits() -> None:
    """Norm sqrt(2) over clip 0.5: Caffe's ostream prints 1.41421 and 0.353553."""
    lines, _ = clip_lines(0.5, [1.0, 1.0])
    assert [m for m, _ in lines] == ["Gradient clipping: scaling down gradients (L2 norm 1.41421 > 0.5) "
                                     "by scale factor 0.353553"]


@pytest.mark.parametrize(("clip", "grads"), [(5.0, [3.0, 4.0]), (6.0, [3.0, 4.0]), (-1.0, [30.0, 40.0])])
def test_no_clipping_line_at_or_under_the_threshold_or_when_off(clip: float, grads: list[float]) -> None:
    """Caffe scales (and logs) only when the norm is strictly over clip_gradients, and never for clip < 0."""
    lines, blobs = clip_lines(clip, grads)
    assert lines == []
    np.testing.assert_allclose(blobs[0].tensor.detach().numpy(), [-g for g in grads], rtol=1e-6)


def test_clipping_line_in_glog_format() -> None:
    """Through a GlogWriter the line reads like real Caffe's log (what parse_log and users grep for)."""
    stream = io.StringIO()
    blobs = blobs_with([2.48708])
    Updater(pb.SolverParameter(type="SGD", clip_gradients=0.5), blobs, log=GlogWriter(stream)).apply(0.01, 0)
    line = stream.getvalue().strip()
    assert line.startswith("I") and line.endswith(
        " sgd_solver.cpp:99] Gradient clipping: scaling down gradients (L2 norm 2.48708 > 0.5) "
        "by scale factor 0.201039")


# -- the tie ----------------------------------------------------------------------------------------

POOL = 'name: "pool" type: "Pooling" bottom: "c1" top: "p1" pooling_param { pool: MAX kernel_size: 3 stride: 2 }'
#: The two convolution outputs of the parity case at iteration 20 (record 22, channel 2, rows 12 and 13 of
#: column 8): the engine computed both as A; Caffe computed the second 2 ulp above the first.
A = np.float32(0.28884348)


def pooled_gradient(upper: np.float32, lower: np.float32) -> np.ndarray:
    """The input gradient of one 3x3 MAX window whose right column holds ``upper`` over ``lower``."""
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, :, :2] = 0.1
    x[0, 0, 0, 2], x[0, 0, 1, 2] = upper, lower
    bottom = torch.tensor(x, requires_grad=True)
    (top,) = make_layer(parse_prototxt(POOL, pb.LayerParameter)).forward([bottom], [], True)
    assert top.shape == (1, 1, 1, 1)
    top.sum().backward()
    assert bottom.grad is not None
    return bottom.grad[0, 0].numpy()


def test_max_pool_tie_goes_to_the_first_position() -> None:
    grad = pooled_gradient(A, A)
    want = np.zeros((3, 3), np.float32)
    want[0, 2] = 1.0
    np.testing.assert_array_equal(grad, want)


def test_one_ulp_moves_the_max_pool_gradient() -> None:
    """0.28884348 over 0.2888435 (its next float up): the gradient goes to the lower pixel instead."""
    above = np.nextafter(A, np.float32(np.inf))
    assert above == np.float32(0.2888435) and above - A == np.spacing(A)
    want = np.zeros((3, 3), np.float32)
    want[1, 2] = 1.0
    np.testing.assert_array_equal(pooled_gradient(A, above), want)


def test_training_logs_the_clipping_line(tmp_path) -> None:
    """A Trainer whose gradients exceed ``clip_gradients`` logs Caffe's line at every display iteration."""
    from mcnn.caffe import io as cio
    from mcnn.engine.trainer import Trainer, TrainOptions
    from tests.support.tiny import make_setup

    setup = make_setup(tmp_path, max_epochs=0.5, train_count=16, test_count=4)
    solver = cio.read_solver(setup.solver)
    solver.clip_gradients = 1e-3
    solver.max_iter, solver.display = 2, 1
    solver.ClearField("test_iter")
    solver.test_interval = 0
    stream = io.StringIO()
    Trainer(solver, TrainOptions(), log=GlogWriter(stream)).solve()
    lines = [line for line in stream.getvalue().splitlines() if "Gradient clipping" in line]
    assert len(lines) == 2 and all("sgd_solver.cpp:99] Gradient clipping: scaling down gradients (L2 norm "
                                   in line and "> 0.001) by scale factor " in line for line in lines)
