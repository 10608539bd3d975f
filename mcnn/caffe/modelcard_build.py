"""Building a model card (:mod:`mcnn.caffe.modelcard`) from what a training run used.

:func:`training_card` reads the solver, its train_val net (the TEST Data layer's preprocessing and
LMDBs), the prepared dataset around the LMDBs (data_prep's ``dataset.json``: name, split, class
names, channels, intensity mapping) and the versions of what ran; ``tools/train.py`` (through
:mod:`mcnn.training`) and :mod:`mcnn.reproduce` write its result beside the final caffemodel.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from mcnn.caffe import io as cio
from mcnn.caffe.modelcard import Architecture, Dataset, ModelCard, Preprocessing, Training, write_card
from mcnn.caffe.netstate import filter_net
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.caffe.solver_rules import snapshot_prefix
from mcnn.caffe.transform import LmdbRecords, data_transform
from mcnn.errors import BadInputError, ConfigError
from mcnn.machine import describe

PathLike = str | os.PathLike[str]


def _repeated(fd: FieldDescriptor) -> bool:
    """Whether ``fd`` is a repeated field (``is_repeated`` in protobuf >= 5.28, ``label`` before)."""
    flag = getattr(fd, "is_repeated", None)
    return bool(flag) if flag is not None else fd.label == FieldDescriptor.LABEL_REPEATED


def message_dict(msg: Message) -> dict[str, Any]:
    """The set fields of a protobuf message as JSON values, by Caffe's field names (enums by name,
    float32 fields rounded to the 7 digits they hold)."""
    out: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        def one(v: Any, fd: FieldDescriptor = fd) -> Any:
            if fd.type == FieldDescriptor.TYPE_MESSAGE:
                return message_dict(v)
            if fd.type == FieldDescriptor.TYPE_ENUM:
                return fd.enum_type.values_by_number[v].name
            if fd.type == FieldDescriptor.TYPE_FLOAT:
                return float(f"{v:.7g}")
            return v.hex() if isinstance(v, bytes) else v
        out[fd.name] = [one(v) for v in value] if _repeated(fd) else one(value)
    return out


def _resolve(path: str, *bases: Path) -> Path | None:
    """``path`` as Caffe opens it (relative to the working folder), else relative to one of ``bases``."""
    p = Path(path)
    if p.exists():
        return p.resolve()
    return next(((b / p).resolve() for b in bases if not p.is_absolute() and (b / p).exists()), None)


def data_layer_transform(net: pb.NetParameter, source: str) -> tuple[pb.TransformationParameter, pb.LayerParameter]:
    """The TEST-phase Data layer of ``net`` and its transform_param (DataParameter's deprecated copies included)."""
    for layer in filter_net(net, pb.TEST).layer:
        if layer.type == "Data":
            return data_transform(layer), layer
    raise ConfigError(f"{source}: no TEST-phase Data layer to take the preprocessing from")


def class_count(net: pb.NetParameter) -> int | None:
    """Outputs of the InnerProduct feeding the net's last Softmax/SoftmaxWithLoss (None if not found)."""
    heads = [layer for layer in net.layer if layer.type in ("Softmax", "SoftmaxWithLoss")]
    if not heads:
        return None
    ip = next((layer for layer in net.layer if layer.type == "InnerProduct" and heads[-1].bottom[0] in layer.top), None)
    return int(ip.inner_product_param.num_output) if ip is not None else None


def make_net_command(net_file: PathLike) -> tuple[str | None, str | None]:
    """(the ``python tools/make_net.py ...`` command in a net file's header, its ``--arch``)."""
    text = " ".join(line.strip() for line in cio.header_lines(Path(net_file).read_text(encoding="utf-8")))
    start = text.find("`python tools/make_net.py")
    if start < 0:
        return None, None
    command = text[start + 1: text.find("`", start + 1)]
    argv = shlex.split(command)
    arch = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--arch"), None)
    arch = arch or next((a.split("=", 1)[1] for a in argv if a.startswith("--arch=")), "mcnn")
    return command, arch


def dataset_of(lmdb: Path) -> tuple[Dataset, dict[str, Any]]:
    """The prepared dataset an LMDB belongs to (``dataset.json`` in it or up to 3 folders above, as
    data_prep lays it out) and that file's content; an empty :class:`Dataset` outside one."""
    resolved = lmdb.resolve()
    root = next((p for p in [resolved, *resolved.parents[:3]] if (p / "dataset.json").is_file()), None)
    if root is None:
        return Dataset(test_lmdb=str(resolved)), {}
    try:
        info = json.loads((root / "dataset.json").read_text(encoding="utf-8"))
    except ValueError:
        raise BadInputError(str(root / "dataset.json"), "not JSON") from None
    split = resolved.parent.name if resolved.parent.parent == root / "splits" else None
    entry = next((s for s in info.get("splits", []) if s.get("name") == split), {})
    return Dataset(name=info.get("dataset"), root=str(root), protocol=info.get("protocol"), split=split,
                   test_lmdb=str(resolved), train_size=entry.get("train"), test_size=entry.get("test"),
                   seed=info.get("seed")), info


def find_labels(lmdb: PathLike) -> Path | None:
    """A labels.txt in the LMDB's folder or up to three folders above (a prepared dataset's layout)."""
    folder = Path(lmdb).resolve()
    return next((p / "labels.txt" for p in [folder, *folder.parents[:3]] if (p / "labels.txt").is_file()), None)


def versions() -> dict[str, str | None]:
    """Versions of mcnn, Python and torch (None when not installed; the caffe engine's image may lack it)."""
    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    torch = sys.modules.get("torch")
    return {"mcnn": installed("mcnn"), "python": platform.python_version(),
            "torch": getattr(torch, "__version__", None) or installed("torch")}


def _preprocessing(transform: pb.TransformationParameter, bases: list[Path], info: dict[str, Any],
                   lmdb: Path | None, root: str | None) -> Preprocessing:
    """The card's preprocessing section (``info``: the dataset.json content in ``root``, may be empty)."""
    tp = pb.TransformationParameter()
    tp.CopyFrom(transform)
    if tp.mean_file:
        found = _resolve(tp.mean_file, *bases)
        tp.mean_file = str(found) if found is not None else tp.mean_file
    if info.get("channels"):
        record = [len(info["channels"]), int(info["height"]), int(info["width"])]
    elif lmdb is not None and (lmdb / "data.mdb").is_file():
        record = list(LmdbRecords(lmdb).shape)
    else:
        raise ConfigError(f"{lmdb}: no LMDB and no dataset.json to take the input shape from")
    crop = int(tp.crop_size)
    intensity = info.get("intensity")
    if intensity is not None and root and (Path(root) / "normalization.json").is_file():
        intensity = {**intensity, "statistics": str(Path(root) / "normalization.json")}
    return Preprocessing(input_shape=[record[0], crop, crop] if crop else record, transform_param=message_dict(tp),
                         channels=info.get("channels"), record_shape=record, intensity=intensity)


@dataclass
class _TrainNet:
    """What a solver trains: the train_val net, its file (None when inline), the folders relative paths
    are tried in, the TEST transform and the TEST/TRAIN LMDBs (None when not found)."""

    net: pb.NetParameter
    file: Path | None
    bases: list[Path]
    transform: pb.TransformationParameter
    test_lmdb: Path | None
    train_lmdb: Path | None

    @classmethod
    def of(cls, solver: pb.SolverParameter, solver_file: PathLike) -> _TrainNet:
        """The train net of ``solver``: ``net``/``train_net`` relative to the working folder, else the solver's."""
        base = Path(solver_file).resolve().parent
        name = solver.net or solver.train_net
        file = _resolve(name, base) if name else None
        if name and file is None:
            raise ConfigError(f"{solver_file}: net {name!r} not found")
        net = cio.read_net(file) if file is not None else solver.net_param
        bases = [file.parent, base] if file is not None else [base]
        transform, layer = data_layer_transform(net, str(file or solver_file))
        train = next((x for x in filter_net(net, pb.TRAIN).layer if x.type == "Data"), None)  # LMDB data only
        return cls(net, file, bases, transform, _resolve(layer.data_param.source, *bases),
                   _resolve(train.data_param.source, *bases) if train is not None else None)

    def classes(self, info: dict[str, Any]) -> tuple[int, list[str] | None]:
        """(the classifier's outputs, the class names: dataset.json's, else a labels.txt near the test LMDB)."""
        source = str(self.file or "the solver's net_param")
        count = class_count(self.net)
        if count is None:
            raise ConfigError(f"{source}: no InnerProduct before a Softmax: cannot tell the number of classes")
        classes = info.get("classes")
        labels = find_labels(self.test_lmdb) if classes is None and self.test_lmdb is not None else None
        if labels is not None:
            classes = [n.strip() for n in labels.read_text(encoding="utf-8").splitlines() if n.strip()]
        if classes is not None and len(classes) != count:
            raise ConfigError(f"{source}: the net has {count} outputs, the dataset of {self.test_lmdb} names "
                              f"{len(classes)} classes")
        return count, classes

    def architecture(self, count: int, arch: str | None, options: dict[str, Any] | None) -> Architecture:
        """The card's architecture section (``arch`` default: the ``--arch`` of the header's make_net command)."""
        command, header_arch = make_net_command(self.file) if self.file is not None else (None, None)
        deploy = None
        if self.file is not None and self.file.name.endswith("_train_val.prototxt"):
            sibling = self.file.with_name(self.file.name[: -len("_train_val.prototxt")] + "_deploy.prototxt")
            deploy = str(sibling) if sibling.is_file() else None
        return Architecture(net=self.net.name, num_classes=count, arch=arch or header_arch,
                            options=json.loads(json.dumps(options or {})), generated_by=command,
                            train_val=str(self.file) if self.file else None, deploy=deploy)


def training_card(solver_file: PathLike, caffemodel: PathLike, *, engine: str, iterations: int,
                  arch: str | None = None, options: dict[str, Any] | None = None, weights: list[str] | None = None,
                  resumed_from: str | None = None, stopped_early: bool = False, gpu: int | None = None,
                  metrics: dict[str, Any] | None = None) -> ModelCard:
    """The card of ``caffemodel``, trained by the solver ``solver_file`` for ``iterations`` on ``engine``.

    The train_val net is the solver's ``net``/``train_net`` (relative to the working folder, else to the
    solver's): its TEST Data layer gives the preprocessing and test LMDB, which locates the prepared
    dataset (class names, channels, intensity mapping; else a labels.txt near the LMDB). ``arch`` and
    ``options`` are the builder's (default: the make_net.py command of the net's header, no options);
    ``gpu`` is the device trained on (None: the CPU), ``metrics`` the test results known so far.
    """
    solver = cio.read_solver(solver_file)
    train = _TrainNet.of(solver, solver_file)
    dataset, info = dataset_of(train.test_lmdb) if train.test_lmdb is not None else (Dataset(), {})
    dataset.train_lmdb = str(train.train_lmdb) if train.train_lmdb is not None else None
    count, classes = train.classes(info)
    training = Training(engine=engine, iterations=iterations, seed=int(solver.random_seed),
                        solver_file=str(Path(solver_file).resolve()), weights=[str(w) for w in weights or []],
                        resumed_from=resumed_from, stopped_early=stopped_early, hardware=describe(gpu))
    return ModelCard(caffemodel=Path(caffemodel).name, architecture=train.architecture(count, arch, options),
                     preprocessing=_preprocessing(train.transform, train.bases, info, train.test_lmdb, dataset.root),
                     training=training, solver=message_dict(solver), dataset=dataset, classes=classes,
                     versions=versions(), metrics=metrics or {},
                     created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def final_caffemodel(solver_file: PathLike, iterations: int) -> Path:
    """The caffemodel a run of ``solver_file`` writes at ``iterations`` (Caffe's snapshot name)."""
    solver = cio.read_solver(solver_file)
    prefix = snapshot_prefix(solver, str(solver_file))
    h5 = ".h5" if solver.snapshot_format == pb.SolverParameter.HDF5 else ""
    return Path(f"{prefix}_iter_{iterations}.caffemodel{h5}")


def write_training_card(solver_file: PathLike, iterations: int, *, engine: str = "torch",
                        snapshots: list[Path] | None = None, weights: list[str] | None = None,
                        resumed_from: str | None = None, stopped_early: bool = False, gpu: int | None = None,
                        test_outputs: dict[str, float] | None = None) -> Path | None:
    """Write the card of the caffemodel a run of ``solver_file`` left at ``iterations``; returns its path.

    ``snapshots`` are the caffemodels this process wrote (None: unknown, e.g. spawned GPU processes): the
    card is written only when the final caffemodel is among them and exists, so a run that did not
    snapshot its last iteration, or a non-root process, writes none. ``test_outputs`` are the last
    values of the solver's test nets (e.g. accuracy, loss), recorded as the card's metrics.
    """
    final = final_caffemodel(solver_file, iterations)
    if snapshots is not None and final.resolve() not in {Path(s).resolve() for s in snapshots}:
        return None
    if not final.is_file():
        return None
    metrics = {"source": "solver test nets", "iteration": iterations, "outputs": test_outputs} if test_outputs else {}
    card = training_card(solver_file, final, engine=engine, iterations=iterations, weights=weights,
                         resumed_from=resumed_from, stopped_early=stopped_early, gpu=gpu, metrics=metrics)
    return write_card(card, final)
