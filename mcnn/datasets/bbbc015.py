"""BBBC015: beta2-adrenergic receptor / arrestin-GFP Transfluor assay in U2OS (isoproterenol).

Download (https://bbbc.broadinstitute.org/BBBC015): the image zip and the plate map::

    RAW/BBBC015_v1_images/<well>_<field>_<channel>.JPG     3-channel JPEG with R = G = B, 1000 x 768
    RAW/BBBC015_v1_platemap.txt                            a header line, then one concentration per
                                                           well (36) or per image field (144)
    RAW/BBBC015_v1_platemap.xls                            (not read)

36 wells (3 replica rows x 12 isoproterenol concentrations), 4 fields per well, 2 channels
(green = arrestin-GFP, crimson) = 288 JPEGs. The exact file-name tokens are UNCERTAIN: any
``<number>_<number>_<word>.JPG`` is accepted; the channel word is matched as ``green``/``gfp``
and ``crimson``/``red``, otherwise the two words present are taken in sorted order (option
``channel_tokens``). The paper's set: the two lowest (neutral) and two highest (positive)
concentrations, one field per well in cross-validation (6 + 6 images).
"""

from __future__ import annotations

import re
from pathlib import Path

from mcnn.datasets.base import Choice, Field, Option, Problems, format_number
from mcnn.datasets.platemap import BASE_COLUMNS, PlateMapDataset, PlateRead, check_cv_field, number_replicates
from mcnn.datasets.plates import read_platemap, read_text
from mcnn.errors import ConfigError, DatasetLayoutError
from mcnn.setsizes import cv_sizes

IMAGES = "BBBC015_v1_images"
PLATEMAP = "BBBC015_v1_platemap.txt"
PLATE = "BBBC015"
FILE_RE = re.compile(r"^(\d+)_(\d+)_([A-Za-z0-9-]+)\.jpe?g$", re.IGNORECASE)
GREEN_WORDS = {"green", "gfp", "g"}
CRIMSON_WORDS = {"crimson", "red", "r"}
COLUMNS = BASE_COLUMNS
#: Look-alike concentrations: a half-log series (unit as in the plate map; not documented).
SERIES = tuple(float(f"{10 ** (-3 + 0.5 * k):.4g}") for k in range(12))


class BBBC015(PlateMapDataset):
    """BBBC015 read from its download: 36 wells x 4 fields, a 12-step isoproterenol series."""

    name = "bbbc015"
    title = "BBBC015 beta2-AR/arrestin-GFP Transfluor (U2OS; isoproterenol)"
    default_channels = ("GFP", "crimson")
    dtypes = ("uint8",)
    real_size = (768, 1000)
    small_size = (96, 125)
    batch = 8
    set_sizes = cv_sizes([6, 6], 0.1)
    notes = ("6 images per class (2 lowest/highest concentrations x 3 rows, one field per well), derived",)
    images = IMAGES
    images_what = "the unpacked BBBC015 image zip"
    columns = COLUMNS
    concentration_unit = "as in BBBC015_v1_platemap.txt (not documented)"
    options = (
        Option("cv_field", "first", "field used per well in cross-validation: first, last, a field number, or all"),
        Option("channel_tokens", "auto", "file-name words of the GFP and crimson channels, e.g. 'green,crimson' "
               "(auto: green/gfp and crimson/red, else the two words in sorted order)"),
    )
    download_hint = f"unzip the BBBC015 image zip into RAW (folder {IMAGES}/) and put {PLATEMAP} next to it"

    def configure(self) -> None:
        """Validate ``cv_field`` and ``channel_tokens``."""
        check_cv_field(self.opts["cv_field"])
        tokens = self.opts["channel_tokens"]
        if tokens != "auto" and len([t for t in tokens.split(",") if t]) != 2:
            raise ConfigError(f"--option channel_tokens={tokens}: expected two words, e.g. green,crimson")

    def _channel_words(self, words: set[str], folder: Path) -> tuple[str, str]:
        if self.opts["channel_tokens"] != "auto":
            green, crimson = self.opts["channel_tokens"].split(",")
            return green, crimson
        lower = {w.lower(): w for w in words}
        green = [lower[w] for w in lower if w in GREEN_WORDS]
        crimson = [lower[w] for w in lower if w in CRIMSON_WORDS]
        if len(green) == 1 and len(crimson) == 1:
            return green[0], crimson[0]
        if len(words) == 2:
            first, second = sorted(words)
            return first, second
        raise DatasetLayoutError(f"{folder}: cannot tell the two channels from the file-name words "
                                 f"{sorted(words)}; set --option channel_tokens=GREEN,CRIMSON")

    def read_plate(self, raw: Path, folder: Path, problems: Problems, check_files: bool) -> PlateRead:
        """Every field with both channel files; ``info`` holds the channel words taken."""
        names: dict[tuple[str, int, str], str] = {}
        for entry in sorted(p.name for p in folder.iterdir()):
            m = FILE_RE.match(entry)
            if m:
                names[(m.group(1), int(m.group(2)), m.group(3))] = entry
        if not names:
            raise DatasetLayoutError(f"{folder}: no <well>_<field>_<channel>.JPG files")
        green, crimson = self._channel_words({k[2] for k in names}, folder)
        well_tokens = sorted({k[0] for k in names}, key=lambda w: (int(w), w))
        sites = sorted({k[1] for k in names})
        pairs = [(w, s) for w in well_tokens for s in sites]
        conc = _concentrations(raw / PLATEMAP, well_tokens, sites, pairs)
        fields: list[Field] = []
        for w, s in pairs:
            files = []
            for word, label in ((green, "GFP"), (crimson, "crimson")):
                entry = names.get((w, s, word))
                if entry is None:
                    problems.bad(f"{IMAGES}/{w}_{s}_{word}.JPG", f"missing {label} channel file of well {w} field {s}")
                else:
                    files.append(f"{IMAGES}/{entry}")
            if len(files) < 2:
                continue
            c = conc[(w, s)]
            meta = {"Metadata_Plate": PLATE, "Metadata_Well": w, "Metadata_Site": s,
                    "Metadata_Compound": "isoproterenol", "Metadata_Concentration": format_number(c),
                    "Metadata_Replicate": 0}
            fields.append(Field(f"{PLATE}/{w}/s{s}", tuple(files), meta, plate=PLATE, control=c == 0))
        return PlateRead(number_replicates(fields), {"words": (green, crimson)})

    def choices(self, read: PlateRead) -> list[Choice]:
        """The channel words, the field used in cross-validation and the plate-map layout."""
        green, crimson = read.info["words"]
        return [
            Choice("BBBC015 file-name tokens", f"<well>_<field>_<channel>.JPG with channel words {green!r} (GFP) and "
                   f"{crimson!r} (crimson)", "--option channel_tokens=GREEN,CRIMSON"),
            Choice("BBBC015 field used in cross-validation", f"{self.opts['cv_field']} field of each well "
                   "(the paper uses one field per well; which one is not stated)",
                   "--option cv_field=N|first|last|all"),
            Choice("BBBC015 plate map", "a header line, then one value per well (in well-number order) or per field "
                   "(sorted by well, then field)"),
        ]


def _concentrations(platemap: Path, well_tokens: list[str], sites: list[int],
                    pairs: list[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """(well, field) -> concentration from a plate map with one value per well or per field."""
    if not platemap.is_file():
        raise DatasetLayoutError(f"{platemap}: file missing, expected a header line and one concentration "
                                 f"per well ({len(well_tokens)}) or per field ({len(pairs)})")
    values = _read_values(platemap, len(well_tokens), len(pairs))
    if len(values) == len(well_tokens):
        return {(w, s): values[i] for i, w in enumerate(well_tokens) for s in sites}
    return {pair: values[i] for i, pair in enumerate(pairs)}


def _read_values(path: Path, per_well: int, per_field: int) -> list[float]:
    """The plate-map values, one per well if there are ``per_well`` of them, else one per field."""
    lines = read_text(path).splitlines()
    count = len([t for line in lines[1:] for t in re.split(r"[\s,;]+", line.strip()) if t])
    expected = per_well if count == per_well else per_field
    return [float(t) for t in read_platemap(path, expected)]
