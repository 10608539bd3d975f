"""Dataset presets: image geometry, classes and set sizes of the paper's eight datasets and the demo.

The facts are declared once, on the dataset classes of :mod:`mcnn.datasets` (title, channels,
geometry, class names, batch, set sizes, protocol, notes); a preset is derived from each
registered dataset. Every value the public sources leave open is marked in ``notes`` and can be
overridden on the command line. The set sizes only feed the committed solvers (iterations per
epoch); ``make_solver.py`` recomputes them from a prepared dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcnn.datasets import PRESET_DATASETS, Dataset
from mcnn.errors import ConfigError
from mcnn.nets.registry import arch_info
from mcnn.nets.spec import DataSpec

#: uint8 pixels are scaled to [0, 1] by default (1/256 is exact in float32 and prints exactly).
DEFAULT_SCALE = 0.00390625


@dataclass(frozen=True)
class Preset:
    """One dataset's defaults.

    ``height``/``width`` in pixels of the images stored in the LMDB; ``train_size`` and
    ``test_size`` are images per split (one cross-validation repeat, or one BBBC021 fold).
    """

    name: str
    title: str
    channels: tuple[str, ...]
    height: int
    width: int
    class_names: tuple[str, ...]
    train_size: int
    test_size: int
    batch: int
    protocol: str
    notes: tuple[str, ...] = ()

    @property
    def classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)



def default_crop(arch: str, height: int, width: int) -> int:
    """Default crop in pixels: the architecture's registered reference crop (none for the M-CNN,
    which takes whole fields) when the ``height`` x ``width`` images are larger than it (AlexNet's
    fc6 on a whole field would exceed protobuf's 2 GB)."""
    reference = arch_info(arch).crop
    return reference if reference and min(height, width) > reference else 0


def preset_of(cls: type[Dataset]) -> Preset:
    """The preset declared by the dataset class ``cls`` (its ``preset_*`` and geometry attributes)."""
    height, width = cls.net_geometry()
    train_size, test_size = cls.set_sizes
    return Preset(cls.preset_name or cls.name, cls.preset_title or cls.title, tuple(cls.default_channels),
                  height, width, tuple(cls.class_names), train_size, test_size, batch=cls.batch,
                  protocol=cls.default_protocol, notes=tuple(cls.notes))


#: One preset per dataset class that declares one (mcnn.datasets.PRESET_DATASETS): the paper's eight
#: and ``demo``; your own screen has none, its classes come from the plate map.
PRESETS: dict[str, Preset] = {p.name: p for p in map(preset_of, PRESET_DATASETS)}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; :class:`ConfigError` listing the choices otherwise."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown --preset {name!r}; choose from {', '.join(PRESETS)}") from None


def default_sources(dataset: str) -> tuple[str, str]:
    """Train and test LMDB paths the committed nets read (relative to the checkout)."""
    return f"data/{dataset}/train_lmdb", f"data/{dataset}/test_lmdb"


def data_spec_for(preset: Preset, arch: str, **overrides: object) -> DataSpec:
    """The DataSpec of ``preset`` for ``arch``; ``overrides`` replace any DataSpec field."""
    train_source, test_source = default_sources(preset.name)
    fields: dict[str, object] = {
        "channels": len(preset.channels),
        "height": preset.height,
        "width": preset.width,
        "classes": preset.classes,
        "scale": DEFAULT_SCALE,
        "train_source": train_source,
        "test_source": test_source,
        "train_batch": preset.batch,
        "test_batch": preset.batch,
        "class_names": preset.class_names,
    }
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("crop") is None:
        fields["crop"] = default_crop(arch, int(fields["height"]), int(fields["width"]))  # type: ignore[arg-type]
    return DataSpec(**fields)  # type: ignore[arg-type]
