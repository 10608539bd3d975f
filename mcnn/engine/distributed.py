"""The collectives of a data-parallel run (torch.distributed), as Caffe's multi-GPU solver uses them.

Caffe's P2PSync (src/caffe/parallel.cpp) broadcasts the root solver's weights at the start and
sums the gradients of all solvers before each update, dividing by the solver count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from mcnn.engine.net import LearnableBlob
from mcnn.errors import ConfigError


def broadcast_weights(blobs: Sequence[LearnableBlob]) -> None:
    """Give every process the root's weights; :class:`ConfigError` if torch.distributed is not set up."""
    import torch.distributed as dist

    if not dist.is_initialized():
        raise ConfigError("a data-parallel run needs torch.distributed to be initialised (use tools/train.py)")
    for blob in blobs:
        dist.broadcast(blob.tensor.data, src=0)


def rank_seed(seed: int, rank: int) -> int:
    """The random seed of process ``rank``: ``random_seed + rank``, as Caffe's Solver::Init seeds each
    solver (src/caffe/solver.cpp), so the processes draw different dropout masks. Data crops and
    mirrors do not use it: they follow from the record's stream position (:mod:`mcnn.engine.data`)."""
    return seed + rank


def all_finite(loss: float, world: int) -> bool:
    """Whether ``loss`` is finite on every one of the ``world`` processes."""
    finite = math.isfinite(loss)
    if world > 1:
        import torch.distributed as dist

        flag = torch.tensor([0 if finite else 1], dtype=torch.int64)
        dist.all_reduce(flag)
        finite = int(flag) == 0
    return finite


def average_gradients(blobs: Sequence[LearnableBlob], world: int) -> None:
    """Replace each blob's gradient by its mean over the ``world`` processes (one flat all-reduce)."""
    if world <= 1:
        return
    import torch.distributed as dist

    grads = [b.tensor.grad if b.tensor.grad is not None else torch.zeros_like(b.tensor) for b in blobs]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for blob, g in zip(blobs, grads, strict=True):
        n = g.numel()
        blob.tensor.grad = flat[offset:offset + n].view_as(blob.tensor).clone()
        offset += n
