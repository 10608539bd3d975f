"""The paper's eight datasets and your own screen, read from their layouts.

One module per dataset parses the publisher's layout (archive folders, file-name patterns, channel
files, plate maps, metadata CSVs) and applies the paper's class rules and protocols; its class
attributes are the one source of the dataset's facts (title, channels, geometry, classes, set
sizes), from which :mod:`mcnn.nets.presets` derives the net presets. ``screen`` reads a user's
plates (a LoadData image table or OME-Zarr plates, and a plate map): the phenotype simulator
writes its screens in that format, and :class:`~mcnn.datasets.demo.DemoScreen` declares the preset
of its demo screen. This package only reads: the synthetic look-alikes are written by
:mod:`mcnn.simulate.lookalikes`.
:func:`get_dataset` returns an instance.
"""

from __future__ import annotations

from collections.abc import Mapping

from mcnn.datasets.base import Dataset, Field, Labelled, Plan, Problems
from mcnn.datasets.bbbc013 import BBBC013
from mcnn.datasets.bbbc014 import BBBC014
from mcnn.datasets.bbbc015 import BBBC015
from mcnn.datasets.bbbc016 import BBBC016
from mcnn.datasets.bbbc021 import BBBC021
from mcnn.datasets.classfolders import CHO, HeLa
from mcnn.datasets.demo import DemoScreen
from mcnn.datasets.hpa import HPA
from mcnn.datasets.screen import Screen
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError

DATASETS: dict[str, type[Dataset]] = {
    cls.name: cls for cls in (BBBC013, BBBC014, BBBC015, BBBC016, BBBC021, HeLa, CHO, HPA, Screen)
}
#: The dataset classes that declare a net/solver preset: every registered one with fixed classes
#: (your own screen has none), then the simulator's demo screen.
PRESET_DATASETS: tuple[type[Dataset], ...] = (*(c for c in DATASETS.values() if c.class_names), DemoScreen)
#: The paper's datasets, in the order of its Table 1 (``screen`` is ours).
PAPER_DATASETS = ("bbbc013", "bbbc014", "bbbc015", "bbbc016", "hela", "cho", "hpa", "bbbc021")


def get_dataset(name: str, options: Mapping[str, str] | None = None) -> Dataset:
    """An instance of the dataset called ``name`` with its ``--option`` values; ConfigError if unknown."""
    try:
        cls = DATASETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}") from None
    return cls(options)


__all__ = ["DATASETS", "PAPER_DATASETS", "PRESET_DATASETS",
           "BadInputError", "Dataset", "DatasetLayoutError", "Field", "Labelled",
           "Plan", "Problems", "get_dataset"]
