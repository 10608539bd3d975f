"""A tiny learnable LMDB dataset and a small M-CNN with its solver (the ``tiny`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
from mcnn.caffe.io import write_prototxt
from mcnn.nets import DataSpec, build_net
from mcnn.nets.solver import SolverOptions, build_solver

SIZE = 32
CLASSES = 3


def pattern_image(label: int, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A 2-channel uint8 image whose class is visible at a different scale per label."""
    x = rng.integers(0, 60, (2, size, size)).astype(np.uint8)
    if label == 1:
        x[0, size // 4: size // 2, size // 4: size // 2] += 120  # a blob
    elif label == 2:
        x[1, size // 2 - 2: size // 2 + 2, :] += 120               # a stripe
    return x


def write_lmdb(path: Path, count: int, seed: int, labels: list[int] | None = None) -> Path:
    """Write ``count`` records of :func:`pattern_image` (labels cycle 0..CLASSES-1 unless given)."""
    rng = np.random.default_rng(seed)
    with LmdbWriter(path) as writer:
        for i in range(count):
            label = labels[i] if labels is not None else i % CLASSES
            writer.put(record_key(i, f"img{i}"), array_to_datum(pattern_image(label, rng), label))
    return path


@dataclass
class TinySetup:
    """Paths of a :func:`make_setup` folder."""

    root: Path
    solver: Path
    train_val: Path
    deploy: Path
    snapshot_prefix: str


def make_setup(root: Path, *, max_epochs: float = 4, base_lr: float = 0.1, dropout: float = 0.0,
               snapshot_epochs: float = 2, train_count: int = 48, test_count: int = 12, batch: int = 8,
               solver_type: str = "SGD", lr_policy: str = "step", iter_size: int = 1) -> TinySetup:
    """Write LMDBs, a 4-scale M-CNN (train_val + deploy) and its solver under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    write_lmdb(root / "train_lmdb", train_count, seed=1)
    write_lmdb(root / "test_lmdb", test_count, seed=2)
    data = DataSpec(channels=2, height=SIZE, width=SIZE, classes=CLASSES, scale=1 / 256,
                    train_source=str(root / "train_lmdb"), test_source=str(root / "test_lmdb"),
                    train_batch=batch, test_batch=4)
    arch = dict(scales=(1, 2, 4, 8), pathway_widths=(8, 8, 8, 8), fusion_width=16, fc_width=32, dropout=dropout)
    train_val, deploy = root / "mcnn_train_val.prototxt", root / "mcnn_deploy.prototxt"
    write_prototxt(train_val, build_net("mcnn", data, **arch).net)
    write_prototxt(deploy, build_net("mcnn", data, deploy=True, **arch).net)
    prefix = str(root / "snaps" / "tiny")
    options = SolverOptions(epochs=max_epochs, base_lr=base_lr, step_epochs=2, snapshot_epochs=snapshot_epochs,
                            snapshot_prefix=prefix, mode="CPU", display=2, type=solver_type, lr_policy=lr_policy,
                            iter_size=iter_size)
    built = build_solver(str(train_val), train_count, test_count, batch, 4, options)
    solver = root / "solver.prototxt"
    write_prototxt(solver, built.solver)
    return TinySetup(root, solver, train_val, deploy, prefix)

