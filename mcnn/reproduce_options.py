"""The options of a reproduction run (the flags of ``tools/reproduce.py``) and their checks.

Kept apart from :mod:`mcnn.reproduce` so the job-array launcher (:mod:`mcnn.cluster`) and the
tool can build and check a run's options without the harness itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mcnn.errors import ConfigError
from mcnn.nets import list_nets
from mcnn.training import ENGINES, check_tensorboard

#: The options a run folder's results were trained with (``runs/<arch>/options.json``).
RUN_OPTIONS = "options.json"


@dataclass
class ReproduceOptions:
    """Options of one reproduction run (the flags of ``tools/reproduce.py``)."""

    dataset: str
    raw: Path | None
    out: Path
    arch: str = "mcnn"
    repeats: int = 50
    epochs: float = 18.0
    engine: str = "torch"
    gpu: int | None = None
    shard: tuple[int, int] = (0, 1)
    seed: int = 0
    protocol: str | None = None
    augment: str = "none"
    batch: int | None = None
    base_lr: float | None = None
    step_epochs: float | None = None
    net_options: dict[str, object] = field(default_factory=dict)
    dose: bool = True
    profiling: bool = True
    workers: int = 2
    prep_workers: int | None = None
    quiet: bool = False
    #: A dataset data_prep already prepared (instead of ``raw``): its splits are trained as they are.
    data: Path | None = None
    #: Classes whose probabilities the screen's dose-response fits use (default: all but the controls').
    dose_classes: tuple[str, ...] = ()
    #: Your own screen: also write the profiles as CSV.
    profiles_csv: bool = False
    #: Discard the results of a run with other options in ``out`` (and the data's, see prepare) and start over.
    force: bool = False
    #: A folder for TensorBoard event files of each split's training, in ``<dataset>/<arch>/<split>`` (torch only).
    tensorboard: Path | None = None

    def result_options(self) -> dict[str, object]:
        """The options that shape a result: a re-run into the same folder must use the same (or ``--force``)."""
        source = self.data if self.data is not None else self.raw
        return {"dataset": self.dataset, "arch": self.arch, "source": str(Path(source).resolve()) if source else None,
                "protocol": self.protocol, "seed": self.seed, "augment": self.augment, "epochs": self.epochs,
                "batch": self.batch, "base_lr": self.base_lr, "step_epochs": self.step_epochs,
                "engine": self.engine, "net_options": {k: list(v) if isinstance(v, tuple) else v
                                                       for k, v in sorted(self.net_options.items())}}

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the flag of an option the run cannot use."""
        if (self.raw is None) == (self.data is None):
            raise ConfigError("give either --raw (a download to prepare) or --data (a prepared dataset)"
                              if self.raw is None else "--raw and --data exclude each other")
        if self.arch not in list_nets():
            raise ConfigError(f"--arch {self.arch!r}: choose from {', '.join(list_nets())}")
        if self.net_options and self.arch != "mcnn":
            raise ConfigError("M-CNN options (--scales, --widths, ...) only apply to --arch mcnn")
        i, n = self.shard
        if n < 1 or not 0 <= i < n:
            raise ConfigError(f"--shard {i}/{n}: need 0 <= i < N")
        if self.repeats < 1:
            raise ConfigError(f"--repeats must be at least 1, got {self.repeats}")
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be torch or caffe, got {self.engine!r}")
        if self.tensorboard is not None:
            check_tensorboard(self.engine)


def parse_shard(text: str) -> tuple[int, int]:
    """``i/N`` -> (i, N)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match:
        raise ConfigError(f"--shard {text!r}: expected i/N, e.g. 0/4")
    return int(match.group(1)), int(match.group(2))
