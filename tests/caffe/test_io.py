"""Reading and writing prototxt, caffemodel, binaryproto and solverstate files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.errors import CaffeFormatError, PrototxtError

NET_TEXT = """\
# a header line
#   continued
name: "tiny"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param {
    shape {
      dim: 1
      dim: 2
      dim: 8
      dim: 8
    }
  }
}
layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  top: "conv"
  convolution_param {
    num_output: 3
    kernel_size: 3
  }
}
"""


def test_prototxt_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "net.prototxt"
    path.write_text(NET_TEXT)
    net = cio.read_net(path)
    assert [layer.name for layer in net.layer] == ["data", "conv"]
    assert net.layer[1].convolution_param.kernel_size == [3]
    header = cio.header_lines(NET_TEXT)
    assert header == ["a header line", "  continued"]
    assert cio.format_prototxt(net, header) == NET_TEXT


def test_prototxt_errors_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.prototxt"
    path.write_text('name: "x"\nlayer {\n  nme: "conv"\n}\n')
    with pytest.raises(PrototxtError, match=r"bad\.prototxt: 3:3 .*nme"):
        cio.read_net(path)
    with pytest.raises(PrototxtError, match="no such file"):
        cio.read_net(tmp_path / "missing.prototxt")
    path.write_text('layers { name: "old" }\n')
    with pytest.raises(PrototxtError, match="V1"):
        cio.read_net(path)


def test_binaryproto_uses_legacy_4d_layout(tmp_path: Path) -> None:
    mean = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4) / 7
    path = tmp_path / "mean.binaryproto"
    cio.write_binaryproto(path, mean)
    blob = pb.BlobProto.FromString(path.read_bytes())
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, 2, 3, 4)
    assert not blob.HasField("shape")
    np.testing.assert_array_equal(cio.read_binaryproto(path), mean)


def test_caffemodel_round_trip_and_weights(tmp_path: Path) -> None:
    net = cio.parse_prototxt(NET_TEXT, pb.NetParameter)
    rng = np.random.default_rng(1)
    weights = {"conv": [rng.standard_normal((3, 2, 3, 3)).astype(np.float32), np.array([1, 2, 3], np.float32)]}
    path = tmp_path / "m.caffemodel"
    cio.write_caffemodel(path, cio.weights_to_caffemodel(net, weights))
    back = cio.net_weights(cio.read_caffemodel(path))
    assert list(back) == ["conv"]
    for a, b in zip(back["conv"], weights["conv"], strict=True):
        np.testing.assert_array_equal(a, b)
    # Packed float encoding: 4 bytes per value plus small headers.
    assert path.stat().st_size < 4 * (54 + 3) + 200


def test_blob_accepts_double_data_and_checks_size() -> None:
    blob = pb.BlobProto(double_data=[1.5, 2.5])
    blob.shape.dim.extend([2])
    np.testing.assert_array_equal(cio.blob_to_array(blob), np.array([1.5, 2.5], np.float32))
    bad = pb.BlobProto(data=[1.0, 2.0, 3.0])
    bad.shape.dim.extend([2, 2])
    with pytest.raises(CaffeFormatError, match="3 values for shape 2x2"):
        cio.blob_to_array(bad)


def test_solverstate_round_trip(tmp_path: Path) -> None:
    state = pb.SolverState(iter=120, learned_net="snap_iter_120.caffemodel", current_step=1)
    state.history.append(cio.array_to_blob(np.ones((2, 3), np.float32)))
    path = tmp_path / "snap_iter_120.solverstate"
    cio.write_solverstate(path, state)
    back = cio.read_solverstate(path)
    assert back.iter == 120 and back.learned_net == "snap_iter_120.caffemodel" and back.current_step == 1
    assert cio.blob_to_array(back.history[0]).shape == (2, 3)


def test_binary_reader_rejects_text(tmp_path: Path) -> None:
    path = tmp_path / "not.caffemodel"
    path.write_text(NET_TEXT)
    with pytest.raises(CaffeFormatError, match="not a binary NetParameter"):
        cio.read_caffemodel(path)


def test_writes_are_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "net.prototxt"
    cio.write_prototxt(path, cio.parse_prototxt(NET_TEXT, pb.NetParameter))
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.prototxt"]
