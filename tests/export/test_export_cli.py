"""tools/export.py: both files written and checked; bad input gets one line and leaves nothing written."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.cli import run
from mcnn.engine.net import load_net
from mcnn.errors import ExportError
from mcnn.export import OnnxRunner
from mcnn.export.common import checked_write, engine_outputs, random_feeds
from tests.support.export_nets import deploy_path, fresh_net
from tests.support.scripts import load_script


def load_tool() -> ModuleType:
    """tools/export.py as a module (in-process: no second torch import per case)."""
    return load_script("tools/export.py", "export_tool")


def export(*argv: str | Path) -> int:
    """Run the tool's main on ``argv`` through mcnn.cli.run (its exit status)."""
    tool = load_tool()
    return run("export", lambda: tool.main(tool.get_args_parser().parse_args([str(a) for a in argv])))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A caffemodel of the demo M-CNN (fresh weights, non-zero biases)."""
    path = tmp_path_factory.mktemp("weights") / "mcnn.caffemodel"
    cio.write_caffemodel(path, fresh_net(deploy_path("demo", "mcnn"), seed=8).to_caffemodel())
    return path


def test_writes_both_files_and_prints_the_check(trained: Path, tmp_path: Path, capsys) -> None:
    deploy = deploy_path("demo", "mcnn")
    out = tmp_path / "out"
    rc = export("--model", deploy, "--weights", trained, "--onnx", out / "mcnn.onnx", "--torchscript",
                out / "mcnn.pt", "--check-batches", "1,3")
    lines = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(lines) == 2
    assert lines[0].startswith(f"wrote {out / 'mcnn.onnx'} (ONNX opset 17; input data N x 2 x 128 x 128; outputs prob)")
    assert "at batch 1, 3, worst difference" in lines[0] and lines[1].startswith(f"wrote {out / 'mcnn.pt'}")
    worst = float(lines[0].split("worst difference ")[1].split()[0])
    assert 0 <= worst <= 1e-4
    # the file, run by itself at another batch size, gives what the engine gives with the caffemodel
    net = load_net(deploy, trained)
    feeds = random_feeds(net, 5, seed=9)
    np.testing.assert_allclose(OnnxRunner(out / "mcnn.onnx")(feeds)["prob"],
                               engine_outputs(net, feeds, ["prob"])["prob"], atol=1e-5)
    assert sorted(p.name for p in out.iterdir()) == ["mcnn.onnx", "mcnn.pt"]


PYTHON_NET = """
name: "with_python"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "my_filter" type: "Python" bottom: "data" top: "filtered"
        python_param { module: "nowhere" layer: "Filter" } }
"""


def test_bad_inputs_get_one_line_and_write_nothing(trained: Path, tmp_path: Path, capsys) -> None:
    deploy = deploy_path("demo", "mcnn")
    onnx_out = tmp_path / "x.onnx"
    assert export("--model", deploy, "--weights", tmp_path / "missing.caffemodel", "--onnx", onnx_out) == 2
    assert capsys.readouterr().err == f"export: error: {tmp_path / 'missing.caffemodel'}: no such caffemodel file\n"
    python_net = tmp_path / "python_deploy.prototxt"
    python_net.write_text(PYTHON_NET)
    assert export("--model", python_net, "--weights", trained, "--onnx", onnx_out) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"export: error: {python_net}: layer 'my_filter': type 'Python' cannot be expressed in ONNX")
    assert err.count("\n") == 1
    # weights of another net: the first layer that does not fit is named
    other = tmp_path / "other.caffemodel"
    cio.write_caffemodel(other, fresh_net(deploy, shape=(2, 192, 192)).to_caffemodel())
    assert export("--model", deploy, "--weights", other, "--onnx", onnx_out) == 2
    assert "layer 'fc1'" in capsys.readouterr().err
    assert export("--model", deploy, "--weights", trained, "--onnx", onnx_out, "--opset", "13") == 2
    assert "--opset 13: expected 17 .." in capsys.readouterr().err
    assert export("--model", deploy, "--weights", trained, "--onnx", onnx_out, "--outputs", "nope") == 2
    assert "--outputs 'nope' is not a blob" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*"))


def test_a_file_that_disagrees_is_not_kept(tmp_path: Path) -> None:
    """The check refuses a runner off by 1e-3 and removes its temporary file; an older file stays as it was."""
    net = fresh_net(deploy_path("demo", "mcnn"), seed=8)
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def off(feeds):
        return {"prob": engine_outputs(net, feeds, ["prob"])["prob"] + 1e-3}

    with pytest.raises(ExportError, match=r"model.onnx: the test file disagrees with the engine by 0.001 .* "
                                          r"output 'prob' at batch 1; not written"):
        checked_write(target, b"new", net, ["prob"], "test", lambda tmp: off)
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
