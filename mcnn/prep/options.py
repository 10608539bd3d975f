"""What a :func:`mcnn.prep.prepare` run is asked to do and what it reports back, and its progress bars."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcnn.prep.decode import default_workers


@dataclass
class PrepOptions:
    """Options of :func:`mcnn.prep.prepare` (the command-line flags of ``data_prep/prepare.py``).

    ``None`` intensity fields keep the dataset's default; ``percentiles`` and ``range`` are
    (low, high) pairs, ``resize`` is (height, width) in pixels; ``dataset_options`` are the
    ``--option NAME=VALUE`` settings of the dataset module.
    """

    protocol: str | None = None
    repeats: int = 50
    seed: int = 0
    augment: str = "none"
    test_fraction: float = 0.1
    only: tuple[str, ...] = ()
    scope: str | None = None
    stat: str | None = None
    transform: str | None = None
    percentiles: tuple[float, float] | None = None
    range: tuple[float, float] | None = None
    resize: tuple[int, int] | None = None
    dataset_options: dict[str, str] = field(default_factory=dict)
    workers: int = field(default_factory=default_workers)
    quiet: bool = False
    skip_bad: bool = False
    keep_cache: bool = False
    force: bool = False


@dataclass
class PrepResult:
    """What a :func:`mcnn.prep.prepare` run did: the output folder, the split names on disk, the
    units built and skipped (``repeat_000/train``, ``dose``, ...) and the bad inputs (file, problem)."""

    out: Path
    splits: list[str]
    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)


class Progress:
    """tqdm bars on stderr, only when stderr is a terminal and not ``--quiet``."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    def bar(self, total: int, desc: str) -> Any:
        """A context-managed bar over ``total`` images (a disabled one when progress is off)."""
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not self.enabled,
                    dynamic_ncols=True, smoothing=0.1)

    def log(self, message: str) -> None:
        """Print one line above the bars (nothing when progress is off)."""
        if self.enabled:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
