"""Old Caffe files made current, as Caffe does when it reads them (``src/caffe/util/upgrade_proto.cpp``).

Nets (text prototxt and ``.caffemodel``) go through the same steps in Caffe's order:

1. V0 -> V1: a ``layers { layer { type: "conv" ... } }`` net (one flat V0 message per layer) gets
   V1 layers with typed parameter messages; ``padding`` layers fold into the conv/pool they feed.
2. V1 data transformation: ``scale``/``mean_file``/``crop_size``/``mirror`` inside the
   data/image/window parameters of V1 data layers move to ``transform_param``.
3. V1 -> V2: ``layers { type: CONVOLUTION blobs_lr: 1 ... }`` becomes ``layer { type: "Convolution"
   param { lr_mult: 1 } ... }`` (the blobs of a V1 caffemodel move along).
4. Net-level ``input``/``input_dim``/``input_shape`` become a first ``Input`` layer named ``input``.
5. A ``BatchNorm`` with three ``param`` specs gets ``lr_mult: 0`` and ``decay_mult: 0`` on each.

Solvers: the deprecated ``solver_type`` enum becomes the ``type`` string. Inputs Caffe refuses (a
fatal CHECK there) raise the caller's error class with one line; parameters Caffe drops with an error
line ("not fully compatible") are returned as problems and the upgrade goes on. The readers in
:mod:`mcnn.caffe.io` apply these and log what they upgraded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import message as _message

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import McnnError, PrototxtError

ErrorType = Callable[[str], McnnError]

_V1 = pb.V1LayerParameter

#: V0 layer type strings -> V1 enum values (the types a V0 net could name).
V0_TYPES: dict[str, int] = {
    "accuracy": _V1.ACCURACY, "bnll": _V1.BNLL, "concat": _V1.CONCAT, "conv": _V1.CONVOLUTION,
    "data": _V1.DATA, "dropout": _V1.DROPOUT, "euclidean_loss": _V1.EUCLIDEAN_LOSS, "flatten": _V1.FLATTEN,
    "hdf5_data": _V1.HDF5_DATA, "hdf5_output": _V1.HDF5_OUTPUT, "im2col": _V1.IM2COL, "images": _V1.IMAGE_DATA,
    "infogain_loss": _V1.INFOGAIN_LOSS, "innerproduct": _V1.INNER_PRODUCT, "lrn": _V1.LRN,
    "multinomial_logistic_loss": _V1.MULTINOMIAL_LOGISTIC_LOSS, "pool": _V1.POOLING, "relu": _V1.RELU,
    "sigmoid": _V1.SIGMOID, "softmax": _V1.SOFTMAX, "softmax_loss": _V1.SOFTMAX_LOSS, "split": _V1.SPLIT,
    "tanh": _V1.TANH, "window_data": _V1.WINDOW_DATA,
}

#: V1 enum names -> current layer type strings (NONE has the empty name, as in Caffe).
V1_TYPES: dict[str, str] = {
    "NONE": "", "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution", "DATA": "Data", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss", "MVN": "MVN",
    "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

#: The deprecated solver_type enum names -> the ``type`` strings.
SOLVER_TYPES: dict[str, str] = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad",
                                "RMSPROP": "RMSProp", "ADADELTA": "AdaDelta", "ADAM": "Adam"}

_CONV, _IP, _POOL = "convolution_param", "inner_product_param", "pooling_param"
_SOURCES = ("data", "hdf5_data", "images", "window_data")
_PARAM_OF = {"data": "data_param", "hdf5_data": "hdf5_data_param", "images": "image_data_param",
             "window_data": "window_data_param", "infogain_loss": "infogain_loss_param"}
_ANY = "*"

#: V0 field -> {V0 layer type (or "*": any type): (V1 parameter message, its field)}. A field set on a
#: type it has no route for is dropped with a problem, as Caffe's UpgradeV0LayerParameter does.
V0_ROUTES: dict[str, dict[str, tuple[str, str]]] = {
    "num_output": {"conv": (_CONV, "num_output"), "innerproduct": (_IP, "num_output")},
    "biasterm": {"conv": (_CONV, "bias_term"), "innerproduct": (_IP, "bias_term")},
    "weight_filler": {"conv": (_CONV, "weight_filler"), "innerproduct": (_IP, "weight_filler")},
    "bias_filler": {"conv": (_CONV, "bias_filler"), "innerproduct": (_IP, "bias_filler")},
    "pad": {"conv": (_CONV, "pad"), "pool": (_POOL, "pad")},
    "kernelsize": {"conv": (_CONV, "kernel_size"), "pool": (_POOL, "kernel_size")},
    "group": {"conv": (_CONV, "group")},
    "stride": {"conv": (_CONV, "stride"), "pool": (_POOL, "stride")},
    "pool": {"pool": (_POOL, "pool")},  # the two PoolMethod enums number MAX, AVE, STOCHASTIC alike
    "dropout_ratio": {"dropout": ("dropout_param", "dropout_ratio")},
    **{f: {"lrn": ("lrn_param", f)} for f in ("local_size", "alpha", "beta", "k")},
    "source": {t: (_PARAM_OF[t], "source") for t in (*_SOURCES, "infogain_loss")},
    "scale": {_ANY: ("transform_param", "scale")},
    "meanfile": {_ANY: ("transform_param", "mean_file")},
    "batchsize": {t: (_PARAM_OF[t], "batch_size") for t in _SOURCES},
    "cropsize": {_ANY: ("transform_param", "crop_size")},
    "mirror": {_ANY: ("transform_param", "mirror")},
    "rand_skip": {t: (_PARAM_OF[t], "rand_skip") for t in ("data", "images")},
    "shuffle_images": {"images": ("image_data_param", "shuffle")},
    "new_height": {"images": ("image_data_param", "new_height")},
    "new_width": {"images": ("image_data_param", "new_width")},
    "concat_dim": {"concat": ("concat_param", "concat_dim")},
    "det_fg_threshold": {"window_data": ("window_data_param", "fg_threshold")},
    "det_bg_threshold": {"window_data": ("window_data_param", "bg_threshold")},
    "det_fg_fraction": {"window_data": ("window_data_param", "fg_fraction")},
    "det_context_pad": {"window_data": ("window_data_param", "context_pad")},
    "det_crop_mode": {"window_data": ("window_data_param", "crop_mode")},
    "hdf5_output_param": {"hdf5_output": ("hdf5_output_param", "")},
}

#: V1 data layer types -> the parameter message whose transformation fields move to transform_param.
_DATA_PARAMS = {_V1.DATA: "data_param", _V1.IMAGE_DATA: "image_data_param", _V1.WINDOW_DATA: "window_data_param"}
_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


# -- nets -------------------------------------------------------------------------------------------

def net_needs_upgrade(net: pb.NetParameter) -> bool:
    """Whether ``net`` uses any deprecated form :func:`upgrade_net` rewrites (Caffe's NetNeedsUpgrade)."""
    return bool(len(net.layers) or _needs_input_upgrade(net) or _batch_norms_to_fix(net))


@dataclass
class NetUpgrade:
    """What :func:`upgrade_net` did: the deprecated forms it rewrote, in order, and the problems
    (parameters dropped because they do not apply to their layer; Caffe's "not fully compatible")."""

    steps: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def upgrade_net(net: pb.NetParameter, source: str, error: ErrorType = PrototxtError) -> NetUpgrade:
    """Upgrade ``net`` in place to the current format, step by step as Caffe's UpgradeNetAsNeeded.

    ``source`` names the file in messages; ``error`` is the exception class for what Caffe refuses
    (e.g. :class:`PrototxtError` for text, :class:`CaffeFormatError` for caffemodels).
    """
    done = NetUpgrade()
    if any(layer.HasField("layer") for layer in net.layers):
        done.problems += _v0_to_v1(net, source, error)
        done.steps.append("V0 layers")
    if _needs_data_upgrade(net):
        _move_transformations(net)
        done.steps.append("transformation fields outside transform_param")
    if len(net.layers):
        done.problems += _v1_to_v2(net, source, error)
        done.steps.append("V1 'layers'")
    if _needs_input_upgrade(net):
        _inputs_to_layer(net, source, error)
        done.steps.append("net-level input fields")
    for layer in _batch_norms_to_fix(net):
        for spec in layer.param:
            spec.lr_mult, spec.decay_mult = 0.0, 0.0
        done.steps.append(f"BatchNorm {layer.name!r} param specs (lr_mult, decay_mult 0)")
    return done


# -- V0 -> V1 ---------------------------------------------------------------------------------------

def _v0_to_v1(net: pb.NetParameter, source: str, error: ErrorType) -> list[str]:
    """Caffe's UpgradeV0Net: padding layers folded, each V0 layer rewritten; only name, input,
    input_dim and force_backward survive at the net level."""
    padded = _fold_padding(net, source, error)
    problems: list[str] = []
    old_name, old_force = net.HasField("name"), net.HasField("force_backward")
    name, force, inputs, dims = net.name, net.force_backward, list(net.input), list(net.input_dim)
    net.Clear()
    if old_name:
        net.name = name
    for connection in padded.layers:
        problems += _v0_layer(connection, net.layers.add(), source, error)
    net.input.extend(inputs)
    net.input_dim.extend(dims)
    if old_force:
        net.force_backward = force
    return problems


def _fold_padding(net: pb.NetParameter, source: str, error: ErrorType) -> pb.NetParameter:
    """Caffe's UpgradeV0PaddingLayers: drop ``padding`` layers, giving their pad to the conv or pool fed."""
    out = pb.NetParameter()
    out.CopyFrom(net)
    out.ClearField("layers")
    producer: dict[str, int] = dict.fromkeys(net.input, -1)  # blob -> index of the last layer writing it
    for i, connection in enumerate(net.layers):
        v0 = connection.layer
        if v0.type != "padding":
            out.layers.add().CopyFrom(connection)
        for j, blob in enumerate(connection.bottom):
            if blob not in producer:
                raise error(f"{source}: V0 layer {i} ({v0.name!r}): bottom {blob!r} is neither a net input nor "
                            "the top of an earlier layer")
            k = producer[blob]
            if k == -1 or net.layers[k].layer.type != "padding":
                continue
            pad = net.layers[k]
            if v0.type not in ("conv", "pool"):
                raise error(f"{source}: V0 layer {i} ({v0.name!r}): a padding layer feeds a layer of type "
                            f"{v0.type!r}; only conv and pool layers take padding")
            if len(connection.bottom) != 1 or len(pad.bottom) != 1 or len(pad.top) != 1:
                raise error(f"{source}: V0 layer {i} ({v0.name!r}): a padding layer and the layer it feeds must "
                            "each have one bottom (and the padding layer one top)")
            out.layers[-1].layer.pad = pad.layer.pad
            out.layers[-1].bottom[j] = pad.bottom[0]
        for blob in connection.top:
            producer[blob] = i
    return out


def _v0_layer(connection: pb.V1LayerParameter, out: pb.V1LayerParameter, source: str,
              error: ErrorType) -> list[str]:
    """Caffe's UpgradeV0LayerParameter: bottoms, tops and the V0 layer's fields; nothing else of ``connection``."""
    out.bottom.extend(connection.bottom)
    out.top.extend(connection.top)
    if not connection.HasField("layer"):
        return []
    v0 = connection.layer
    if v0.HasField("name"):
        out.name = v0.name
    if v0.HasField("type"):
        if v0.type not in V0_TYPES:
            raise error(f"{source}: V0 layer {v0.name!r}: unknown V0 layer type {v0.type!r}; "
                        f"known: {', '.join(V0_TYPES)}")
        out.type = V0_TYPES[v0.type]  # type: ignore[assignment]
    out.blobs.extend(v0.blobs)
    out.blobs_lr.extend(v0.blobs_lr)
    out.weight_decay.extend(v0.weight_decay)
    problems = []
    for name, routes in V0_ROUTES.items():
        if not v0.HasField(name):
            continue
        route = routes.get(v0.type) or routes.get(_ANY)
        if route is None:
            problems.append(f"V0 layer {v0.name!r}: parameter {name} does not apply to layer type "
                            f"{v0.type!r}; dropped")
            continue
        _put(out, route, getattr(v0, name))
    return problems


def _put(layer: _message.Message, route: tuple[str, str], value: Any) -> None:
    """Set ``route`` = (parameter message, field) of ``layer`` to ``value`` (appended to a repeated field;
    an empty field name copies a whole message)."""
    param, name = route
    target = getattr(layer, param)
    if not name:
        target.CopyFrom(value)
    elif isinstance(value, _message.Message):
        getattr(target, name).CopyFrom(value)
    elif hasattr(getattr(target, name), "append"):
        getattr(target, name).append(value)
    else:
        setattr(target, name, value)


# -- V1 data transformation -------------------------------------------------------------------------

def _needs_data_upgrade(net: pb.NetParameter) -> bool:
    """Caffe's NetNeedsDataUpgrade: a V1 data layer with a transformation field in its own parameters."""
    return any(layer.type in _DATA_PARAMS and any(getattr(layer, _DATA_PARAMS[layer.type]).HasField(f)
                                                  for f in _TRANSFORM_FIELDS)
               for layer in net.layers)


def _move_transformations(net: pb.NetParameter) -> None:
    """Caffe's UpgradeNetDataTransformation; every V1 data layer gets both messages, as its mutable_ calls do."""
    for layer in net.layers:
        if layer.type not in _DATA_PARAMS:
            continue
        param = getattr(layer, _DATA_PARAMS[layer.type])
        param.SetInParent()
        layer.transform_param.SetInParent()
        for name in _TRANSFORM_FIELDS:
            if param.HasField(name):
                setattr(layer.transform_param, name, getattr(param, name))
                param.ClearField(name)


# -- V1 -> V2 ---------------------------------------------------------------------------------------

def _v1_to_v2(net: pb.NetParameter, source: str, error: ErrorType) -> list[str]:
    """Caffe's UpgradeV1Net: every ``layers`` entry becomes a ``layer``; the rest of the net stays."""
    if len(net.layer):
        raise error(f"{source}: the net has both 'layer' and V1 'layers' entries; write every layer in the "
                    "current form layer {{ type: \"Type\" ... }} (Caffe refuses this mix too)")
    problems = []
    for i, v1 in enumerate(net.layers):
        if not v1.HasField("type"):
            raise error(f"{source}: V1 layer {i} ({v1.name!r}) has no type")
        problems += _v1_layer(v1, net.layer.add(), i)
    net.ClearField("layers")
    return problems


def _v1_layer(v1: pb.V1LayerParameter, out: pb.LayerParameter, index: int) -> list[str]:
    """Caffe's UpgradeV1LayerParameter: names, rules, blobs, per-blob param specs and every parameter message."""
    out.bottom.extend(v1.bottom)
    out.top.extend(v1.top)
    if v1.HasField("name"):
        out.name = v1.name
    out.include.extend(v1.include)
    out.exclude.extend(v1.exclude)
    out.type = V1_TYPES[_V1.LayerType.Name(v1.type)]
    out.blobs.extend(v1.blobs)
    for values, attr in ((v1.param, "name"), (v1.blob_share_mode, "share_mode"), (v1.blobs_lr, "lr_mult"),
                         (v1.weight_decay, "decay_mult")):
        for i, value in enumerate(values):
            while len(out.param) <= i:
                out.param.add()
            setattr(out.param[i], attr, value)  # the two DimCheckMode enums number STRICT, PERMISSIVE alike
    out.loss_weight.extend(v1.loss_weight)
    for descriptor, value in v1.ListFields():
        if descriptor.name.endswith("_param"):
            getattr(out, descriptor.name).CopyFrom(value)
    if v1.HasField("layer"):
        return [f"V1 layer {index} ({v1.name!r}) still holds a V0 layer; ignored"]
    return []


# -- input fields and BatchNorm ---------------------------------------------------------------------

def _needs_input_upgrade(net: pb.NetParameter) -> bool:
    return len(net.input) > 0


def _inputs_to_layer(net: pb.NetParameter, source: str, error: ErrorType) -> None:
    """Caffe's UpgradeNetInput: an ``Input`` layer first (when shapes are given), the fields cleared.

    Without ``input_shape`` or ``input_dim`` (an old caffemodel) the fields are simply dropped.
    """
    names, shapes, dims = list(net.input), list(net.input_shape), list(net.input_dim)
    if shapes or dims:
        if shapes and len(shapes) < len(names):
            raise error(f"{source}: {len(names)} net inputs but {len(shapes)} input_shape entries; give one "
                        "per input")
        if not shapes and len(dims) < 4 * len(names):
            raise error(f"{source}: {len(names)} net inputs need {4 * len(names)} input_dim values (4 each), "
                        f"got {len(dims)}")
        rebuilt = pb.NetParameter()
        layer = rebuilt.layer.add(name="input", type="Input", top=names)
        for i in range(len(names)):
            shape = layer.input_param.shape.add()
            shape.dim.extend(shapes[i].dim if shapes else dims[4 * i:4 * i + 4])
        rebuilt.layer.extend(net.layer)
        net.ClearField("layer")
        net.layer.extend(rebuilt.layer)
    for name in ("input", "input_shape", "input_dim"):
        net.ClearField(name)


def _batch_norms_to_fix(net: pb.NetParameter) -> list[pb.LayerParameter]:
    """Caffe's NetNeedsBatchNormUpgrade: BatchNorm layers declaring three param specs (the old form)."""
    return [layer for layer in net.layer if layer.type == "BatchNorm" and len(layer.param) == 3]


# -- solvers ----------------------------------------------------------------------------------------

def solver_needs_upgrade(solver: pb.SolverParameter) -> bool:
    """Whether ``solver`` sets the deprecated ``solver_type`` enum (Caffe's SolverNeedsTypeUpgrade)."""
    return solver.HasField("solver_type")


def upgrade_solver(solver: pb.SolverParameter, source: str, error: ErrorType = PrototxtError) -> bool:
    """Turn ``solver_type`` into ``type`` in place (Caffe's UpgradeSolverAsNeeded); True if it did.

    Both fields set is refused as Caffe refuses it. Inline nets (``net_param``, ``train_net_param``,
    ``test_net_param``) in V1 form are refused too: Caffe never upgrades them, so they would build
    nets without layers.
    """
    for name in ("net_param", "train_net_param", "test_net_param"):
        nets = getattr(solver, name)
        for i, net in enumerate(nets if name == "test_net_param" else [nets]):
            if len(net.layers):
                where = f"{name} {i}" if name == "test_net_param" else name
                raise error(f"{source}: {where} uses V1 'layers'; Caffe upgrades only nets read from files: put "
                            "the net in its own file or upgrade it with tools/upgrade_net.py")
    if not solver_needs_upgrade(solver):
        return False
    old = pb.SolverParameter.SolverType.Name(solver.solver_type)
    if solver.HasField("type"):
        raise error(f"{source}: both the deprecated solver_type ({old}) and type ({solver.type!r}) are set; "
                    "keep only type")
    solver.type = SOLVER_TYPES[old]
    solver.ClearField("solver_type")
    return True
