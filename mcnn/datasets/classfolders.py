"""Datasets stored as one folder per class (the IICBU-2008 / WND-CHARM HeLa and CHO sets).

``RAW/<top>/<class>/<image>.tif``: ``<top>`` is the folder the tarball extracts to (``hela``,
``cho``); RAW may also be that folder itself. Every TIFF (``.tif``/``.TIF``/``.tiff``) is one
single-channel 16-bit image; the class is the folder name. The paper uses all images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mcnn.datasets.base import Choice, Dataset, Field, Labelled, Plan, Problems, rng_for
from mcnn.datasets.imageio import write_tiff
from mcnn.errors import DatasetLayoutError
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import render, to_dtype

SUFFIXES = (".tif", ".tiff")
COLUMNS: tuple[str, ...] = ()


class ClassFolders(Dataset):
    """Base of HeLa and CHO: classes from folder names, all images, one channel."""

    top: ClassVar[str] = ""
    #: (folder name, look-alike pattern, documented image count) per class.
    classes_doc: ClassVar[tuple[tuple[str, str, int], ...]] = ()
    default_channels = ("protein",)
    dtypes = ("uint16",)
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "image", "stat": "percentile"}

    def root(self, raw: Path) -> Path:
        """The folder holding the class folders: ``RAW/<top>`` or RAW itself."""
        inner = raw / self.top
        if inner.is_dir():
            return inner
        if raw.is_dir() and any(p.is_dir() and _images(p) for p in raw.iterdir()):
            return raw
        raise DatasetLayoutError(f"{inner}: folder missing, expected the unpacked {self.top}.tar.gz with one "
                                 f"folder of .tif images per class ({self.download_hint})")

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        root = self.root(raw)
        prefix = root.relative_to(raw).as_posix() if root != raw else ""
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _images(p))
        if len(class_dirs) < 2:
            raise DatasetLayoutError(f"{root}: {len(class_dirs)} class folders with .tif images, expected "
                                     f"{len(self.classes_doc)} ({', '.join(c for c, _, _ in self.classes_doc)})")
        classes = tuple(p.name for p in class_dirs)
        labelled = []
        for label, folder in enumerate(class_dirs):
            for image in _images(folder):
                rel = f"{prefix}/{folder.name}/{image}" if prefix else f"{folder.name}/{image}"
                name = f"{folder.name}/{Path(image).stem}"
                labelled.append(Labelled(Field(name, (rel,), {}), label))
        plan = Plan(classes=classes, labelled=labelled, columns=COLUMNS)
        documented = tuple(c for c, _, _ in self.classes_doc)
        if classes != documented:
            plan.choices.append(Choice(f"{self.name} class folders",
                                       f"found {', '.join(classes)}; documented {', '.join(documented)}"))
        plan.counts = {"per_class_found": {c: sum(1 for x in labelled if x.label == i) for i, c in enumerate(classes)},
                       "per_class_documented": {c: n for c, _, n in self.classes_doc}}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        height, width = self.image_size(size)
        count = 0
        for folder, pattern, n in self.classes_doc:
            look = looks.pattern_look(pattern, cells=1.3, spots=10, spread=0.4)
            for i in range(1, n + 1):
                rng = rng_for(seed, self.name, folder, i)
                plane = render(rng, height, width, look)["protein"]
                write_tiff(out / self.top / folder / self.file_name(folder, i), to_dtype(plane, np.uint16, 2500, 180))
                count += 1
        return {"images": count, "height": height, "width": width, "folder": self.top}

    def file_name(self, folder: str, index: int) -> str:
        """Look-alike file name of image ``index`` of class ``folder`` (the real names are not documented)."""
        return f"{folder}_{index:03d}.tif"


def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


class HeLa(ClassFolders):
    name = "hela"
    title = "HeLa 2D (Murphy lab / IICBU-2008), 10 subcellular patterns"
    top = "hela"
    classes_doc = (("actin", "actin", 98), ("dna", "dna", 87), ("endosome", "endosome", 91), ("er", "er", 86),
                   ("golgia", "golgi_giantin", 87), ("golgpp", "golgi_gpp130", 85), ("lysosome", "lysosome", 84),
                   ("microtubules", "microtubules", 91), ("mitochondria", "mitochondria", 73),
                   ("nucleolus", "nucleolus", 80))
    real_size = (382, 382)
    small_size = (64, 64)
    download_hint = "https://ome.grc.nia.nih.gov/iicbu2008/hela.tar.gz, unpacked in RAW"
    uncertain = (
        Choice("HeLa per-class counts", "taken from the class folders (the documented 98, 87, 91, 86, 87, 85, 84, 91, "
               "73, 80 are unsourced)"),
        Choice("HeLa/CHO 16 -> 8 bit (not stated in the paper)", "per image, the 0.1 and 99.9 percentiles map to 0 "
               "and 255", "--norm-scope none --range 0,4095 for one fixed map"),
    )


class CHO(ClassFolders):
    name = "cho"
    title = "CHO (Boland et al. 1998), 5 subcellular patterns"
    top = "cho"
    classes_doc = (("giantin", "golgi_giantin", 77), ("hoechst", "dna", 69), ("lamp2", "lysosome", 97),
                   ("nop4", "nucleolus", 33), ("tubulin", "microtubules", 64))
    real_size = (382, 512)
    small_size = (72, 96)
    download_hint = "http://ome.grc.nia.nih.gov/iicbu2008/cho.tar.gz, unpacked in RAW"
    uncertain = (
        Choice("CHO class folders, image size and counts", "the folders found are the classes; the size is that of "
               "the first image (documented 512 x 382, UNCERTAIN); counts from the folders"),
        Choice("HeLa/CHO 16 -> 8 bit (not stated in the paper)", "per image, the 0.1 and 99.9 percentiles map to 0 "
               "and 255", "--norm-scope none --range 0,4095 for one fixed map"),
    )
