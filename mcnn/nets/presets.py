"""Dataset presets: image geometry, classes and set sizes of the paper's eight datasets.

Sources are ``docs/datasets.md``-style facts about the public downloads and the paper's
protocols; every value the sources leave open is marked in ``notes`` and can be
overridden on the command line. The set sizes only feed the committed solvers (iterations
per epoch); ``make_solver.py`` recomputes them from a prepared dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcnn.errors import ConfigError
from mcnn.nets.baselines import ALEXNET_CROP, GOOGLENET_CROP
from mcnn.nets.spec import DataSpec
from mcnn.setsizes import cv_sizes

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
        return len(self.class_names)



def default_crop(arch: str, height: int, width: int) -> int:
    """Default crop: none for the M-CNN (whole fields); the reference crop for the baselines
    when the images are larger (AlexNet's fc6 on a whole field would exceed protobuf's 2 GB)."""
    reference = {"alexnet": ALEXNET_CROP, "googlenet": GOOGLENET_CROP}.get(arch, 0)
    return reference if reference and min(height, width) > reference else 0


def _cv(counts: list[int]) -> tuple[int, int]:
    return cv_sizes(counts, 0.1)


_TWO_CLASS = ("neutral", "positive")

_PRESETS = [
    Preset(
        "bbbc013", "BBBC013 FKHR-GFP translocation (U2OS; wortmannin, LY294002)",
        ("GFP", "DNA"), 640, 640, _TWO_CLASS, *_cv([16, 16]), batch=16, protocol="cv",
        notes=("16 images per class (controls + lowest/highest concentration) derived from the plate map",),
    ),
    Preset(
        "bbbc014", "BBBC014 NF-kB translocation (MCF7, A549; TNF-alpha)",
        ("DAPI", "FITC"), 1024, 1360, _TWO_CLASS, *_cv([16, 16]), batch=8, protocol="cv",
        notes=("16 images per class (two lowest/highest concentrations x 8 rows), derived",
               "channel order Channel 1/Channel 2 is uncertain in the sources"),
    ),
    Preset(
        "bbbc015", "BBBC015 beta2-AR/arrestin-GFP Transfluor (U2OS; isoproterenol)",
        ("GFP", "crimson"), 768, 1000, _TWO_CLASS, *_cv([6, 6]), batch=8, protocol="cv",
        notes=("6 images per class (2 lowest/highest concentrations x 3 rows, one field per well), derived",),
    ),
    Preset(
        "bbbc016", "BBBC016 orphan-GPCR Transfluor (U2OS; undisclosed compound)",
        ("GFP", "DNA"), 512, 512, _TWO_CLASS, *_cv([4, 4]), batch=16, protocol="cv",
        notes=("4 images per class (2 lowest/highest concentrations x 2 replicates, one field per well), derived",),
    ),
    Preset(
        "bbbc021", "BBBC021 MCF-7 compound profiling, 12 mechanisms of action",
        ("DNA", "tubulin", "actin"), 1024, 1280,
        ("Actin disruptors", "Aurora kinase inhibitors", "Cholesterol-lowering", "DNA damage",
         "DNA replication", "Eg5 inhibitors", "Epithelial", "Kinase inhibitors",
         "Microtubule destabilizers", "Microtubule stabilizers", "Protein degradation",
         "Protein synthesis"),
        # 103 annotated treatments: 95 x 12 + 7 x 8 = 1196 fields, plus the 12 fields of the taxol
        # 0.3 uM dilution-series wells = 1208; one fold holds out one of 38 compounds (31.8 fields
        # on average, 8 to 84).
        1176, 32, batch=8, protocol="loco",
        notes=("fold sizes are the average leave-one-compound-out fold of the 1208 annotated fields; "
               "make_solver.py takes the exact sizes of a prepared fold",),
    ),
    Preset(
        "hela", "HeLa 2D (Murphy lab / IICBU-2008), 10 subcellular patterns",
        ("protein",), 382, 382,
        ("actin", "dna", "endosome", "er", "golgia", "golgpp", "lysosome", "microtubules",
         "mitochondria", "nucleolus"),
        *_cv([98, 87, 91, 86, 87, 85, 84, 91, 73, 80]), batch=32, protocol="cv",
        notes=("per-class counts (sum 862) are unsourced",),
    ),
    Preset(
        "cho", "CHO (Boland et al. 1998), 5 subcellular patterns",
        ("protein",), 382, 512, ("giantin", "hoechst", "lamp2", "nop4", "tubulin"),
        *_cv([77, 69, 97, 33, 64]), batch=32, protocol="cv",
        notes=("image size 512x382 and class folder names are uncertain in the sources",),
    ),
    Preset(
        "hpa", "Human Protein Atlas (A-431), 13 single-location classes",
        ("protein", "nucleus", "microtubules", "ER"), 1024, 1024,
        ("Actin filaments", "Centrosome", "Cytoplasm", "ER", "Golgi", "Intermediate filaments",
         "Microtubules", "Mitochondria", "Nuclei", "Nuclei but not nucleoli", "Nucleoli",
         "Plasma membrane", "Vesicles"),
        *_cv([100] * 13), batch=8, protocol="cv",
        notes=("image size is our choice (fields resized to 1024x1024); original size unknown",
               "class sizes unknown: the solver assumes 100 images per class until data_prep counts them"),
    ),
    Preset(
        "demo", "Simulated phenotype screen (mcnn's simulator): tiny, for the CPU demo and tests",
        ("nuclei", "cytoplasm"), 128, 128, ("control", "translocation", "spots", "elongation"),
        *_cv([60, 60, 60, 60]), batch=16, protocol="cv",
    ),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}
#: The eight datasets of the paper's Table 1, in its order.
PAPER_DATASETS = ("bbbc013", "bbbc014", "bbbc015", "bbbc016", "hela", "cho", "hpa", "bbbc021")


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
