"""HPA: Human Protein Atlas confocal fields of A-431 cells (Li et al. 2012 re-annotation set).

Download: the data of http://murphylab.web.cmu.edu/software/2012_PLoS_ONE_Reannotation/ (the
Coelho et al. 2013 code points there). Layout read here (the file and variable names are those of
the Coelho 2013 loader; image folders and sizes are UNCERTAIN)::

    RAW/IF_atlas_5_regionfeatures_all_A431R2-2_5folds_Info.mat
        antibodyids, readlist (protein image paths), readlist_nuc, readlist_er, readlist_tub,
        readlist_mask, classlabels (1-based index into classes), classes (location names;
        multi-location classes join names with commas)
    RAW/IF_atlas_5_regionfeatures_all_A431R2-2_5folds_Info_EnsEMBL_ID.mat    optional:
        antibodyids, EnsEMBL_ID, proteinnames_uniprot2
    RAW/<...>/<field>_green.tif, _blue.tif, _red.tif, _yellow.tif   protein, nucleus, microtubules, ER

The ``readlist`` paths are absolute paths of the Murphy lab's file system
(``/share/images/HPA/images/IFconfocal/...``); they are found under RAW by dropping leading
folders until the file exists (``RAW/images/HPA/images/IFconfocal/...`` or
``RAW/IFconfocal/...`` both work). Fields listed twice (same protein image) are used once.
The paper uses proteins with a single location: 13 classes.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mcnn.datasets.base import Choice, Dataset, Field, FileIndex, Labelled, Option, Plan, Problems, rng_for
from mcnn.datasets.imageio import write_tiff
from mcnn.errors import DatasetLayoutError
from mcnn.simulate.lookalikes import looks
from mcnn.simulate.lookalikes.render import render, to_dtype

INFO = "IF_atlas_5_regionfeatures_all_A431R2-2_5folds_Info.mat"
ENSEMBL = "IF_atlas_5_regionfeatures_all_A431R2-2_5folds_Info_EnsEMBL_ID.mat"
LISTS = ("readlist", "readlist_nuc", "readlist_tub", "readlist_er")
#: The paper's 13 classes, in label order (alphabetical, as the preset).
PAPER_CLASSES = ("Actin filaments", "Centrosome", "Cytoplasm", "ER", "Golgi", "Intermediate filaments",
                 "Microtubules", "Mitochondria", "Nuclei", "Nuclei but not nucleoli", "Nucleoli", "Plasma membrane",
                 "Vesicles")
#: Spellings of the location names mapped to the paper's (lower case, spaces collapsed).
ALIASES = {
    "actin filaments": "Actin filaments", "actin": "Actin filaments", "centrosome": "Centrosome",
    "cytoplasm": "Cytoplasm", "cytosol": "Cytoplasm", "er": "ER", "endoplasmic reticulum": "ER",
    "golgi": "Golgi", "golgi apparatus": "Golgi", "intermediate filaments": "Intermediate filaments",
    "microtubules": "Microtubules", "mitochondria": "Mitochondria", "nuclei": "Nuclei", "nucleus": "Nuclei",
    "nuclei but not nucleoli": "Nuclei but not nucleoli", "nucleus but not nucleoli": "Nuclei but not nucleoli",
    "nucleus but not nucleolus": "Nuclei but not nucleoli", "nucleoli": "Nucleoli", "nucleolus": "Nucleoli",
    "plasma membrane": "Plasma membrane", "vesicles": "Vesicles",
}
#: Look-alike pattern of each class.
PATTERN = {"Actin filaments": "actin", "Centrosome": "centrosome", "Cytoplasm": "cytoplasm", "ER": "er",
           "Golgi": "golgi_giantin", "Intermediate filaments": "intermediate_filaments",
           "Microtubules": "microtubules", "Mitochondria": "mitochondria", "Nuclei": "dna",
           "Nuclei but not nucleoli": "nucleus_no_nucleoli", "Nucleoli": "nucleolus",
           "Plasma membrane": "membrane", "Vesicles": "vesicles"}
SUFFIX = {"readlist": "green", "readlist_nuc": "blue", "readlist_tub": "red", "readlist_er": "yellow"}
COLUMNS = ("Metadata_AntibodyId", "Metadata_Location", "Metadata_EnsemblId", "Metadata_UniProt")
#: Look-alike: site prefix as in the Murphy lab paths, single-location fields per class, extra fields.
MURPHY_PREFIX = "/share/images/HPA/images/IFconfocal"
PER_CLASS = 6


def canonical(location: str) -> str | None:
    """The paper's class name of a single location name, or None."""
    return ALIASES.get(re.sub(r"\s+", " ", location.strip().lower()))


def _strings(value: Any) -> list[str]:
    """A MATLAB cell array of strings (as scipy loads it: an object array of 1-element or empty
    character arrays) as a list of str."""
    out = []
    for item in np.asarray(value, dtype=object).ravel():
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.ravel()[0]
        if isinstance(item, np.ndarray):
            item = "".join(str(x) for x in item.ravel())
        out.append(str(item))
    return out


def load_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB v5/v7 .mat file (v7.3 HDF5 files are rejected with a hint)."""
    from scipy.io import loadmat

    if not path.is_file():
        raise DatasetLayoutError(f"{path}: file missing, expected the HPA metadata .mat of the Murphy lab download")
    try:
        return loadmat(str(path))
    except NotImplementedError:
        raise DatasetLayoutError(f"{path}: MATLAB v7.3 (HDF5) .mat files are not supported; re-save it with "
                                 "save(..., '-v7')") from None
    except Exception as exc:
        raise DatasetLayoutError(f"{path}: unreadable .mat file ({exc})") from None


class PathResolver:
    """Finds the Murphy lab's absolute image paths under RAW by dropping leading folders."""

    def __init__(self, raw: Path):
        self.raw = raw
        self.index = FileIndex(raw)
        self.drop: int | None = None

    def resolve(self, listed: str) -> str | None:
        """The path relative to RAW of a listed path, or None if no suffix of it exists."""
        parts = [p for p in PurePosixPath(listed.replace("\\", "/")).parts if p != "/"]
        order = [self.drop] if self.drop is not None else []
        order += [k for k in range(len(parts)) if k != self.drop]
        for k in order:
            rel = "/".join(parts[k:])
            if rel and self.index.exists(rel):
                self.drop = k
                return rel
        return None


class HPA(Dataset):
    name = "hpa"
    title = "Human Protein Atlas (A-431), 13 single-location classes"
    default_channels = ("protein", "nucleus", "microtubules", "ER")
    dtypes = ("uint8", "uint16")
    real_size = (2048, 2048)
    small_size = (64, 64)
    variable_size = True
    options = (
        Option("classes", "paper", "single-location classes: the paper's 13 only, or every single location found",
               ("paper", "all")),
    )
    download_hint = "the HPA data of http://murphylab.web.cmu.edu/software/2012_PLoS_ONE_Reannotation/ in RAW"
    uncertain = (
        Choice("HPA image format", "single-channel 8- or 16-bit TIFFs named <field>_green/_blue/_red/_yellow.tif "
               "(protein, nucleus, microtubules, ER); 8-bit images pass unchanged, 16-bit ones are mapped by their "
               "full range unless --norm-scope is given"),
    )

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        self.check_protocol(protocol)
        mat = load_mat(raw / INFO)
        missing = [k for k in ("antibodyids", *LISTS, "classlabels", "classes") if k not in mat]
        if missing:
            raise DatasetLayoutError(f"{raw / INFO}: variables {', '.join(missing)} missing")
        lists = {k: _strings(mat[k]) for k in LISTS}
        antibodies = [str(int(a)) if float(a).is_integer() else str(a)
                      for a in np.asarray(mat["antibodyids"]).ravel()]
        labels = [int(x) for x in np.asarray(mat["classlabels"]).ravel()]
        class_names = _strings(mat["classes"])
        n = len(lists["readlist"])
        if not all(len(v) == n for v in lists.values()) or len(labels) != n or len(antibodies) != n:
            raise DatasetLayoutError(f"{raw / INFO}: readlist, readlist_nuc/_tub/_er, antibodyids and classlabels "
                                     "differ in length")
        genes = _gene_ids(raw / ENSEMBL)
        resolver = PathResolver(raw)
        single: dict[int, str] = {}
        extra: set[str] = set()
        for i, loc in enumerate(class_names, start=1):
            parts = [p for p in re.split(r"[,;]", loc) if p.strip()]
            if len(parts) == 1:
                name = canonical(parts[0])
                if name is None:
                    if self.opts["classes"] == "all":
                        name = parts[0].strip()
                        extra.add(name)
                    else:
                        continue
                single[i] = name
        classes = tuple(c for c in PAPER_CLASSES if c in single.values()) + tuple(sorted(extra))
        label_of = {c: k for k, c in enumerate(classes)}
        seen: set[str] = set()
        labelled: list[Labelled] = []
        skipped_multi = 0
        duplicates = 0
        for i in range(n):
            if labels[i] not in single:
                skipped_multi += 1
                continue
            protein = lists["readlist"][i]
            if protein in seen:
                duplicates += 1
                continue
            seen.add(protein)
            files: list[str | None] = []
            for key in LISTS:
                listed = lists[key][i]
                rel = resolver.resolve(listed) if check_files else listed.lstrip("/")
                if rel is None:
                    problems.bad(listed, f"{SUFFIX[key]} channel file not found under RAW (listed in {INFO})")
                files.append(rel)
            if None in files:
                continue
            rel_protein = str(files[0])
            stem = re.sub(r"_green$", "", rel_protein.rsplit(".", 1)[0])
            gene = genes.get(antibodies[i], ("", ""))
            meta = {"Metadata_AntibodyId": antibodies[i], "Metadata_Location": class_names[labels[i] - 1],
                    "Metadata_EnsemblId": gene[0], "Metadata_UniProt": gene[1]}
            name = single[labels[i]]
            labelled.append(Labelled(Field(stem, tuple(str(f) for f in files), meta), label_of[name]))
        columns = COLUMNS if genes else COLUMNS[:2]
        plan = Plan(classes=classes, labelled=labelled, columns=columns)
        plan.choices += [
            Choice("HPA classes", f"proteins with a single location ({self.opts['classes']} classes); multi-location "
                   "class names (comma-joined) are left out", "--option classes=all"),
            Choice("HPA image paths", "paths of the .mat found under RAW by dropping leading folders"),
            Choice("HPA image size", "fields are stored at the size of the first field; fields of another size are "
                   "resized to it (area interpolation)", "--resize H,W"),
        ]
        plan.counts = {"listed": n, "multi_location_or_other": skipped_multi, "duplicates": duplicates}
        return plan

    def synthesize(self, out: Path, size: str = "small", seed: int = 0, **kwargs: Any) -> dict[str, Any]:
        from scipy.io import savemat

        height, width = self.image_size(size)
        multi = ["Cytoplasm,Nuclei", "Golgi,Vesicles", "Mitochondria,Cytoplasm"]
        mat_classes = [*PAPER_CLASSES, *multi]
        entries: list[tuple[str, int, int]] = []  # (stem, class index 1-based, antibody)
        antibody = 1000
        for k in range(1, len(mat_classes) + 1):
            count = PER_CLASS if k <= len(PAPER_CLASSES) else 2
            for i in range(count):
                antibody += 1
                stem = f"A-431/{antibody}/{antibody}_{'ABCDEFGH'[i % 8]}{i + 1}_1"
                entries.append((stem, k, antibody))
        entries.append(entries[0])  # listed twice (the loader skips repeated protein paths)
        count = 0
        written = set()
        for stem, k, _ in entries:
            if stem in written:
                continue
            written.add(stem)
            cls = mat_classes[k - 1]
            pattern = PATTERN.get(cls, "cytoplasm") if k <= len(PAPER_CLASSES) else "cytoplasm"
            look = looks.pattern_look(pattern, {"nucleus": {"nucleus": 1.0}, "microtubules": {"filaments": 0.8},
                                                "ER": {"reticular": 1.0}}, cells=5.0, spread=0.7)
            planes = render(rng_for(seed, self.name, stem), height, width, look)
            base = out / "images/HPA/images/IFconfocal" / stem
            for key, channel in zip(LISTS, self.default_channels, strict=True):
                plane = to_dtype(planes[channel], np.uint8, 160, 4)
                write_tiff(base.with_name(f"{base.name}_{SUFFIX[key]}.tif"), plane)
                count += 1
        cell = np.empty((len(entries), 1), dtype=object)
        mat: dict[str, Any] = {"antibodyids": np.array([[a] for _, _, a in entries], dtype=np.float64),
                               "classlabels": np.array([[k] for _, k, _ in entries], dtype=np.float64)}
        for key in (*LISTS, "readlist_mask"):
            col = cell.copy()
            for i, (stem, _, _) in enumerate(entries):
                if key == "readlist_mask":
                    col[i, 0] = "./data/masks/" + f"{MURPHY_PREFIX}/{stem}_green.png".replace("/", "_")
                else:
                    col[i, 0] = f"{MURPHY_PREFIX}/{stem}_{SUFFIX[key]}.tif"
            mat[key] = col
        classes = np.empty((len(mat_classes), 1), dtype=object)
        for i, c in enumerate(mat_classes):
            classes[i, 0] = c
        mat["classes"] = classes
        out.mkdir(parents=True, exist_ok=True)
        savemat(str(out / INFO), mat)
        unique = sorted({a for _, _, a in entries})
        ens = np.empty((len(unique), 1), dtype=object)
        uni = np.empty((len(unique), 1), dtype=object)
        for i, a in enumerate(unique):
            ens[i, 0] = f"ENSG{a:011d}"
            uni[i, 0] = f"P{a:05d}"
        savemat(str(out / ENSEMBL), {"antibodyids": np.array([[a] for a in unique], dtype=np.float64),
                                     "EnsEMBL_ID": ens, "proteinnames_uniprot2": uni})
        return {"images": count, "height": height, "width": width, "folder": "images/HPA/images/IFconfocal"}


def _gene_ids(path: Path) -> dict[str, tuple[str, str]]:
    """antibody id -> (Ensembl id, UniProt name) from the optional EnsEMBL .mat ({} if absent)."""
    if not path.is_file():
        return {}
    mat = load_mat(path)
    if not {"antibodyids", "EnsEMBL_ID"} <= set(mat):
        return {}
    ids = [str(int(a)) if float(a).is_integer() else str(a) for a in np.asarray(mat["antibodyids"]).ravel()]
    ens = _strings(mat["EnsEMBL_ID"])
    uni = _strings(mat["proteinnames_uniprot2"]) if "proteinnames_uniprot2" in mat else [""] * len(ids)
    return {a: (e, u) for a, e, u in zip(ids, ens, uni, strict=False)}
