"""A short training of the tiny M-CNN in this process, leaving its glog log (and TensorBoard events)."""

from __future__ import annotations

from pathlib import Path

from mcnn.engine.dashboard import tensorboard_observer
from mcnn.engine.glog import GlogWriter
from mcnn.engine.trainer import Trainer, TrainOptions
from tests.support.tiny import TinySetup, make_setup


def short_training(root: Path, tensorboard: Path | None = None) -> tuple[TinySetup, Path]:
    """Train the tiny M-CNN for one epoch (6 iterations: display every 2, tests at 0 and 6) with the engine.

    Returns the setup and the glog log file (``root/train.log``); ``tensorboard``: a folder for event files.
    """
    setup = make_setup(root, max_epochs=1)
    log = root / "train.log"
    options = TrainOptions(observer=None if tensorboard is None else tensorboard_observer(tensorboard))
    with open(log, "w", encoding="utf-8") as stream:
        Trainer(setup.solver, options, GlogWriter(stream=stream)).solve()
    return setup, log
