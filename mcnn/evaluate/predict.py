"""Soft predictions (the paper's Eq. 1) for every record of an LMDB, with the engine or pycaffe.

Records are read in key order and preprocessed exactly as the net's TEST Data layer would
(the ``transform_param`` of the train_val net next to the deploy net), then run through the
deploy net in batches. The result joins each record's index-CSV metadata with its class
probabilities and, optionally, a feature vector (the input of the final classifier).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcnn.caffe import io as cio
from mcnn.caffe.modelcard import ModelCard, card_path, read_card
from mcnn.caffe.modelcard_build import data_layer_transform, find_labels
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.transform import LmdbRecords, Transformer
from mcnn.errors import ConfigError, LabelError, TableError
from mcnn.tables import Table

PathLike = str | os.PathLike[str]


def default_train_val(deploy: PathLike) -> Path | None:
    """The ``*_train_val.prototxt`` next to a ``*_deploy.prototxt``, if it exists."""
    path = Path(deploy)
    if path.name.endswith("_deploy.prototxt"):
        candidate = path.with_name(path.name[: -len("_deploy.prototxt")] + "_train_val.prototxt")
        if candidate.is_file():
            return candidate
    return None


def test_transform(train_val: PathLike) -> pb.TransformationParameter:
    """The TEST-phase Data layer's transform_param of a train_val net (deprecated DataParameter copies included)."""
    return data_layer_transform(cio.read_net(train_val), str(train_val))[0]


def deploy_blobs(deploy: PathLike) -> tuple[str, str, str]:
    """(input blob, probability blob, feature blob) of a deploy net.

    The probability blob is the top of the last Softmax layer; the feature blob is the
    bottom of the InnerProduct layer that feeds it (fc1 in the M-CNN, fc7 in AlexNet,
    pool5/7x7_s1 in GoogLeNet).
    """
    net = cio.read_net(deploy)
    inputs = [t for layer in net.layer if layer.type == "Input" for t in layer.top] or list(net.input)
    if not inputs:
        data = " (it has Data layers: a train_val net; give the *_deploy.prototxt)" if any(
            layer.type == "Data" for layer in net.layer) else ""
        raise ConfigError(f"{deploy}: not a deploy net (no Input layer){data}")
    softmax = [layer for layer in net.layer if layer.type == "Softmax"]
    if not softmax:
        raise ConfigError(f"{deploy}: no Softmax layer to read probabilities from")
    prob, logits = softmax[-1].top[0], softmax[-1].bottom[0]
    producer = next((layer for layer in reversed(net.layer) if logits in layer.top and layer.type == "InnerProduct"),
                    None)
    feature = producer.bottom[0] if producer is not None else logits
    return inputs[0], prob, feature


class Backend:
    """Runs a deploy net on batches: ``forward(batch, blobs) -> {blob: array}``."""

    def forward(self, batch: np.ndarray, blobs: Sequence[str]) -> dict[str, np.ndarray]:
        """The named ``blobs`` after a forward pass of ``batch`` (N x C x H x W, preprocessed, float32)."""
        raise NotImplementedError

    def expect(self, images: int, batch_size: int) -> None:
        """Announce the whole job (``images`` in batches of ``batch_size``) before its first batch, so the
        backend can choose how to run it; the choice is the same for every run of the same job."""


class EngineBackend(Backend):
    """The PyTorch engine (traced and frozen for inference, see :mod:`mcnn.engine.inference`)."""

    def __init__(self, deploy: PathLike, weights: PathLike | Sequence[PathLike], device: str = "cpu"):
        from mcnn.engine.net import load_net

        self.net = load_net(deploy, weights, device=device)
        self._models: dict[tuple[str, ...], object] = {}
        self.compile: bool | None = None  # None: compile (see expect)

    def expect(self, images: int, batch_size: int) -> None:
        """See :meth:`Backend.expect`: a short job runs eagerly (:func:`mcnn.engine.inference.worth_compiling`)."""
        from mcnn.engine.inference import worth_compiling

        self.compile = worth_compiling(self.net, images, batch_size)

    def forward(self, batch: np.ndarray, blobs: Sequence[str]) -> dict[str, np.ndarray]:
        """See :meth:`Backend.forward`; one traced model per set of requested blobs."""
        from mcnn.engine.inference import InferenceModel

        key = tuple(blobs)
        if key not in self._models:
            self._models[key] = InferenceModel(self.net, blobs, optimize=self.compile)
        return self._models[key](batch)  # type: ignore[operator]


class PycaffeBackend(Backend):
    """Real Caffe through pycaffe (``caffe.Net(deploy, weights, caffe.TEST)``)."""

    def __init__(self, deploy: PathLike, weights: PathLike, gpu: int | None = None):
        try:
            import caffe  # type: ignore[import-not-found]
        except ImportError:
            raise ConfigError("--engine caffe needs pycaffe (`import caffe` failed); it is in the Docker image "
                              "built from Dockerfile.caffe (README, Inside Docker), or use --engine torch") from None
        if gpu is None:
            caffe.set_mode_cpu()
        else:
            caffe.set_device(gpu)
            caffe.set_mode_gpu()
        self.net = caffe.Net(os.fspath(deploy), os.fspath(weights), caffe.TEST)
        self.input = self.net.inputs[0]

    def forward(self, batch: np.ndarray, blobs: Sequence[str]) -> dict[str, np.ndarray]:
        """See :meth:`Backend.forward`; the input blob is reshaped to the batch, as pycaffe users do."""
        self.net.blobs[self.input].reshape(*batch.shape)
        self.net.blobs[self.input].data[...] = batch
        self.net.forward()
        return {name: np.array(self.net.blobs[name].data, copy=True) for name in blobs}


@dataclass
class Predictions:
    """Per-record outputs in LMDB key order."""

    keys: list[str]
    labels: np.ndarray               # the Datum labels (-1 for unlabelled records)
    probabilities: np.ndarray        # records x classes
    features: np.ndarray | None      # records x feature size, if requested


def forward_records(backend: Backend, records: LmdbRecords, transformer: Transformer, blobs: Sequence[str],
                    start: int, stop: int, batch_size: int, rng: np.random.Generator,
                    progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run records ``start`` to ``stop`` (exclusive) through ``backend`` in batches of ``batch_size``.

    Returns the Datum labels (int64, one per record) and, per blob of ``blobs``, a float32 array of
    records x (flattened blob size). ``rng`` draws the mirror flips of a mirroring TEST transform.
    """
    out: dict[str, list[np.ndarray]] = {name: [] for name in blobs}
    labels: list[int] = []
    for first in range(start, stop, batch_size):
        images = []
        for i in range(first, min(first + batch_size, stop)):
            image, label = records.image(i)
            images.append(transformer(image, rng))
            labels.append(label)
        result = backend.forward(np.stack(images), blobs)
        for name in blobs:
            out[name].append(np.asarray(result[name], dtype=np.float32).reshape(len(images), -1))
        if progress is not None:
            progress(len(images))
    return np.asarray(labels, np.int64), {name: np.concatenate(parts) for name, parts in out.items()}


def predict_lmdb(backend: Backend, lmdb: PathLike, transform: pb.TransformationParameter, prob_blob: str,
                 feature_blob: str | None = None, batch_size: int = 16,
                 progress: Callable[[int], None] | None = None) -> Predictions:
    """Run ``backend`` over every record of ``lmdb`` once, in key order."""
    records = LmdbRecords(lmdb)
    transformer = Transformer(transform, pb.TEST, records.shape, layer="data", base_dir=Path(lmdb).parent)
    rng = np.random.default_rng(0)  # only used if the TEST transform mirrors, as Caffe would
    blobs = [prob_blob] + ([feature_blob] if feature_blob else [])
    backend.expect(len(records), batch_size)
    labels, out = forward_records(backend, records, transformer, blobs, 0, len(records), batch_size, rng, progress)
    return Predictions(keys=[k.decode() for k in records.keys], labels=labels,
                       probabilities=out[prob_blob].astype(np.float64),
                       features=out[feature_blob].astype(np.float64) if feature_blob else None)


def read_labels(path: PathLike) -> list[str]:
    """Class names from a labels.txt (line i is class i)."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such labels file") from None
    if not any(names):
        raise ConfigError(f"{path}: no class names (expected one name per line, line i naming class i)")
    return [n for n in names if n]


def prediction_rows(predictions: Predictions, classes: Sequence[str],
                    index: Table | None = None) -> tuple[list[dict[str, object]], list[str]]:
    """Rows and columns of a predictions CSV (docs/formats.md): index columns, argmax, ``prob_<class>``."""
    if predictions.probabilities.shape[1] != len(classes):
        raise ConfigError(f"the net gives {predictions.probabilities.shape[1]} probabilities, the labels name "
                          f"{len(classes)} classes")
    if index is not None:
        index.require("key")
        by_key: Mapping[str, dict[str, str]] = {row["key"]: row for row in index.rows}
        missing = [k for k in predictions.keys if k not in by_key]
        if missing:
            raise TableError(f"{index.path}: no row for LMDB key {missing[0]!r} ({len(missing)} keys missing)")
        base_columns = list(index.columns)
        base = [dict(by_key[k]) for k in predictions.keys]
    else:
        base_columns = ["key", "label", "class_name"]
        base = [{"key": k, "label": int(label), "class_name": classes[label] if 0 <= label < len(classes) else ""}
                for k, label in zip(predictions.keys, predictions.labels, strict=True)]
    prob_columns = [f"prob_{name}" for name in classes]
    rows: list[dict[str, object]] = []
    for row, p in zip(base, predictions.probabilities, strict=True):
        guess = int(np.argmax(p))
        row.update({"predicted_label": guess, "predicted_class": classes[guess]})
        row.update({column: float(value) for column, value in zip(prob_columns, p, strict=True)})
        rows.append(row)
    return rows, [*base_columns, "predicted_label", "predicted_class", *prob_columns]


def model_inputs(model: PathLike, lmdb: PathLike, labels: PathLike | None = None,
                 train_val: PathLike | None = None, weights: PathLike | None = None
                 ) -> tuple[pb.TransformationParameter, list[str]]:
    """(TEST transform, class names) for predicting ``lmdb`` with the deploy net ``model``.

    The preprocessing comes from ``train_val``, else from the model card beside ``weights``
    (:mod:`mcnn.caffe.modelcard`), else from the ``*_train_val.prototxt`` next to the deploy net;
    the class names from ``labels``, else from the card, else from a labels.txt next to or above
    the LMDB. ``labels``/``train_val`` given beside a card must agree with it (the same number of
    classes, the same crop): ConfigError naming both otherwise.
    """
    deploy_blobs(model)  # the deploy net itself first: missing, unparsable or a train_val net
    card = read_card(weights) if weights is not None else None
    where = str(card_path(weights)) if weights is not None else ""
    return _model_transform(model, train_val, card, where), _model_classes(lmdb, labels, card, where)


def _model_transform(model: PathLike, train_val: PathLike | None, card: ModelCard | None,
                     where: str) -> pb.TransformationParameter:
    """See :func:`model_inputs`: ``--train-val``, the card ``where``, the train_val beside the deploy net."""
    if train_val is not None:
        transform = test_transform(train_val)
        if card is not None and card.transform(where).crop_size != transform.crop_size:
            raise ConfigError(f"--train-val {train_val}: crop_size {transform.crop_size}, but the model card {where} "
                              f"says the model was trained on crop_size {card.transform(where).crop_size} (input "
                              f"{'x'.join(map(str, card.preprocessing.input_shape))}); "
                              "drop --train-val or give the net it was trained with")
        return transform
    if card is not None:
        return card.transform(where)
    found = default_train_val(model)
    if found is None:
        raise ConfigError(f"{model}: no train_val prototxt next to it and no model card beside the weights to take "
                          "the preprocessing from; give --train-val")
    return test_transform(found)


def _model_classes(lmdb: PathLike, labels: PathLike | None, card: ModelCard | None, where: str) -> list[str]:
    """See :func:`model_inputs`: ``--labels``, the card ``where``, a labels.txt near the LMDB."""
    if labels is not None:
        names = read_labels(labels)
        if card is not None:
            trained = card.classes or []
            count = len(trained) if card.classes is not None else card.architecture.num_classes
            if len(names) != count:
                named = f" ({', '.join(trained)})" if trained else ""
                raise ConfigError(f"--labels {labels}: {len(names)} classes, but the model card {where} names "
                                  f"{count}{named}; drop --labels or give the model's labels")
        return names
    if card is not None and card.classes is not None:
        return list(card.classes)
    found = find_labels(lmdb)
    if found is None:
        raise ConfigError(f"no labels.txt next to or above {lmdb} and no class names in a model card; give --labels")
    return read_labels(found)


def make_backend(model: PathLike, weights: PathLike, engine: str = "torch", gpu: int | None = None) -> Backend:
    """The :class:`Backend` of ``engine`` (``torch``: the engine, ``caffe``: pycaffe) on CPU or GPU ``gpu``."""
    if engine == "caffe":
        return PycaffeBackend(model, weights, gpu)
    if engine == "torch":
        return EngineBackend(model, weights, "cpu" if gpu is None else f"cuda:{gpu}")
    raise ConfigError(f"--engine must be torch or caffe, got {engine!r}")


@dataclass
class ModelRun:
    """Everything :func:`run_model` produced: CSV rows and columns, class names, raw predictions."""

    rows: list[dict[str, object]]
    columns: list[str]
    classes: list[str]
    predictions: Predictions


def run_model(model: PathLike, weights: PathLike, lmdb: PathLike, *, index: PathLike | None = None,
              labels: PathLike | None = None, train_val: PathLike | None = None, batch_size: int = 16,
              engine: str = "torch", gpu: int | None = None, with_features: bool = False,
              progress: bool = False) -> ModelRun:
    """Predict every record of ``lmdb`` with a deploy net and join the index metadata.

    The preprocessing and class names come from ``train_val`` and ``labels``, else from the model
    card beside ``weights``, else from the files around the deploy net and LMDB (:func:`model_inputs`).
    ``engine`` is ``torch`` (the engine) or ``caffe`` (pycaffe).
    """
    from mcnn.tables import read_table

    if batch_size < 1:
        raise ConfigError(f"--batch {batch_size}: need at least 1 image per forward pass")
    transform, classes = model_inputs(model, lmdb, labels, train_val, weights)
    _, prob_blob, feature_blob = deploy_blobs(model)
    backend = make_backend(model, weights, engine, gpu)
    table = read_table(index) if index is not None else None
    if table is not None:  # before the inference pass
        check_labels([(row.get("key", f"line {i}"), row.get("label", "")) for i, row in enumerate(table.rows, 2)],
                     classes, str(index))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(LmdbRecords(lmdb)), unit="img", desc="predict", leave=False)
    predictions = predict_lmdb(backend, lmdb, transform, prob_blob, feature_blob if with_features else None,
                               batch_size, progress=bar.update if bar is not None else None)
    if bar is not None:
        bar.close()
    check_labels(list(zip(predictions.keys, predictions.labels.tolist(), strict=True)), classes, str(lmdb))
    rows, columns = prediction_rows(predictions, classes, table)
    return ModelRun(rows=rows, columns=columns, classes=list(classes), predictions=predictions)


def check_labels(labels: Sequence[tuple[str, object]], classes: Sequence[str], source: str) -> None:
    """Every (record key, label) is -1 (unlabelled) or a class of the model; LabelError naming the first
    record that is not (its label, the classes' range) otherwise."""
    for key, label in labels:
        try:
            value = int(str(label).strip())
        except ValueError:
            raise LabelError(f"{source}: record {key}: label {label!r} is not an integer") from None
        if not -1 <= value < len(classes):
            raise LabelError(f"{source}: record {key}: label {value} is outside the model's {len(classes)} classes "
                             f"(0..{len(classes) - 1}, or -1 for unlabelled)")


def run_model_args(args: argparse.Namespace, with_features: bool = False) -> ModelRun:
    """:func:`run_model` with the options of :func:`mcnn.cli.add_model_arguments` (a progress bar on a terminal)."""
    return run_model(args.model, args.weights, args.lmdb, index=args.index, labels=args.labels,
                     train_val=args.train_val, batch_size=args.batch, engine=args.engine, gpu=args.gpu,
                     with_features=with_features, progress=not args.quiet and sys.stderr.isatty())
