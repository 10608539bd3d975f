"""Datasets stored as one folder per class (the IICBU-2008 / WND-CHARM HeLa and CHO sets).

``RAW/<top>/<class>/<image>.tif``: ``<top>`` is the folder the tarball extracts to (``hela``,
``cho``); RAW may also be that folder itself. Every TIFF (``.tif``/``.TIF``/``.tiff``) is one
single-channel 16-bit image; the class is the folder name. The paper uses all images.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from mcnn.datasets.base import Choice, Dataset, Field, Labelled, Plan, Problems
from mcnn.errors import DatasetLayoutError
from mcnn.setsizes import cv_sizes

SUFFIXES = (".tif", ".tiff")
COLUMNS: tuple[str, ...] = ()


class ClassFolders(Dataset):
    """Base of HeLa and CHO: classes from folder names, all images, one channel."""

    #: Folder the tarball extracts to.
    top: ClassVar[str] = ""
    #: (folder name, documented image count) per class, in label order.
    classes_doc: ClassVar[tuple[tuple[str, int], ...]] = ()
    default_channels = ("protein",)
    batch = 32
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
        """Every image of every class folder under ``raw``, labelled by its folder."""
        self.check_protocol(protocol)
        root = self.root(raw)
        prefix = root.relative_to(raw).as_posix() if root != raw else ""
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _images(p))
        if len(class_dirs) < 2:
            raise DatasetLayoutError(f"{root}: {len(class_dirs)} class folders with .tif images, expected "
                                     f"{len(self.classes_doc)} ({', '.join(c for c, _ in self.classes_doc)})")
        classes = tuple(p.name for p in class_dirs)
        labelled = []
        for label, folder in enumerate(class_dirs):
            for image in _images(folder):
                rel = f"{prefix}/{folder.name}/{image}" if prefix else f"{folder.name}/{image}"
                name = f"{folder.name}/{Path(image).stem}"
                labelled.append(Labelled(Field(name, (rel,), {}), label))
        plan = Plan(classes=classes, labelled=labelled, columns=COLUMNS)
        documented = tuple(c for c, _ in self.classes_doc)
        if classes != documented:
            plan.choices.append(Choice(f"{self.name} class folders",
                                       f"found {', '.join(classes)}; documented {', '.join(documented)}"))
        plan.counts = {"per_class_found": {c: sum(1 for x in labelled if x.label == i) for i, c in enumerate(classes)},
                       "per_class_documented": dict(self.classes_doc)}
        return plan


def _images(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)


class HeLa(ClassFolders):
    """The 2D HeLa set of IICBU-2008 (https://ome.grc.nia.nih.gov/iicbu2008/): 10 patterns, 16-bit TIFFs."""

    name = "hela"
    title = "HeLa 2D (Murphy lab / IICBU-2008), 10 subcellular patterns"
    top = "hela"
    classes_doc = (("actin", 98), ("dna", 87), ("endosome", 91), ("er", 86), ("golgia", 87), ("golgpp", 85),
                   ("lysosome", 84), ("microtubules", 91), ("mitochondria", 73), ("nucleolus", 80))
    class_names = tuple(c for c, _ in classes_doc)
    set_sizes = cv_sizes([n for _, n in classes_doc], 0.1)
    notes = ("per-class counts (sum 862) are unsourced",)
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
    """The CHO set of IICBU-2008 (https://ome.grc.nia.nih.gov/iicbu2008/; Boland et al. 1998): 5 patterns."""

    name = "cho"
    title = "CHO (Boland et al. 1998), 5 subcellular patterns"
    top = "cho"
    classes_doc = (("giantin", 77), ("hoechst", 69), ("lamp2", 97), ("nop4", 33), ("tubulin", 64))
    class_names = tuple(c for c, _ in classes_doc)
    set_sizes = cv_sizes([n for _, n in classes_doc], 0.1)
    notes = ("image size 512x382 and class folder names are uncertain in the sources",)
    real_size = (382, 512)
    small_size = (72, 96)
    download_hint = "http://ome.grc.nia.nih.gov/iicbu2008/cho.tar.gz, unpacked in RAW"
    uncertain = (
        Choice("CHO class folders, image size and counts", "the folders found are the classes; the size is that of "
               "the first image (documented 512 x 382, UNCERTAIN); counts from the folders"),
        Choice("HeLa/CHO 16 -> 8 bit (not stated in the paper)", "per image, the 0.1 and 99.9 percentiles map to 0 "
               "and 255", "--norm-scope none --range 0,4095 for one fixed map"),
    )
