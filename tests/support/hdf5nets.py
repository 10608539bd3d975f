"""Tiny HDF5Data nets for the HDF5 tests: .h5 files of a linear regression problem, a list file, a solver."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: The regression the nets learn: target = data @ W_TRUE (3 inputs, 2 multi-label float targets).
W_TRUE = np.array([[1.0, -2.0], [0.5, 0.25], [-1.0, 1.5]], dtype=np.float32)

NET = """name: "h5net"
layer {{ name: "data" type: "HDF5Data" top: "data" top: "target" include {{ phase: TRAIN }}
  hdf5_data_param {{ source: "{train_list}" batch_size: {batch} shuffle: {shuffle} }} }}
layer {{ name: "data" type: "HDF5Data" top: "data" top: "target" include {{ phase: TEST }}
  hdf5_data_param {{ source: "{test_list}" batch_size: 4 }} }}
layer {{ name: "fc" type: "InnerProduct" bottom: "data" top: "pred"
  inner_product_param {{ num_output: 2 weight_filler {{ type: "gaussian" std: 0.1 }} }} }}
layer {{ name: "relu" type: "ReLU" bottom: "pred" top: "relu_out" }}
layer {{ name: "silence" type: "Silence" bottom: "relu_out" }}
layer {{ name: "loss" type: "EuclideanLoss" bottom: "pred" bottom: "target" top: "loss" }}
{extra}"""

SOLVER = """net: "{root}/net.prototxt"
base_lr: 0.1
momentum: 0.9
weight_decay: 0.001
lr_policy: "step"
gamma: 0.5
stepsize: 6
max_iter: {max_iter}
snapshot: {snapshot}
snapshot_prefix: "{root}/snaps/h5"
snapshot_format: {fmt}
random_seed: 3
display: 0
{test}"""


def write_rows(path: Path, start: int, count: int, **extra: np.ndarray) -> Path:
    """An .h5 file with ``data`` (count x 3, row i holds i + start in column 0) and ``target`` (count x 2)."""
    rng = np.random.default_rng(start)
    data = rng.normal(size=(count, 3)).astype(np.float32)
    data[:, 0] = np.arange(start, start + count)  # makes the row visible in a batch
    data[:, 0] /= 10.0
    with h5py.File(path, "w") as f:
        f["data"] = data
        f["target"] = data @ W_TRUE
        for name, value in extra.items():
            f[name] = value
    return path


def make_h5_setup(root: Path, *, fmt: str = "HDF5", max_iter: int = 12, snapshot: int = 6, shuffle: bool = False,
                  batch: int = 4, extra: str = "", test: bool = False) -> Path:
    """Write two train files (6 and 10 rows), a test file, the net and the solver under ``root``; the solver path."""
    root.mkdir(parents=True, exist_ok=True)
    write_rows(root / "a.h5", 0, 6)
    write_rows(root / "b.h5", 6, 10)
    write_rows(root / "t.h5", 16, 8)
    (root / "train.txt").write_text("a.h5\nb.h5\n")
    (root / "test.txt").write_text("t.h5\n")
    (root / "net.prototxt").write_text(NET.format(train_list=root / "train.txt", test_list=root / "test.txt",
                                                  batch=batch, shuffle=str(shuffle).lower(), extra=extra))
    test_lines = f"test_iter: 2\ntest_interval: {max_iter}\ntest_initialization: false\n" if test else ""
    (root / "solver.prototxt").write_text(SOLVER.format(root=root, max_iter=max_iter, snapshot=snapshot, fmt=fmt,
                                                        test=test_lines))
    return root / "solver.prototxt"
