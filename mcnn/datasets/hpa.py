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

from mcnn.datasets.base import Choice, Dataset, Field, FileIndex, Labelled, Option, Plan, Problems
from mcnn.errors import DatasetLayoutError
from mcnn.setsizes import cv_sizes

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
SUFFIX = {"readlist": "green", "readlist_nuc": "blue", "readlist_tub": "red", "readlist_er": "yellow"}
COLUMNS = ("Metadata_AntibodyId", "Metadata_Location", "Metadata_EnsemblId", "Metadata_UniProt")


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


def _v73_value(item: Any, handle: Any, where: str) -> Any:
    """One variable of a MATLAB v7.3 file as scipy's loadmat would give it.

    MATLAB writes arrays column-major, so an m x n array is an n x m HDF5 dataset: transposed back
    here. ``char`` arrays are uint16 code points (one string per row), ``cell`` arrays object
    references into ``#refs#``, empty arrays carry ``MATLAB_empty`` (their data is the dimensions).
    """
    import h5py

    if not isinstance(item, h5py.Dataset):
        raise DatasetLayoutError(f"{where}: a MATLAB struct or object; expected an array, a string or a cell array")
    kind = item.attrs.get("MATLAB_class", b"double")
    kind = kind.decode() if isinstance(kind, bytes) else str(kind)
    if item.attrs.get("MATLAB_empty", 0):
        return np.array([], dtype=object if kind == "cell" else float)
    values = np.asarray(item[()]).T
    if kind == "char":
        rows = np.atleast_2d(values)
        text = ["".join(chr(int(c)) for c in row) for row in rows]
        return text[0] if len(text) == 1 else np.array(text, dtype=object)
    if kind == "cell":
        out = np.empty(values.shape, dtype=object)
        for index, ref in np.ndenumerate(values):
            out[index] = _v73_value(handle[ref], handle, f"{where}{{{index}}}")
        return out
    if values.dtype.kind not in "fiub":
        raise DatasetLayoutError(f"{where}: MATLAB class {kind!r} is not an array, string or cell array")
    return np.atleast_2d(values)


def _load_v73(path: Path) -> dict[str, Any]:
    """The top-level variables of a MATLAB v7.3 (HDF5) .mat file, read with h5py."""
    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise DatasetLayoutError(f"{path}: unreadable MATLAB v7.3 (HDF5) .mat file ({exc})") from None
    with handle:
        return {name: _v73_value(item, handle, f"{path}: variable {name}")
                for name, item in handle.items() if not name.startswith("#")}


def load_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB .mat file: v5/v7 with scipy, v7.3 (HDF5 inside) with h5py.

    Either way the values are those of ``scipy.io.loadmat``: numeric arrays 2-D in MATLAB's shape,
    cell arrays object arrays (strings as str in v7.3 files).
    """
    import h5py

    if not path.is_file():
        raise DatasetLayoutError(f"{path}: file missing, expected the HPA metadata .mat of the Murphy lab download")
    if h5py.is_hdf5(str(path)):
        return _load_v73(path)
    from scipy.io import loadmat

    try:
        return loadmat(str(path))
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
    """The HPA A-431 fields of the Murphy lab re-annotation set, single-location proteins only."""

    name = "hpa"
    title = "Human Protein Atlas (A-431), 13 single-location classes"
    default_channels = ("protein", "nucleus", "microtubules", "ER")
    dtypes = ("uint8", "uint16")
    real_size = (2048, 2048)
    small_size = (64, 64)
    net_size = (1024, 1024)
    variable_size = True
    class_names = PAPER_CLASSES
    batch = 8
    set_sizes = cv_sizes([100] * 13, 0.1)
    notes = ("image size is our choice (fields resized to 1024x1024); original size unknown",
             "class sizes unknown: the solver assumes 100 images per class until data_prep counts them")
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
        """The single-location fields listed in the metadata .mat under ``raw``, found under RAW."""
        self.check_protocol(protocol)
        info = read_info(raw / INFO)
        genes = _gene_ids(raw / ENSEMBL)
        single, extra = self._single_locations(info["classes"])
        classes = tuple(c for c in PAPER_CLASSES if c in single.values()) + tuple(sorted(extra))
        label_of = {c: k for k, c in enumerate(classes)}
        resolver = PathResolver(raw)
        seen: set[str] = set()
        labelled: list[Labelled] = []
        skipped_multi = 0
        duplicates = 0
        for i, label in enumerate(info["labels"]):
            if label not in single:
                skipped_multi += 1
                continue
            protein = info["lists"]["readlist"][i]
            if protein in seen:
                duplicates += 1
                continue
            seen.add(protein)
            files = _channel_files(info["lists"], i, resolver, problems, check_files)
            if files is None:
                continue
            stem = re.sub(r"_green$", "", files[0].rsplit(".", 1)[0])
            antibody = info["antibodies"][i]
            gene = genes.get(antibody, ("", ""))
            meta = {"Metadata_AntibodyId": antibody, "Metadata_Location": info["classes"][label - 1],
                    "Metadata_EnsemblId": gene[0], "Metadata_UniProt": gene[1]}
            labelled.append(Labelled(Field(stem, files, meta), label_of[single[label]]))
        columns = COLUMNS if genes else COLUMNS[:2]
        plan = Plan(classes=classes, labelled=labelled, columns=columns)
        plan.choices += [
            Choice("HPA classes", f"proteins with a single location ({self.opts['classes']} classes); multi-location "
                   "class names (comma-joined) are left out", "--option classes=all"),
            Choice("HPA image paths", "paths of the .mat found under RAW by dropping leading folders"),
            Choice("HPA image size", "fields are stored at the size of the first field; fields of another size are "
                   "resized to it (area interpolation)", "--resize H,W"),
        ]
        plan.counts = {"listed": len(info["labels"]), "multi_location_or_other": skipped_multi,
                       "duplicates": duplicates}
        return plan

    def _single_locations(self, class_names: list[str]) -> tuple[dict[int, str], set[str]]:
        """1-based class index -> class name of the single-location classes, and the names outside the paper's."""
        single: dict[int, str] = {}
        extra: set[str] = set()
        for i, loc in enumerate(class_names, start=1):
            parts = [p for p in re.split(r"[,;]", loc) if p.strip()]
            if len(parts) != 1:
                continue
            name = canonical(parts[0])
            if name is None:
                if self.opts["classes"] != "all":
                    continue
                name = parts[0].strip()
                extra.add(name)
            single[i] = name
        return single, extra


def read_info(path: Path) -> dict[str, Any]:
    """The lists of the HPA metadata .mat: ``lists`` (channel path lists), ``antibodies``, ``labels``
    (1-based) and ``classes`` (location names); :class:`DatasetLayoutError` if they are missing or differ
    in length."""
    mat = load_mat(path)
    missing = [k for k in ("antibodyids", *LISTS, "classlabels", "classes") if k not in mat]
    if missing:
        raise DatasetLayoutError(f"{path}: variables {', '.join(missing)} missing")
    lists = {k: _strings(mat[k]) for k in LISTS}
    antibodies = [str(int(a)) if float(a).is_integer() else str(a) for a in np.asarray(mat["antibodyids"]).ravel()]
    labels = [int(x) for x in np.asarray(mat["classlabels"]).ravel()]
    n = len(lists["readlist"])
    if not all(len(v) == n for v in lists.values()) or len(labels) != n or len(antibodies) != n:
        raise DatasetLayoutError(f"{path}: readlist, readlist_nuc/_tub/_er, antibodyids and classlabels "
                                 "differ in length")
    return {"lists": lists, "antibodies": antibodies, "labels": labels, "classes": _strings(mat["classes"])}


def _channel_files(lists: dict[str, list[str]], i: int, resolver: PathResolver, problems: Problems,
                   check_files: bool) -> tuple[str, ...] | None:
    """The four channel files of entry ``i`` relative to RAW (None, reported, if one is not found)."""
    files: list[str | None] = []
    for key in LISTS:
        listed = lists[key][i]
        rel = resolver.resolve(listed) if check_files else listed.lstrip("/")
        if rel is None:
            problems.bad(listed, f"{SUFFIX[key]} channel file not found under RAW (listed in {INFO})")
        files.append(rel)
    if None in files:
        return None
    return tuple(str(f) for f in files)


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
