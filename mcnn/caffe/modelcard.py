"""Model cards: what a trained caffemodel carries beside it, as ``<caffemodel stem>.card.json``.

A card is written next to the final caffemodel of a training run (``snaps/mcnn_iter_243.caffemodel``
-> ``snaps/mcnn_iter_243.card.json``) by ``tools/train.py`` (torch engine) and ``tools/reproduce.py``
(both engines): the architecture and its builder options, the dataset and split, the solver's
values, the seed, engine and versions, the test metrics once known, the input preprocessing (the
TEST Data layer's ``transform_param``, the channels and how data_prep mapped raw intensities to
the 8-bit records) and the class names. ``tools/evaluate.py`` and ``tools/predict.py`` take the
class names and preprocessing from it (:func:`mcnn.evaluate.predict.model_inputs`), so a model
file never loses them. The format is plain JSON (``version`` :data:`CARD_VERSION`); every field is
checked on read, and a bad one is reported as one line naming the file and the field.
"""

from __future__ import annotations

import json
import os
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import BadInputError
from mcnn.fsutil import atomic_write_text

PathLike = str | os.PathLike[str]

#: The card format this module writes and reads.
CARD_VERSION = 1
#: A card's name: the caffemodel's without ``.caffemodel``, plus this.
CARD_SUFFIX = ".card.json"


@dataclass
class Architecture:
    """The net: its ``name`` field, classifier outputs, registered architecture (mcnn, alexnet, googlenet;
    None when unknown), the builder keywords it was built with (``tools/reproduce.py``), the
    ``tools/make_net.py`` command in the net file's header, and the train_val/deploy files (absolute)."""

    net: str
    num_classes: int
    arch: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    generated_by: str | None = None
    train_val: str | None = None
    deploy: str | None = None


@dataclass
class Dataset:
    """The prepared dataset the model was trained on (``dataset.json`` of data_prep; None where the LMDBs
    are not in one): name, folder, protocol, split, its LMDBs and record counts, the split seed."""

    name: str | None = None
    root: str | None = None
    protocol: str | None = None
    split: str | None = None
    train_lmdb: str | None = None
    test_lmdb: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    seed: int | None = None


@dataclass
class Preprocessing:
    """How a record becomes the net's input: ``input_shape`` (C, H, W of the input blob), the TEST
    ``transform_param`` (Caffe's field names; ``mean_file`` absolute where found), the channel names
    and C x H x W of the stored records, and ``intensity``: how data_prep mapped raw pixels to 8 bits."""

    input_shape: list[int]
    transform_param: dict[str, Any]
    channels: list[str] | None = None
    record_shape: list[int] | None = None
    intensity: dict[str, Any] | None = None


@dataclass
class Training:
    """The run: engine (torch or caffe), iterations, the solver's ``random_seed`` (-1: unseeded), the
    solver file, the caffemodels it was fine-tuned from, where it resumed, whether a signal stopped it
    early, and the hardware."""

    engine: str
    iterations: int
    seed: int
    solver_file: str | None = None
    weights: list[str] = field(default_factory=list)
    resumed_from: str | None = None
    stopped_early: bool = False
    hardware: str | None = None


@dataclass
class ModelCard:
    """Everything a trained model carries (see the module docstring); ``caffemodel`` is the file name of
    the weights beside the card, ``solver`` the solver's values (Caffe field names), ``versions`` of
    mcnn, Python and torch, ``metrics`` the test results (empty until known), ``created`` UTC."""

    caffemodel: str
    architecture: Architecture
    preprocessing: Preprocessing
    training: Training
    solver: dict[str, Any]
    dataset: Dataset = field(default_factory=Dataset)
    classes: list[str] | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    version: int = CARD_VERSION

    def to_json(self) -> str:
        """The card as indented JSON text (with a final newline)."""
        data = asdict(self)
        return json.dumps({"version": data.pop("version"), **data}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model card") -> ModelCard:
        """Parse and check a card; :class:`BadInputError` naming ``source`` and the field otherwise."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(source, f"line {exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise BadInputError(source, "expected a JSON object (a model card)")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= CARD_VERSION:
            raise BadInputError(source, f"field version: expected {CARD_VERSION} (the card format this mcnn reads), "
                                        f"got {version!r}")
        card = _load(cls, data, "", source)
        card.check(source)
        return card

    def check(self, source: str = "model card") -> None:
        """The cross-field rules: class names match the classifier, a usable input shape and transform."""
        if self.classes is not None and len(self.classes) != self.architecture.num_classes:
            raise BadInputError(source, f"field classes: {len(self.classes)} names for the net's "
                                        f"{self.architecture.num_classes} outputs (architecture.num_classes)")
        shape = self.preprocessing.input_shape
        if len(shape) != 3 or min(shape) < 1:
            raise BadInputError(source, f"field preprocessing.input_shape: expected C, H, W >= 1, got {shape}")
        channels = self.preprocessing.channels
        if channels is not None and len(channels) != shape[0]:
            raise BadInputError(source, f"field preprocessing.channels: {len(channels)} names for {shape[0]} "
                                        "input channels")
        self.transform(source)

    def transform(self, source: str = "model card") -> pb.TransformationParameter:
        """The TEST preprocessing as Caffe's ``TransformationParameter``."""
        try:
            return json_format.ParseDict(self.preprocessing.transform_param, pb.TransformationParameter())
        except json_format.ParseError as exc:
            raise BadInputError(source, f"field preprocessing.transform_param: {exc}") from None


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _value(value: Any, hint: Any, where: str, source: str) -> Any:
    """``value`` checked against the type ``hint`` (dataclasses loaded, ``X | None``, lists, dicts)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    ok = {int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool), list: lambda v: isinstance(v, list),
          dict: lambda v: isinstance(v, dict) and all(isinstance(k, str) for k in v)}
    if is_dataclass(hint):
        if not isinstance(value, dict):
            raise BadInputError(source, f"field {where}: expected an object, got {value!r}")
        return _load(hint, value, f"{where}.", source)
    if hint is Any:
        return value
    if not ok[origin or hint](value):
        raise BadInputError(source, f"field {where}: expected {_hint_name(hint)}, got {value!r}")
    if origin is list:
        return [_value(v, args[0], f"{where}[{i}]", source) for i, v in enumerate(value)]
    if origin is dict:
        return {k: _value(v, args[1], f"{where}.{k}", source) for k, v in value.items()}
    return value


def _load(cls: Any, data: dict[str, Any], prefix: str, source: str) -> Any:
    """An instance of the dataclass ``cls`` from ``data``: every field typed, no unknown field."""
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise BadInputError(source, f"field {prefix}{unknown[0]}: not a field of the card format {CARD_VERSION}")
    values = {}
    for f in fields(cls):
        if f.name in data:
            values[f.name] = _value(data[f.name], hints[f.name], prefix + f.name, source)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise BadInputError(source, f"field {prefix}{f.name}: missing")
    return cls(**values)


def card_path(caffemodel: PathLike) -> Path:
    """The card of ``caffemodel``: ``x.caffemodel`` (or Caffe's HDF5 ``x.caffemodel.h5``) -> ``x.card.json``."""
    path = Path(caffemodel)
    stem = path.name
    for suffix in (".caffemodel.h5", ".caffemodel"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return path.with_name(stem + CARD_SUFFIX)


def load_card(path: PathLike) -> ModelCard:
    """Read and check the card file ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInputError(str(path), "not UTF-8 text (a model card is JSON)") from None
    return ModelCard.from_json(text, str(path))


def read_card(caffemodel: PathLike) -> ModelCard | None:
    """The checked card beside ``caffemodel``, or None when it has none."""
    path = card_path(caffemodel)
    return load_card(path) if path.is_file() else None


def write_card(card: ModelCard, caffemodel: PathLike) -> Path:
    """Write ``card`` beside ``caffemodel`` atomically; returns the card's path."""
    card.check(str(card_path(caffemodel)))
    return atomic_write_text(card_path(caffemodel), card.to_json())


def update_metrics(caffemodel: PathLike, metrics: dict[str, Any]) -> Path | None:
    """Replace the ``metrics`` of the card beside ``caffemodel`` (atomically); None when it has no card."""
    card = read_card(caffemodel)
    if card is None:
        return None
    card.metrics = json.loads(json.dumps(metrics))
    return write_card(card, caffemodel)


def evaluation_metrics(metrics: dict[str, Any], test_lmdb: PathLike) -> dict[str, Any]:
    """The card's ``metrics`` from an evaluation's metrics.json content (mcnn.evaluate.outputs)."""
    keep = {k: metrics[k] for k in ("images", "accuracy", "per_class_accuracy", "confusion") if k in metrics}
    moa = metrics.get("moa")
    if isinstance(moa, dict):
        keep["moa"] = {k: v for k, v in moa.items() if isinstance(v, (int, float, str)) or v is None}
    return {"source": "evaluation", "test_lmdb": str(Path(test_lmdb).resolve()), **keep}
