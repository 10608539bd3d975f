"""The schema: Caffe's message and field names, numbers and defaults; the generated module is current."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2

from mcnn.caffe import pb, protogen
from tests.support import run_script

# (message, field, number) facts of BVLC Caffe's src/caffe/proto/caffe.proto.
FIELD_NUMBERS = [
    ("NetParameter", "name", 1), ("NetParameter", "input", 3), ("NetParameter", "input_dim", 4),
    ("NetParameter", "input_shape", 8), ("NetParameter", "force_backward", 5), ("NetParameter", "state", 6),
    ("NetParameter", "layer", 100),
    ("LayerParameter", "name", 1), ("LayerParameter", "type", 2), ("LayerParameter", "bottom", 3),
    ("LayerParameter", "top", 4), ("LayerParameter", "loss_weight", 5), ("LayerParameter", "param", 6),
    ("LayerParameter", "blobs", 7), ("LayerParameter", "include", 8), ("LayerParameter", "exclude", 9),
    ("LayerParameter", "phase", 10), ("LayerParameter", "propagate_down", 11),
    ("LayerParameter", "transform_param", 100), ("LayerParameter", "loss_param", 101),
    ("LayerParameter", "accuracy_param", 102), ("LayerParameter", "concat_param", 104),
    ("LayerParameter", "convolution_param", 106), ("LayerParameter", "data_param", 107),
    ("LayerParameter", "dropout_param", 108), ("LayerParameter", "inner_product_param", 117),
    ("LayerParameter", "lrn_param", 118), ("LayerParameter", "pooling_param", 121),
    ("LayerParameter", "relu_param", 123), ("LayerParameter", "softmax_param", 125),
    ("LayerParameter", "flatten_param", 135), ("LayerParameter", "input_param", 143),
    ("ParamSpec", "lr_mult", 3), ("ParamSpec", "decay_mult", 4),
    ("BlobProto", "shape", 7), ("BlobProto", "data", 5), ("BlobProto", "diff", 6),
    ("BlobProto", "double_data", 8), ("BlobProto", "num", 1), ("BlobProto", "width", 4),
    ("Datum", "channels", 1), ("Datum", "height", 2), ("Datum", "width", 3), ("Datum", "data", 4),
    ("Datum", "label", 5), ("Datum", "float_data", 6), ("Datum", "encoded", 7),
    ("ConvolutionParameter", "num_output", 1), ("ConvolutionParameter", "pad", 3),
    ("ConvolutionParameter", "kernel_size", 4), ("ConvolutionParameter", "group", 5),
    ("ConvolutionParameter", "stride", 6), ("ConvolutionParameter", "dilation", 18),
    ("PoolingParameter", "pool", 1), ("PoolingParameter", "kernel_size", 2), ("PoolingParameter", "stride", 3),
    ("PoolingParameter", "pad", 4), ("PoolingParameter", "global_pooling", 12),
    ("PoolingParameter", "round_mode", 13),
    ("TransformationParameter", "scale", 1), ("TransformationParameter", "mirror", 2),
    ("TransformationParameter", "crop_size", 3), ("TransformationParameter", "mean_file", 4),
    ("TransformationParameter", "mean_value", 5),
    ("DataParameter", "source", 1), ("DataParameter", "batch_size", 4), ("DataParameter", "backend", 8),
    ("SolverParameter", "net", 24), ("SolverParameter", "test_iter", 3), ("SolverParameter", "base_lr", 5),
    ("SolverParameter", "max_iter", 7), ("SolverParameter", "lr_policy", 8), ("SolverParameter", "momentum", 11),
    ("SolverParameter", "weight_decay", 12), ("SolverParameter", "snapshot_prefix", 15),
    ("SolverParameter", "random_seed", 20), ("SolverParameter", "iter_size", 36),
    ("SolverParameter", "clip_gradients", 35), ("SolverParameter", "type", 40),
    ("SolverState", "iter", 1), ("SolverState", "learned_net", 2), ("SolverState", "history", 3),
    ("SolverState", "current_step", 4),
]


@pytest.mark.parametrize(("message", "field", "number"), FIELD_NUMBERS)
def test_field_numbers_match_caffe(message: str, field: str, number: int) -> None:
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number


def test_caffe_defaults() -> None:
    assert pb.PoolingParameter().pool == pb.PoolingParameter.MAX
    assert pb.PoolingParameter().round_mode == pb.PoolingParameter.CEIL
    assert pb.DataParameter().backend == pb.DataParameter.LEVELDB  # LMDB must be set explicitly
    assert pb.SolverParameter().solver_mode == pb.SolverParameter.GPU
    assert pb.SolverParameter().random_seed == -1
    assert pb.SolverParameter().type == "SGD"
    assert pb.LossParameter().normalization == pb.LossParameter.VALID
    assert pb.FillerParameter().type == "constant"
    assert pb.ParamSpec().lr_mult == 1.0
    assert pb.ConvolutionParameter().bias_term is True


def test_generated_module_matches_proto() -> None:
    """caffe_pb2.py holds exactly the descriptor protoc builds from caffe.proto (run `make proto`)."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(protogen.compile_descriptor_set())
    (compiled,) = fds.file
    committed = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert _without_json_names(committed) == _without_json_names(compiled)


def _without_json_names(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Drop what differs between protoc versions, not in meaning.

    --descriptor_set_out adds json_name to every field (generated modules leave it out), and
    protoc releases print float defaults differently ("1e-08" vs "9.99999994e-09").
    """
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(file)
    stack = list(out.message_type)
    while stack:
        message = stack.pop()
        for field in message.field:
            field.ClearField("json_name")
            if field.type == field.TYPE_FLOAT and field.HasField("default_value"):
                field.default_value = repr(float(np.float32(field.default_value)))
        stack.extend(message.nested_type)
    return out


def test_generated_module_has_no_runtime_version_pin() -> None:
    """Generated by protoc 3.21: no version check, so it imports with protobuf 3.20 to 7.x."""
    source = protogen.MODULE_FILE.read_text()
    assert "ValidateProtobufRuntimeVersion" not in source
    assert "_builder.BuildMessageAndEnumDescriptors" in source


def test_coexists_with_a_caffe_package_proto(tmp_path: Path) -> None:
    """A pycaffe-style `caffe.proto` (package caffe, same message names) loads in the same process."""
    code = (
        "from google.protobuf import descriptor_pb2, descriptor_pool\n"
        "import mcnn.caffe.proto.caffe_pb2 as ours\n"
        "f = descriptor_pb2.FileDescriptorProto(name='caffe.proto', package='caffe')\n"
        "f.message_type.add(name='NetParameter')\n"
        "descriptor_pool.Default().Add(f)\n"
        "print(ours.NetParameter.DESCRIPTOR.full_name)\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(code)
    out = run_script(probe)  # a fresh interpreter: its default descriptor pool holds nothing else
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mcnn.caffe.NetParameter"
