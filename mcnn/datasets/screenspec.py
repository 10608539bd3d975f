"""The description of your own screen: its options, the ``COLUMN=VALUE|VALUE`` selectors, the config file.

A screen is described by the options of :class:`mcnn.datasets.screen.Screen` (:data:`OPTIONS`) and
the prepare flags (:data:`PREPARE_KEYS`). Both can come from a config file
(``prepare.py screen --config screen.toml``, TOML or JSON, read by :func:`load_config`), and a run
saves the whole description, every value resolved, as ``OUT/screen.json`` (:func:`describe`),
which is itself a valid config file: one file reproduces the preparation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcnn.datasets.base import Option
from mcnn.errors import ConfigError

#: What a ``cv`` split holds out whole (``compound``: one leave-one-compound-out fold per compound).
SPLITS = ("well", "plate", "compound", "field")
#: The options of the screen dataset, in the order ``screen.json`` lists them.
OPTIONS = (
    Option("images", "", "the image table (CellProfiler LoadData CSV/TSV), one .ome.zarr HCS plate, or a folder "
           "of *.ome.zarr plates"),
    Option("platemap", "", "the plate map (CSV/TSV): one row per well, joined on Metadata_Plate, Metadata_Well"),
    Option("label_column", "", "the plate-map column holding each well's class (blank: the well does not train)"),
    Option("negative_control", "", "COLUMN=VALUE[|VALUE...]: the negative-control wells (default: Metadata_Role "
           "= negative_control)"),
    Option("positive_control", "", "COLUMN=VALUE[|VALUE...]: the positive-control wells (optional)"),
    Option("train_where", "", "COLUMN=VALUE[|VALUE...]: only these wells train (optional)"),
    Option("classes", "", "comma list fixing the class order (default: first appearance in the plate map)"),
    Option("control_class", "control", "the class of negative-control wells whose label is blank"),
    Option("channels", "", "comma list: the channels to use, in LMDB order (default: the image source's order)"),
    Option("unit", "uM", "concentration unit when the plate map has no Metadata_ConcentrationUnit column"),
    Option("split", "well", "what a split holds out whole: well, plate, compound (one leave-one-out fold per "
           "compound) or field", SPLITS),
    Option("compound_column", "Metadata_Compound", "the plate-map column naming the compound"),
    Option("concentration_column", "Metadata_Concentration", "the plate-map column with the concentration"),
)
OPTION_NAMES = tuple(o.name for o in OPTIONS)
#: Options holding paths (made absolute; in a config file relative to the file's folder).
PATH_KEYS = ("images", "platemap", "raw")
#: The prepare flags a config file may set, with the JSON/TOML types each accepts.
PREPARE_KEYS: dict[str, tuple[type, ...]] = {
    "raw": (str,), "protocol": (str,), "repeats": (int,), "seed": (int,), "test_fraction": (float, int),
    "only": (str, list), "augment": (str,), "norm_scope": (str,), "norm_stat": (str,), "transform": (str,),
    "percentiles": (str, list), "range": (str, list), "resize": (str, list), "skip_bad": (bool,),
    "workers": (int,),
}


@dataclass(frozen=True)
class Selector:
    """``COLUMN=VALUE[|VALUE...]``: the plate-map rows whose ``column`` holds one of ``values``."""

    column: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, option: str) -> Selector | None:
        """The selector of an option value (None when blank); ConfigError naming ``option`` if malformed."""
        if not text.strip():
            return None
        column, sep, values = text.partition("=")
        parts = tuple(v.strip() for v in values.split("|"))
        if not sep or not column.strip() or not any(parts):
            raise ConfigError(f"--{option.replace('_', '-')} {text!r}: expected COLUMN=VALUE[|VALUE...]")
        return cls(column.strip(), tuple(p for p in parts if p))

    def text(self) -> str:
        """The selector as an option value (``Metadata_Compound=DMSO|water``)."""
        return f"{self.column}={'|'.join(self.values)}"

    def matches(self, value: str) -> bool:
        """Whether a row whose column holds ``value`` is selected (values compared without surrounding blanks)."""
        return value.strip() in self.values


def comma_list(text: str) -> tuple[str, ...]:
    """The non-blank items of a comma list, stripped."""
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _value(path: Path, key: str, value: Any) -> Any:
    """A config value in the form the command line takes (lists of options as comma lists)."""
    if key in PREPARE_KEYS:
        kinds = PREPARE_KEYS[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join("list" if k is list else k.__name__ for k in kinds)
            raise ConfigError(f"{path}: key {key}: expected {names}, got {value!r}")
    elif isinstance(value, bool) or not isinstance(value, (str, int, float, list)):
        raise ConfigError(f"{path}: key {key}: expected a string or a list, got {value!r}")
    if isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{path}: key {key}: expected a list of strings or numbers, got {value!r}")
        return ",".join(str(v) for v in value)
    if key in OPTION_NAMES:
        return str(value)
    return value


def _read_document(path: Path) -> dict[str, Any]:
    """The top-level table of a TOML (``.toml``) or JSON file."""
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".toml":
        if sys.version_info < (3, 11):
            raise ConfigError(f"--config {path}: TOML needs Python 3.11 (tomllib); write the file as JSON")
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {path}: not TOML ({exc})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config {path}: not JSON ({exc}; TOML files end in .toml)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a table of keys, got {type(data).__name__}")
    return data


def load_config(path: str | Path) -> dict[str, Any]:
    """The options and prepare flags a screen config file sets (keys as in :data:`OPTIONS` and
    :data:`PREPARE_KEYS`; ``dataset``, if present, must be ``screen``). Paths are made absolute
    relative to the file's folder; null values count as not given. ConfigError (one line naming the
    file and key) for anything else."""
    path = Path(path).resolve()
    out: dict[str, Any] = {}
    for key, value in _read_document(path).items():
        if key == "dataset":
            if value != "screen":
                raise ConfigError(f"{path}: key dataset: {value!r}, a screen config needs 'screen'")
            continue
        if key not in OPTION_NAMES and key not in PREPARE_KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (valid: dataset, {', '.join(OPTION_NAMES)}, "
                              f"{', '.join(PREPARE_KEYS)})")
        if value is None:
            continue
        value = _value(path, key, value)
        if key in PATH_KEYS and value:
            value = str((path.parent / Path(value).expanduser()).resolve())
        out[key] = value
    return out


def describe(options: Mapping[str, str], raw: Path | None, flags: Mapping[str, Any]) -> dict[str, Any]:
    """The content of ``OUT/screen.json``: ``dataset``, ``raw``, every option (resolved, absolute
    paths) and the prepare flags; :func:`load_config` reads it back to the same settings."""
    out: dict[str, Any] = {"dataset": "screen", "raw": str(raw) if raw is not None else None}
    out.update({name: options.get(name, "") for name in OPTION_NAMES})
    out.update({k: v for k, v in flags.items() if k in PREPARE_KEYS and k != "raw"})
    return out
