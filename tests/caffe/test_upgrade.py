"""Old Caffe nets and solvers upgraded as Caffe's src/caffe/util/upgrade_proto.cpp does, and its refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb, upgrade
from mcnn.errors import CaffeFormatError, PrototxtError

# (message, field, number) facts of BVLC Caffe's src/caffe/proto/caffe.proto for the deprecated forms.
FIELD_NUMBERS = [
    ("NetParameter", "layers", 2), ("V1LayerParameter", "bottom", 2), ("V1LayerParameter", "top", 3),
    ("V1LayerParameter", "name", 4), ("V1LayerParameter", "type", 5), ("V1LayerParameter", "blobs", 6),
    ("V1LayerParameter", "blobs_lr", 7), ("V1LayerParameter", "weight_decay", 8),
    ("V1LayerParameter", "include", 32), ("V1LayerParameter", "exclude", 33), ("V1LayerParameter", "param", 1001),
    ("V1LayerParameter", "blob_share_mode", 1002), ("V1LayerParameter", "loss_weight", 35),
    ("V1LayerParameter", "convolution_param", 10), ("V1LayerParameter", "data_param", 11),
    ("V1LayerParameter", "inner_product_param", 17), ("V1LayerParameter", "pooling_param", 19),
    ("V1LayerParameter", "transform_param", 36), ("V1LayerParameter", "loss_param", 42),
    ("V1LayerParameter", "layer", 1), ("V0LayerParameter", "kernelsize", 8), ("V0LayerParameter", "blobs", 50),
    ("V0LayerParameter", "blobs_lr", 51), ("V0LayerParameter", "concat_dim", 65),
    ("V0LayerParameter", "hdf5_output_param", 1001), ("LayerParameter", "image_data_param", 115),
    ("LayerParameter", "window_data_param", 129), ("LayerParameter", "slice_param", 126),
    ("SolverParameter", "solver_type", 30), ("ImageDataParameter", "root_folder", 12),
]


@pytest.mark.parametrize(("message", "field", "number"), FIELD_NUMBERS)
def test_deprecated_field_numbers_match_caffe(message: str, field: str, number: int) -> None:
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number


def test_v1_enum_numbers_and_names() -> None:
    """Caffe's V1 LayerType numbers, and every one of them has its current type name."""
    enum = pb.V1LayerParameter.LayerType
    assert (enum.Value("CONVOLUTION"), enum.Value("DATA"), enum.Value("SOFTMAX_LOSS"), enum.Value("ABSVAL"),
            enum.Value("DECONVOLUTION"), enum.Value("THRESHOLD")) == (4, 5, 21, 35, 39, 31)
    assert sorted(upgrade.V1_TYPES) == sorted(enum.keys())
    assert [upgrade.V1_TYPES[n] for n in ("SOFTMAX_LOSS", "IM2COL", "TANH", "ABSVAL", "HDF5_DATA", "NONE")] == [
        "SoftmaxWithLoss", "Im2col", "TanH", "AbsVal", "HDF5Data", ""]


def _net(text: str) -> pb.NetParameter:
    return cio.parse_prototxt(text, pb.NetParameter)


V1_NET = """
name: "v1"
input: "extra"
input_shape { dim: 2 dim: 3 }
layers { name: "data" type: DATA top: "data" top: "label"
         data_param { source: "lmdb" batch_size: 4 backend: LMDB scale: 0.5 crop_size: 3 }
         include { phase: TRAIN } }
layers { name: "test_data" type: DATA top: "data" top: "label" data_param { source: "t" } exclude { phase: TRAIN } }
layers { name: "img" type: IMAGE_DATA top: "img" image_data_param { source: "l.txt" mirror: true mean_file: "m" } }
layers { name: "win" type: WINDOW_DATA top: "win" window_data_param { source: "w" scale: 2 } }
layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" param: "shared_w" blob_share_mode: PERMISSIVE
         blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 convolution_param { num_output: 4 kernel_size: 3 } }
layers { name: "slice" type: SLICE bottom: "conv" top: "a" top: "b" slice_param { slice_point: 2 } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "a" bottom: "label" top: "loss" loss_weight: 2
         loss_param { ignore_label: 1 } }
"""

V2_NET = """
name: "v1"
layer { name: "input" type: "Input" top: "extra" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { scale: 0.5 crop_size: 3 } data_param { source: "lmdb" batch_size: 4 backend: LMDB } }
layer { name: "test_data" type: "Data" top: "data" top: "label" exclude { phase: TRAIN }
        transform_param { } data_param { source: "t" } }
layer { name: "img" type: "ImageData" top: "img" transform_param { mirror: true mean_file: "m" }
        image_data_param { source: "l.txt" } }
layer { name: "win" type: "WindowData" top: "win" transform_param { scale: 2 } window_data_param { source: "w" } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        param { name: "shared_w" share_mode: PERMISSIVE lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "slice" type: "Slice" bottom: "conv" top: "a" top: "b" slice_param { slice_point: 2 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "a" bottom: "label" top: "loss" loss_weight: 2
        loss_param { ignore_label: 1 } }
"""


def test_v1_net_upgrades_to_the_current_form() -> None:
    """Types by name, blobs_lr/weight_decay/param names/share modes as param specs, include/exclude, every
    parameter message, V1 transformation fields into transform_param, input fields into a first Input layer."""
    net = _net(V1_NET)
    assert upgrade.net_needs_upgrade(net)
    done = upgrade.upgrade_net(net, "v1.prototxt")
    assert done.steps == ["transformation fields outside transform_param", "V1 'layers'", "net-level input fields"]
    assert done.problems == []
    assert net == _net(V2_NET), cio.format_prototxt(net)
    # Caffe's mutable_ calls leave an empty transform_param on every V1 data layer: it is present, not just default
    assert net.layer[2].HasField("transform_param") and not upgrade.net_needs_upgrade(net)


def test_v0_net_upgrades_through_v1() -> None:
    """Padding layers fold into the conv they feed, V0 fields land in their parameter messages, a field
    that does not apply is dropped and reported, and only name/input/input_dim/force_backward survive."""
    net = _net("""
        name: "v0" force_backward: true state { phase: TRAIN } debug_info: true
        input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
        layers { layer { name: "pad1" type: "padding" pad: 2 } bottom: "data" top: "pad1" }
        layers { layer { name: "conv1" type: "conv" num_output: 4 kernelsize: 5 stride: 2 group: 1 biasterm: false
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0 weight_filler { type: "xavier" } }
                 bottom: "pad1" top: "conv1" }
        layers { layer { name: "relu1" type: "relu" dropout_ratio: 0.3 } bottom: "conv1" top: "conv1" }
        layers { layer { name: "pool1" type: "pool" pool: AVE kernelsize: 2 stride: 2 pad: 1 } bottom: "conv1"
                 top: "pool1" }
        layers { layer { name: "norm1" type: "lrn" local_size: 3 alpha: 0.1 beta: 0.5 k: 2 } bottom: "pool1"
                 top: "norm1" }
        layers { layer { name: "fc" type: "innerproduct" num_output: 2 bias_filler { type: "constant" value: 1 } }
                 bottom: "norm1" top: "fc" }
        layers { layer { name: "cat" type: "concat" concat_dim: 0 } bottom: "fc" bottom: "fc" top: "cat" }
        layers { layer { name: "in" type: "data" source: "db" batchsize: 8 cropsize: 4 mirror: true scale: 0.1
                 meanfile: "m.binaryproto" rand_skip: 3 } top: "x" }
    """)
    done = upgrade.upgrade_net(net, "v0.prototxt")
    assert done.steps == ["V0 layers", "V1 'layers'", "net-level input fields"]
    assert done.problems == ["V0 layer 'relu1': parameter dropout_ratio does not apply to layer type 'relu'; "
                             "dropped"]
    assert net == _net("""
        name: "v0" force_backward: true
        layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
        layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
                param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
                convolution_param { num_output: 4 bias_term: false pad: 2 kernel_size: 5 group: 1 stride: 2
                                    weight_filler { type: "xavier" } } }
        layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
        layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
                pooling_param { pool: AVE kernel_size: 2 stride: 2 pad: 1 } }
        layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
                lrn_param { local_size: 3 alpha: 0.1 beta: 0.5 k: 2 } }
        layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc"
                inner_product_param { num_output: 2 bias_filler { type: "constant" value: 1 } } }
        layer { name: "cat" type: "Concat" bottom: "fc" bottom: "fc" top: "cat" concat_param { concat_dim: 0 } }
        layer { name: "in" type: "Data" top: "x" transform_param { scale: 0.1 mean_file: "m.binaryproto"
                crop_size: 4 mirror: true } data_param { source: "db" batch_size: 8 rand_skip: 3 } }
    """), cio.format_prototxt(net)


@pytest.mark.parametrize(("text", "message"), [
    ('layers { layer { name: "x" type: "frobnicate" } top: "x" }',
     r"v0\.prototxt: V0 layer 'x': unknown V0 layer type 'frobnicate'; known: accuracy, bnll"),
    ('input: "d" layers { layer { name: "p" type: "padding" pad: 1 } bottom: "d" top: "p" }'
     'layers { layer { name: "r" type: "relu" } bottom: "p" top: "r" }',
     r"V0 layer 1 \('r'\): a padding layer feeds a layer of type 'relu'; only conv and pool layers take padding"),
    ('layers { layer { name: "c" type: "conv" } bottom: "nowhere" top: "c" }',
     r"V0 layer 0 \('c'\): bottom 'nowhere' is neither a net input nor the top of an earlier layer"),
    ('layer { name: "new" type: "ReLU" } layers { name: "old" type: RELU }',
     r"the net has both 'layer' and V1 'layers' entries; write every layer in the current form"),
    ('layers { name: "old" bottom: "x" }', r"V1 layer 0 \('old'\) has no type"),
    ('input: "a" input: "b" input_dim: 1 input_dim: 2 input_dim: 3 input_dim: 4',
     r"2 net inputs need 8 input_dim values \(4 each\), got 4"),
    ('input: "a" input: "b" input_shape { dim: 1 }', r"2 net inputs but 1 input_shape entries"),
])
def test_what_caffe_refuses_is_one_line_naming_file_and_layer(text: str, message: str) -> None:
    with pytest.raises(CaffeFormatError, match=message) as info:
        upgrade.upgrade_net(_net(text), "v0.prototxt", error=CaffeFormatError)
    assert str(info.value).startswith("v0.prototxt: ") and "\n" not in str(info.value)


def test_legacy_model_inputs_are_dropped_and_batch_norm_specs_fixed() -> None:
    """An input without shape (an old caffemodel) is simply removed; a BatchNorm with 3 param specs gets
    lr_mult and decay_mult 0 (Caffe's UpgradeNetBatchNorm), one with none is left alone."""
    net = _net('input: "data" layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 } '
               'param { lr_mult: 1 decay_mult: 3 } } layer { name: "bn2" type: "BatchNorm" }')
    done = upgrade.upgrade_net(net, "m")
    assert done.steps == ["net-level input fields", "BatchNorm 'bn' param specs (lr_mult, decay_mult 0)"]
    assert len(net.input) == 0 and [layer.name for layer in net.layer] == ["bn", "bn2"]
    assert [(s.lr_mult, s.decay_mult) for s in net.layer[0].param] == [(0, 0)] * 3 and not len(net.layer[1].param)


@pytest.mark.parametrize(("enum", "name"), [("SGD", "SGD"), ("NESTEROV", "Nesterov"), ("ADAGRAD", "AdaGrad"),
                                            ("RMSPROP", "RMSProp"), ("ADADELTA", "AdaDelta"), ("ADAM", "Adam")])
def test_solver_type_enum_becomes_type(tmp_path: Path, enum: str, name: str,
                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old_solver.prototxt"
    path.write_text(f'net: "n.prototxt" base_lr: 0.01 solver_type: {enum}\n')
    with caplog.at_level(logging.WARNING, logger="mcnn.caffe.upgrade"):
        solver = cio.read_solver(path)
    assert solver.type == name and not solver.HasField("solver_type")
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: upgraded the deprecated solver_type enum (now type: {name!r}) to the current format (future "
        "Caffe releases drop them; tools/upgrade_solver.py writes the upgraded file)"]


def test_solver_refusals(tmp_path: Path) -> None:
    path = tmp_path / "s.prototxt"
    path.write_text('type: "Adam" solver_type: ADAM\n')
    with pytest.raises(PrototxtError, match=r"s\.prototxt: both the deprecated solver_type \(ADAM\) and type "
                                            r"\('Adam'\) are set; keep only type"):
        cio.read_solver(path)
    path.write_text('test_net_param { name: "x" } test_net_param { layers { name: "a" type: RELU } }\n')
    with pytest.raises(PrototxtError, match=r"test_net_param 1 uses V1 'layers'; Caffe upgrades only nets read "
                                            "from files"):
        cio.read_solver(path)
    path.write_text('type: "Adam"\n')
    current = cio.read_solver(path)
    assert current.type == "Adam" and not upgrade.upgrade_solver(current, "s")


def test_read_net_and_read_caffemodel_upgrade_and_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The one place files are read upgrades them and says so; a current file is read silently."""
    text = tmp_path / "old.prototxt"
    text.write_text('layers { name: "fc" type: INNER_PRODUCT bottom: "x" top: "y" '
                    'inner_product_param { num_output: 2 } }\n')
    model = pb.NetParameter()
    layer = model.layers.add(name="fc", type=pb.V1LayerParameter.INNER_PRODUCT)
    layer.blobs.add(num=1, channels=1, height=2, width=3).data.extend(range(6))
    binary = tmp_path / "old.caffemodel"
    binary.write_bytes(model.SerializeToString())
    with caplog.at_level(logging.WARNING, logger="mcnn.caffe.upgrade"):
        net = cio.read_net(text)
        weights = cio.net_weights(cio.read_caffemodel(binary))
        cio.write_prototxt(tmp_path / "current.prototxt", net)
        assert cio.read_net(tmp_path / "current.prototxt") == net
    assert net.layer[0].type == "InnerProduct" and net.layer[0].inner_product_param.num_output == 2
    assert weights["fc"][0].shape == (1, 1, 2, 3) and weights["fc"][0].ravel().tolist() == list(range(6))
    assert [r.getMessage().split(" to the current")[0] for r in caplog.records] == [
        f"{text}: upgraded the deprecated V1 'layers'", f"{binary}: upgraded the deprecated V1 'layers'"]
