"""Data-parallel training: two gloo processes under torchrun equal one process with twice the batch."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from tests.support import ROOT, run_script
from tests.support.tiny import make_setup


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_processes_match_one_process_with_double_batch(tmp_path: Path) -> None:
    two = make_setup(tmp_path / "two", batch=4, max_epochs=2, snapshot_epochs=0)
    one = make_setup(tmp_path / "one", batch=8, max_epochs=2, snapshot_epochs=0)
    # Caffe semantics: batch_size is per process, so 2 x 4 images per iteration; iterations per
    # epoch are computed for batch 4 in the two-process solver, so align max_iter explicitly.
    solver = cio.read_solver(two.solver)
    solver.max_iter = cio.read_solver(one.solver).max_iter
    cio.write_prototxt(two.solver, solver)
    # The README's `torchrun --nproc_per_node 2 tools/train.py ...`: torch's own launcher script.
    torchrun = Path(sys.executable).parent / "torchrun"
    out = run_script(torchrun, "--nproc_per_node", "2", "--master_port", str(_port()), ROOT / "tools" / "train.py",
                     "-solver", two.solver, "--workers", "0", timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    single = run_script("tools/train.py", "-solver", one.solver, "--workers", "0", timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    n = solver.max_iter
    a = cio.net_weights(cio.read_caffemodel(f"{two.snapshot_prefix}_iter_{n}.caffemodel"))
    b = cio.net_weights(cio.read_caffemodel(f"{one.snapshot_prefix}_iter_{n}.caffemodel"))
    for name in b:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    # only the root process logs
    assert out.stderr.count("Optimization Done.") == 1


def test_gpu_runs_have_a_cpu_backend_for_the_flag_collectives() -> None:
    """The finite-loss and signal flags are CPU tensors: under NCCL alone their all_reduce would fail."""
    from torch.distributed.distributed_c10d import Backend

    from mcnn.engine.launch import GPU_BACKEND

    parsed = str(Backend(GPU_BACKEND))
    assert "cpu:gloo" in parsed and "cuda:nccl" in parsed
