"""Your own screen: plate images (a LoadData image table or OME-Zarr plates) and a plate map in.

``python data_prep/prepare.py screen --images load_data.csv --platemap platemap.csv
--label-column Metadata_MoA --negative-control Metadata_Compound=DMSO --out OUT`` writes the usual
prepared layout (docs/formats.md, "Your own screen"): the train/test LMDBs of each split of the
training wells, and the unlabelled ``screen`` LMDB holding every field in plate/well/site order.

- Image sources: :mod:`mcnn.datasets.loaddata` (CellProfiler LoadData CSV/TSV, one TIFF per
  channel or one multi-channel (OME-)TIFF per field) and :mod:`mcnn.datasets.omezarr` (NGFF HCS
  plates); the plate map and its rules: :mod:`mcnn.datasets.screenmap`; the options and the
  config file: :mod:`mcnn.datasets.screenspec`.
- Splits (``split`` option): ``well`` (default) and ``plate`` hold out whole wells or plates in
  the per-class ``cv`` split, ``field`` single fields (the paper's split), ``compound`` gives one
  leave-one-compound-out fold per compound (``loco``; the negative controls always train).
- Intensity mapping: per plate against its negative controls (``plate-dmso``, mean/sd), like the
  simulated screen; ``--norm-scope image`` standardises each image on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mcnn.datasets.base import Choice, Dataset, Field, Labelled, Plan, Problems
from mcnn.datasets.imageio import bit_depth
from mcnn.datasets.loaddata import KEYS, FieldSource, Header, SourceField, read_image_table
from mcnn.datasets.omezarr import is_zarr_group, read_plates
from mcnn.datasets.screenmap import PlateMap, Rules, Well, read_platemap
from mcnn.datasets.screenspec import OPTIONS, Selector, comma_list, describe
from mcnn.errors import BadInputError, ConfigError, DatasetLayoutError

#: The options every screen needs, with the flag that sets each.
REQUIRED = (("images", "--images"), ("platemap", "--platemap"), ("label_column", "--label-column"))


def default_raw(images: str | Path) -> Path:
    """The RAW folder of a screen when ``--raw`` is not given: the folder holding ``--images``
    (the folder itself when it is a folder of zarr plates)."""
    path = Path(images).expanduser().resolve()
    if path.is_dir() and not is_zarr_group(path):
        return path
    return path.parent


def _size(header: Header) -> str:
    """``32x32 (WxH) 16-bit``."""
    (h, w), dtype = header
    return f"{w}x{h} (WxH) {bit_depth(dtype)}"


def channel_mismatch(name: str, where: str, channels: Sequence[str], files: Sequence[str],
                     headers: Sequence[Header | None]) -> BadInputError | None:
    """The error for a field whose channels differ in size or bit depth (None if they agree)."""
    known = [(c, f, h) for c, f, h in zip(channels, files, headers, strict=True) if h is not None]
    for c, f, h in known[1:]:
        c0, _, h0 = known[0]
        if h != h0:
            what = "size" if h[0] != h0[0] else "bit depth"
            at = f" ({where})" if where else ""
            return BadInputError(f, f"field {name}{at}: channel {c} is {_size(h)}, channel {c0} is "
                                 f"{_size(h0)}; the channels of a field must have one {what}")
    return None


def _well_key(f: SourceField) -> tuple[str, str, int]:
    return (f.plate, f.well, f.site)


class Screen(Dataset):
    """A user's own screen read from an image table or OME-Zarr plates and a plate map (no preset:
    the classes, channels and image size come from the inputs)."""

    name = "screen"
    title = "Your own screen (LoadData image table or OME-Zarr plates, and a plate map)"
    protocols = ("cv", "loco")
    dtypes = ("uint8", "uint16")
    intensity_defaults: ClassVar[Mapping[str, Any]] = {"scope": "plate-dmso", "stat": "meanstd"}
    options = OPTIONS
    download_hint = "give --images (a LoadData CSV/TSV or OME-Zarr plates) and --platemap"

    def configure(self) -> None:
        """Check the required options, make the paths absolute and parse the selectors and lists."""
        for name, flag in REQUIRED:
            if not self.opts[name].strip():
                raise ConfigError(f"screen: {flag} is required (or --option {name}=..., or a --config file)")
        for name in ("images", "platemap"):
            self.opts[name] = str(Path(self.opts[name]).expanduser().resolve())
        for name in ("classes", "channels"):
            self.opts[name] = ",".join(comma_list(self.opts[name]))
        selectors = {}
        for name in ("negative_control", "positive_control", "train_where"):
            selectors[name] = Selector.parse(self.opts[name], name)
            self.opts[name] = selectors[name].text() if selectors[name] else ""
        self.split = self.opts["split"]
        self.rules = Rules(self.opts["label_column"].strip(), selectors["negative_control"],
                           selectors["positive_control"], selectors["train_where"], comma_list(self.opts["classes"]),
                           self.opts["control_class"].strip() or "control", self.opts["unit"].strip() or "uM",
                           self.opts["compound_column"].strip(), self.opts["concentration_column"].strip(),
                           need_compound=self.split == "compound")
        self.default_protocol = "loco" if self.split == "compound" else "cv"  # type: ignore[misc]
        self.raw: Path | None = None
        self._sources: dict[str, FieldSource] = {}

    def check_protocol(self, protocol: str) -> None:
        """The protocol follows ``split``: ``loco`` for ``compound``, ``cv`` otherwise."""
        if protocol != self.default_protocol:
            raise ConfigError(f"--protocol {protocol}: screen with --split {self.split} uses --protocol "
                              f"{self.default_protocol} (the protocol follows --split)")

    # -- reading ---------------------------------------------------------------------------------

    def _read_sources(self, raw: Path, problems: Problems) -> list[SourceField]:
        """The fields the image source lists (channels set on the way)."""
        images = Path(self.opts["images"])
        wanted = comma_list(self.opts["channels"])
        if not images.exists():
            raise DatasetLayoutError(f"{images}: no such file or folder (--images: a LoadData CSV/TSV, an .ome.zarr "
                                     "plate or a folder of them)")
        if images.is_dir():
            self.channels, fields = read_plates(images, wanted, raw, problems)
        else:
            self.channels, fields = read_image_table(images, wanted, raw)
        seen: dict[tuple[str, str, int], SourceField] = {}
        for f in fields:
            first = seen.setdefault(_well_key(f), f)
            if first is not f:
                raise DatasetLayoutError(f"{f.where}: columns {', '.join(KEYS)}: field {f.name} listed twice "
                                         f"(first at {first.where})")
        return fields

    def _join(self, fields: list[SourceField], pm: PlateMap, problems: Problems) -> list[tuple[SourceField, Well]]:
        """Each field with its plate-map row; fields without one and rows without fields go to ``problems``."""
        joined = []
        used: set[tuple[str, str, str]] = set()
        for f in fields:
            well = pm.lookup(f.plate, f.well)
            if well is None:
                on = f" of plate {f.plate}" if pm.per_plate else ""
                problems.bad(f.where, f"column Metadata_Well: well {f.well}{on} is not in the plate map {pm.path}")
                continue
            used.add((f.plate, f.well, well.plate))
            joined.append((f, well))
        plates = list(dict.fromkeys(f.plate for f in fields))
        for w in pm.wells.values():
            for plate in [w.plate] if pm.per_plate else plates:
                if (plate, w.well, w.plate) not in used:
                    problems.bad(f"{pm.path} line {w.line}", f"column Metadata_Well: well {w.well} of plate {plate} "
                                 f"has no field in {self.opts['images']}")
        return joined

    def _check_files(self, raw: Path, joined: list[tuple[SourceField, Well]],
                     problems: Problems) -> list[tuple[SourceField, Well]]:
        """The fields whose files exist and whose channels agree in size and bit depth with each other
        and with the first field (TIFF headers and zarr metadata only, no pixels are read)."""
        kept = []
        first: Header | None = None
        for f, w in joined:
            try:
                headers = f.source.headers(raw)
                error = channel_mismatch(f.name, f.where, self.channels, f.files, headers)
                if error is not None:
                    raise error
                for rel, h in zip(f.files, headers, strict=True):
                    if h is not None and first is not None and h != first:
                        raise BadInputError(rel, f"field {f.name} ({f.where}) is {_size(h)}, the first field is "
                                            f"{_size(first)}; every field of a screen must have one size and bit "
                                            "depth")
                    first = first or h
            except BadInputError as exc:
                problems.add(exc)
                continue
            kept.append((f, w))
        return kept

    def plan(self, raw: Path, protocol: str, problems: Problems, check_files: bool = True) -> Plan:
        """Every field of the image source joined with the plate map: the training wells labelled,
        every field in the ``screen`` set, the negative controls for the per-plate statistics."""
        self.check_protocol(protocol)
        self.raw = raw
        pm = read_platemap(Path(self.opts["platemap"]), self.rules)
        sources = self._read_sources(raw, problems)
        joined = self._join(sources, pm, problems)
        if check_files:
            joined = self._check_files(raw, joined, problems)
        joined.sort(key=lambda fw: _well_key(fw[0]))
        label_of = {c: i for i, c in enumerate(pm.classes)}
        fields: list[Field] = []
        labelled: list[Labelled] = []
        self._sources = {}
        for f, w in joined:
            meta = {"Metadata_Plate": f.plate, "Metadata_Well": f.well, "Metadata_Site": f.site, **w.meta}
            field = Field(f.name, f.files, meta, plate=f.plate, control=w.role == "negative_control")
            self._sources[f.name] = f.source
            fields.append(field)
            if w.label is not None:
                labelled.append(Labelled(field, label_of[w.label], self._group(w), self._unit(f)))
        plan = Plan(classes=pm.classes, labelled=labelled, columns=(*KEYS, *pm.columns),
                    unlabelled={"screen": fields}, controls=[f for f in fields if f.control],
                    concentration_unit=pm.unit)
        plan.choices = self._choices(sources)
        plan.counts = _counts(fields, labelled, pm.classes, "ome-zarr" if Path(self.opts["images"]).is_dir()
                              else "loaddata")
        return plan

    def _group(self, w: Well) -> str:
        """What leave-one-compound-out holds out: the compound ("" for negative controls: they always train)."""
        return "" if w.role == "negative_control" else w.compound

    def _unit(self, f: SourceField) -> str:
        """What a cv split holds out whole: the well, the plate, or the field itself ("")."""
        if self.split == "plate":
            return f.plate
        return "" if self.split == "field" else f"{f.plate}/{f.well}"

    def _choices(self, sources: list[SourceField]) -> list[Choice]:
        """The facts of this reading the inputs leave open (written to dataset.json)."""
        held = {"well": "every field of a well on one side (10 % of each class's wells to the test set)",
                "plate": "whole plates on one side (10 % of the plates, each counted in the class most of its "
                         "fields have)",
                "field": "single fields (the paper's per-image 90/10 split; fields of one well on both sides)",
                "compound": "one fold per compound (leave-one-compound-out); the negative controls always train"}
        choices = [Choice("screen split", f"split={self.split}: {held[self.split]}", "--split")]
        if Path(self.opts["images"]).is_dir():
            choices.append(Choice("OME-Zarr time series and z-stacks", "the first time point and z plane of level 0"))
        return choices

    def read_field(self, raw: Path, f: Field) -> list[np.ndarray]:
        """The channel planes of ``f`` (from its TIFF files or zarr array); BadInputError when its
        channels differ in size or bit depth."""
        source = self._sources.get(f.name)
        if source is None:
            return super().read_field(raw, f)
        planes = source.read(raw)
        headers = [((int(p.shape[0]), int(p.shape[1])), p.dtype.name) for p in planes]
        error = channel_mismatch(f.name, "", self.channels, f.files, headers)
        if error is not None:
            raise error
        return planes

    def description(self, flags: Mapping[str, Any]) -> dict[str, Any]:
        """``OUT/screen.json``: every option resolved and the prepare flags (a valid --config file)."""
        return describe(self.opts, self.raw, flags)


def _counts(fields: list[Field], labelled: list[Labelled], classes: tuple[str, ...], source: str) -> dict[str, Any]:
    """What was read: fields, wells, plates, controls, and training fields and wells per class."""
    wells = {(f.plate, f.meta["Metadata_Well"]) for f in fields}
    per_class = Counter(classes[x.label] for x in labelled)
    wells_per_class = Counter(classes[x.label] for x in {(x.field.plate, x.field.meta["Metadata_Well"]): x
                                                         for x in labelled}.values())
    roles = Counter(str(f.meta.get("Metadata_Role", "")) for f in fields)
    return {"source": source, "fields": len(fields), "wells": len(wells), "plates": len({f.plate for f in fields}),
            "negative_control_fields": roles["negative_control"], "positive_control_fields": roles["positive_control"],
            "treatment_fields": roles["treatment"], "training_fields": len(labelled),
            "training_fields_per_class": {c: per_class.get(c, 0) for c in classes},
            "training_wells_per_class": {c: wells_per_class.get(c, 0) for c in classes}}
