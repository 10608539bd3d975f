"""The look-alike writers, one per dataset, looked up by dataset name.

A writer is ``fn(ds, out, height, width, seed=0, size=..., **kwargs) -> summary``: it writes a
synthetic copy of the dataset's raw download (the real layout, names, formats and bit depths) into
``out`` and returns a summary (``images`` written, ``height``, ``width``). :func:`synthesize` picks
the image size and calls the writer. The simulated screen has no look-alike: the simulator writes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mcnn.datasets import get_dataset
from mcnn.datasets.base import Dataset
from mcnn.errors import ConfigError
from mcnn.simulate.lookalikes import bbbc013, bbbc014, bbbc015, bbbc016, bbbc021, classfolders, hpa

Writer = Callable[..., dict[str, Any]]
#: Look-alike sizes: ``small`` (tiny images for tests and demos) or ``real`` (the download's size).
SIZES = ("small", "real")

#: Dataset name -> look-alike writer, in the order of :data:`mcnn.datasets.DATASETS`.
LOOKALIKES: dict[str, Writer] = {
    "bbbc013": bbbc013.synthesize,
    "bbbc014": bbbc014.synthesize,
    "bbbc015": bbbc015.synthesize,
    "bbbc016": bbbc016.synthesize,
    "bbbc021": bbbc021.synthesize,
    "hela": classfolders.synthesize,
    "cho": classfolders.synthesize,
    "hpa": hpa.synthesize,
}


def image_size(ds: Dataset, size: str) -> tuple[int, int]:
    """(height, width) in pixels of the look-alike images of ``ds`` for ``--size small|real``."""
    if size not in SIZES:
        raise ConfigError(f"--size {size}: choose from {', '.join(SIZES)}")
    if size == "real":
        if ds.real_size is None:
            raise ConfigError(f"{ds.name}: the real image size is unknown")
        return ds.real_size
    return ds.small_size


def synthesize(name: str, out: Path, size: str = "small", seed: int = 0, options: Mapping[str, str] | None = None,
               **kwargs: Any) -> dict[str, Any]:
    """Write the look-alike of dataset ``name`` (with its ``--option`` values) into ``out``; returns the summary.

    ``kwargs`` go to the writer (bbbc021: ``metadata``, ``plates``, ``fields_per_plate``).
    """
    try:
        writer = LOOKALIKES[name.lower()]
    except KeyError:
        raise ConfigError(f"no look-alike of {name!r}; choose from {', '.join(LOOKALIKES)}") from None
    ds = get_dataset(name, options)
    height, width = image_size(ds, size)
    return writer(ds, Path(out), height, width, seed, size=size, **kwargs)
