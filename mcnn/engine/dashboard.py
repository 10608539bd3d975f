"""Training dashboards: what the trainer reports to an observer, and TensorBoard event files of it.

The trainer (:class:`mcnn.engine.trainer.Trainer`) calls a :class:`TrainObserver` at each display
iteration (after the glog lines of that iteration) and after each test pass; ``TrainOptions.observer``
is a factory the root process calls once per :meth:`~mcnn.engine.trainer.Trainer.solve`, so that
options stay picklable for data-parallel runs. :class:`TensorBoardObserver` writes, with
``torch.utils.tensorboard.SummaryWriter`` (the ``dashboards`` extra), the scalars

- ``train/loss`` (the iteration's net loss, averaged over ``iter_size`` passes), ``train/smoothed_loss``
  (over ``average_loss`` iterations, Caffe's ``Iteration N (...), loss = X``), ``train/lr``;
- ``train/outputs/<name>``: each train net output (Caffe's ``Train net output #k: <name>``);
- ``test/<net>/<name>``: each output of test net ``<net>`` (0, 1, ...) averaged over ``test_iter`` batches;

(an output of more than one value gets ``/<k>`` appended) and, once, the first ``max_images`` fields of
each image input of the first displayed batch as ``inputs/<blob>/<k>`` (see :func:`input_images`).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from mcnn.errors import ConfigError

if TYPE_CHECKING:
    import torch

#: The one line a missing extra gives.
MISSING_EXTRA = "--tensorboard needs the 'dashboards' extra: pip install 'mcnn[dashboards]'"


class TrainObserver:
    """What a training run reports, iteration by iteration; the methods do nothing here (subclass them)."""

    def train(self, iteration: int, loss: float, smoothed_loss: float, rate: float,
              outputs: Mapping[str, torch.Tensor], inputs: Mapping[str, torch.Tensor]) -> None:
        """A display iteration: ``loss`` (this iteration's), ``smoothed_loss``, learning ``rate``, the train net
        ``outputs`` by blob name and the ``inputs`` of its batch (the Data layers' first tops, N x C x H x W)."""

    def test(self, iteration: int, net: int, outputs: Mapping[str, torch.Tensor]) -> None:
        """Test net number ``net`` at ``iteration``: its ``outputs`` averaged over its ``test_iter`` batches."""

    def close(self) -> None:
        """The run is over (or stopped by an error): write out what is pending."""


def require_tensorboard() -> None:
    """:class:`ConfigError` (one line, naming the extra) when TensorBoard is not installed."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(MISSING_EXTRA)


def input_images(batch: np.ndarray, count: int = 4) -> np.ndarray:
    """The first ``count`` fields of an N x C x H x W batch as N' x 1 x H x (C*W + 2*(C-1)) grey images in [0, 1].

    The channels of a field stand side by side, each stretched over its own 0.5-99.5 percentile range
    (a channel's meaning and order differ by dataset, so no colour is implied); 2 pixels of white apart.
    """
    fields = np.asarray(batch, dtype=np.float64)[:count]
    n, c, h, w = fields.shape
    gap = 2
    out = np.ones((n, 1, h, c * w + gap * (c - 1)))
    for i in range(n):
        for j in range(c):
            plane = fields[i, j]
            lo, hi = np.percentile(plane, (0.5, 99.5))
            scaled = (plane - lo) / (hi - lo) if hi > lo else np.zeros_like(plane)
            out[i, 0, :, j * (w + gap):j * (w + gap) + w] = np.clip(scaled, 0.0, 1.0)
    return out


def _values(name: str, value: torch.Tensor) -> list[tuple[str, float]]:
    """(tag suffix, value) of each element of an output blob: ``name``, or ``name/k`` for several."""
    flat = value.detach().float().reshape(-1).cpu().tolist()
    return [(name, flat[0])] if len(flat) == 1 else [(f"{name}/{k}", v) for k, v in enumerate(flat)]


class TensorBoardObserver(TrainObserver):
    """Writes a run's scalars and sample inputs as TensorBoard event files into ``folder`` (the module docstring).

    A resumed run writing into the same folder adds a new event file; TensorBoard shows both as one run.
    """

    def __init__(self, folder: str | os.PathLike[str], max_images: int = 4):
        require_tensorboard()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(MISSING_EXTRA) from None
        self.folder = str(folder)
        self.max_images = max_images
        self.writer = SummaryWriter(log_dir=self.folder)
        self._images_written = False

    def train(self, iteration: int, loss: float, smoothed_loss: float, rate: float,
              outputs: Mapping[str, torch.Tensor], inputs: Mapping[str, torch.Tensor]) -> None:
        """Write the ``train/`` scalars of a display iteration (and the sample inputs the first time)."""
        self.writer.add_scalar("train/loss", loss, iteration)
        self.writer.add_scalar("train/smoothed_loss", smoothed_loss, iteration)
        self.writer.add_scalar("train/lr", rate, iteration)
        for name, value in outputs.items():
            for tag, v in _values(name, value):
                self.writer.add_scalar(f"train/outputs/{tag}", v, iteration)
        if not self._images_written and self.max_images > 0:
            for name, batch in inputs.items():
                if batch.dim() == 4:
                    images = input_images(batch.detach().float().cpu().numpy(), self.max_images)
                    for k, image in enumerate(images):  # one card per field: a grid would hide where fields part
                        self.writer.add_image(f"inputs/{name}/{k}", image, iteration, dataformats="CHW")
            self._images_written = True

    def test(self, iteration: int, net: int, outputs: Mapping[str, torch.Tensor]) -> None:
        """Write ``test/<net>/<output>`` for every output of the test pass."""
        for name, value in outputs.items():
            for tag, v in _values(name, value):
                self.writer.add_scalar(f"test/{net}/{tag}", v, iteration)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


def tensorboard_observer(folder: str | os.PathLike[str], max_images: int = 4) -> Callable[[], TrainObserver]:
    """The ``TrainOptions.observer`` factory of a :class:`TensorBoardObserver` writing into ``folder``.

    Checks at once that TensorBoard is installed (:class:`ConfigError` otherwise), before any training starts.
    """
    require_tensorboard()
    return functools.partial(TensorBoardObserver, os.fspath(folder), max_images)
