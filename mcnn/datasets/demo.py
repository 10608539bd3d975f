"""The preset of the demo screen: the phenotype simulator's ``demo`` screen, read as your own screen.

The simulator (``tools/simulate.py``) writes its screens in the generic input format (a LoadData
image table and a plate map), and ``prepare.py screen`` reads them like any user's screen. Its
classes, channels and image size are known in advance, so this class declares them once for the
``demo`` net and solver preset (``prototxt/demo/``, ``solvers/demo/``); it reads nothing itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from mcnn.datasets.screen import Screen
from mcnn.setsizes import cv_sizes


class DemoScreen(Screen):
    """The simulator's demo screen (128 x 128 fields, 2 channels, 4 classes of 60 fields each)."""

    name = "demo"
    title = "Simulated phenotype screen (mcnn.simulate), read as your own screen"
    default_channels = ("nuclei", "cytoplasm")
    dtypes = ("uint16",)
    protocols = ("cv",)
    preset_title = "Simulated phenotype screen (mcnn's simulator): tiny, for the CPU demo and tests"
    class_names = ("control", "translocation", "spots", "elongation")
    net_size = (128, 128)
    batch = 16
    set_sizes = cv_sizes([60, 60, 60, 60], 0.1)
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "plate-dmso", "stat": "meanstd"}
