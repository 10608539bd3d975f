"""The options and result of a training run, and the forward pass its options ask for.

Kept apart from :mod:`mcnn.engine.trainer` (which re-exports :class:`TrainOptions` and
:class:`TrainResult`) so the loop itself stays one readable module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mcnn.engine.dashboard import TrainObserver
from mcnn.engine.net import Net


@dataclass
class TrainOptions:
    """How to run a solver (the ``caffe train`` flags and the engine's own)."""

    weights: list[str] = field(default_factory=list)
    snapshot: str | None = None
    iterations: int | None = None
    device: str = "cpu"
    workers: int = 0
    sigint_effect: str = "stop"
    sighup_effect: str = "snapshot"
    progress: bool = False
    channels_last: bool = False
    bf16: bool = False
    compile: bool = False
    rank: int = 0
    world: int = 1
    tf32: bool = False  # TF32 CUDA maths (faster, not Caffe-exact)
    level: int | None = None  # caffe train -level (None: the solver's and net's own NetState level)
    stages: list[str] = field(default_factory=list)  # caffe train -stage
    #: Called once per solve() in the root process for the observer of the run (mcnn.engine.dashboard).
    observer: Callable[[], TrainObserver] | None = None


@dataclass
class TrainResult:
    """What a finished (or stopped) run left behind."""

    iterations: int
    snapshots: list[Path]
    stopped_early: bool
    last_test: dict[str, float]


def make_forward(options: TrainOptions, device: torch.device
                 ) -> Callable[[Net, dict[str, torch.Tensor], bool], dict[str, torch.Tensor]]:
    """``forward(net, feeds, train) -> blobs`` with the options' memory format, bf16 autocast and compile."""
    def forward(net: Net, feeds: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        if options.channels_last:
            feeds = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                     for k, v in feeds.items()}
        if options.bf16 and device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                blobs = net.forward(feeds, train)
            return {k: v.float() if v.is_floating_point() else v for k, v in blobs.items()}
        return net.forward(feeds, train)

    if options.compile:
        return torch.compile(forward, dynamic=False)
    return forward
