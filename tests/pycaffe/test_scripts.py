"""Unmodified pycaffe scripts run through ``PYTHONPATH=$(python -m mcnn.pycaffe --pythonpath)``.

The scripts in tests/pycaffe/scripts are written as pycaffe users write them (``import caffe``);
each test checks the numbers they print against the engine's own computation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from mcnn.caffe import io as cio
from mcnn.engine.net import load_net
from tests.support import ROOT, run_script
from tests.support.tiny import TinySetup, pattern_image

SCRIPTS = Path("tests/pycaffe/scripts")


def shim_path() -> str:
    """What ``python -m mcnn.pycaffe --pythonpath`` prints."""
    out = subprocess.run([sys.executable, "-m", "mcnn.pycaffe", "--pythonpath"], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return out.stdout.strip()


#: A real Caffe, the oracle of the scripts: the PREFIX docker/build_caffe.sh installed into (its
#: python/ and lib/) and the interpreter pycaffe was built for (its NumPy < 2).
REAL_CAFFE = os.environ.get("MCNN_CAFFE_PREFIX", "")
REAL_CAFFE_PYTHON = os.environ.get("MCNN_CAFFE_PYTHON", "")


def run_caffe_script(name: str, *args: object, real_caffe: bool = False) -> dict[str, Any]:
    """Run a script of :data:`SCRIPTS` with the shim on PYTHONPATH (or, ``real_caffe``, under the real
    pycaffe of :data:`REAL_CAFFE`); its printed JSON."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if real_caffe:
        env["PYTHONPATH"] = str(Path(REAL_CAFFE) / "python")
        env["LD_LIBRARY_PATH"] = str(Path(REAL_CAFFE) / "lib")
        env["GLOG_minloglevel"] = "2"
        out = subprocess.run([REAL_CAFFE_PYTHON, str(ROOT / SCRIPTS / name), *map(str, args)], capture_output=True,
                             text=True, env=env, cwd=ROOT / SCRIPTS, timeout=300)
    else:
        env["PYTHONPATH"] = shim_path()
        out = run_script(SCRIPTS / name, *map(str, args), env=env, cwd=ROOT / SCRIPTS, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def random_weights(deploy: Path, path: Path) -> Path:
    """A caffemodel of the deploy net's filler-initialised weights."""
    cio.write_caffemodel(path, load_net(deploy).to_caffemodel())
    return path


def test_the_shim_is_opt_in_and_aliases_the_modules() -> None:
    shim = shim_path()
    assert Path(shim, "caffe", "__init__.py").is_file()
    plain = subprocess.run([sys.executable, "-c", "import caffe"], capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd="/")
    assert plain.returncode != 0 and "No module named 'caffe'" in plain.stderr
    code = ("import caffe, mcnn.pycaffe, mcnn.caffe.proto.caffe_pb2 as pb\n"
            "from caffe.proto import caffe_pb2\n"
            "assert caffe.Net is mcnn.pycaffe.Net and caffe.SGDSolver is mcnn.pycaffe.SGDSolver\n"
            "assert caffe_pb2 is pb and caffe.TEST == 1\n"
            "print(sorted(n for n in ('Net', 'Blob', 'get_solver', 'set_mode_gpu') if hasattr(caffe, n)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         env={**os.environ, "PYTHONPATH": shim})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['Blob', 'Net', 'get_solver', 'set_mode_gpu']"
    code = ("import caffe.io, mcnn.pycaffe, mcnn.pycaffe.io, mcnn.pycaffe.net_spec, mcnn.engine.pylayer\n"
            "from caffe import layers as L, params as P, net_spec\n"
            "import caffe.net_spec, caffe.classifier\n"
            "assert caffe.io is mcnn.pycaffe.io and net_spec is mcnn.pycaffe.net_spec\n"
            "assert L is mcnn.pycaffe.net_spec.layers and P is mcnn.pycaffe.net_spec.params\n"
            "assert caffe.Layer is mcnn.engine.pylayer.Layer\n"
            "assert caffe.Classifier is caffe.classifier.Classifier and issubclass(caffe.Classifier, caffe.Net)\n"
            "print(caffe.io.Transformer.__name__, caffe.NetSpec.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                         env={**os.environ, "PYTHONPATH": shim})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Transformer", "NetSpec"]
    usage = subprocess.run([sys.executable, "-m", "mcnn.pycaffe"], capture_output=True, text=True, cwd=ROOT)
    assert usage.returncode == 2 and "--pythonpath" in usage.stdout


def test_classify_a_field_with_a_transformer(tiny: TinySetup, tmp_path: Path) -> None:
    weights = random_weights(tiny.deploy, tmp_path / "w.caffemodel")
    field = pattern_image(1, np.random.default_rng(9))  # 2 x 32 x 32 uint8
    paths = []
    for c in range(2):
        paths.append(tmp_path / f"ch{c}.png")
        Image.fromarray(field[c]).save(paths[-1])
    result = run_caffe_script("classify.py", tiny.deploy, weights, *paths)
    engine = load_net(tiny.deploy, weights)
    want = engine.forward({"data": field[None].astype(np.float32) / 256})["prob"].detach().numpy()[0]
    np.testing.assert_allclose(result["prob"], want, rtol=1e-4, atol=1e-6)
    assert result["class"] == int(want.argmax())


def test_net_surgery(tiny: TinySetup, tmp_path: Path) -> None:
    weights = random_weights(tiny.deploy, tmp_path / "w.caffemodel")
    edited = tmp_path / "edited.prototxt"
    edited.write_text(tiny.deploy.read_text().replace('"fc2"', '"fc2_rev"'))
    out_model = tmp_path / "surgery.caffemodel"
    result = run_caffe_script("surgery.py", tiny.deploy, weights, edited, out_model)
    before, after = np.array(result["before"]), np.array(result["after"])
    assert before.shape == (3, 3) and result["shapes"]["data"] == [3, 2, 32, 32]
    np.testing.assert_allclose(after, before[:, ::-1], rtol=1e-5)  # the classes came out reversed
    saved = cio.net_weights(cio.read_caffemodel(out_model))
    original = cio.net_weights(cio.read_caffemodel(weights))
    np.testing.assert_array_equal(saved["conv1_s1"][0], original["conv1_s1"][0])
    np.testing.assert_array_equal(saved["fc2_rev"][0], original["fc2"][0][::-1])


def test_training_loop_with_manual_test_passes(tiny: TinySetup) -> None:
    result = run_caffe_script("train_loop.py", tiny.solver, 24, 3)
    losses, accuracy = result["train_loss"], result["test_acc"]
    assert result["iter"] == 24 and len(losses) == 24 and len(accuracy) == 5
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4])
    assert accuracy[-1] >= 0.9 and accuracy[-1] > accuracy[0]


def test_python_data_and_loss_layers_train_through_the_solver(tmp_path: Path) -> None:
    result = run_caffe_script("python_layer.py", tmp_path)
    np.testing.assert_allclose(result["weights"], [2.0, -1.0, 0.5], atol=0.02)
    assert result["bias"] == pytest.approx(1.0, abs=0.02)
    assert result["loss_before"] > 1.0 and result["loss_after"] < 1e-3 * result["loss_before"]
    assert result["layer_types"] == ["RegressionData", "LayerView", "EuclideanLoss"]
    assert result["shapes"] == {"x": [32, 3], "t": [32, 1], "y": [32, 1], "loss": [1]}
    assert result["error"] == ("McnnError: layer 'picky' (Python layer pylayers_demo.Picky): setup failed: "
                               "ValueError: param_str must be 'ok', got 'nope'")


@pytest.mark.skipif(not (REAL_CAFFE and REAL_CAFFE_PYTHON), reason="real pycaffe not built: set MCNN_CAFFE_PREFIX "
                    "(the PREFIX of docker/build_caffe.sh) and MCNN_CAFFE_PYTHON (its PYTHON)")
def test_the_same_scripts_give_the_same_numbers_on_real_pycaffe(tiny: TinySetup, tmp_path: Path) -> None:
    weights = random_weights(tiny.deploy, tmp_path / "w.caffemodel")
    field = pattern_image(1, np.random.default_rng(9))
    paths = []
    for c in range(2):
        paths.append(tmp_path / f"ch{c}.png")
        Image.fromarray(field[c]).save(paths[-1])
    ours = run_caffe_script("classify.py", tiny.deploy, weights, *paths)
    theirs = run_caffe_script("classify.py", tiny.deploy, weights, *paths, real_caffe=True)
    np.testing.assert_allclose(ours["prob"], theirs["prob"], rtol=1e-4, atol=1e-6)
    edited = tmp_path / "edited.prototxt"
    edited.write_text(tiny.deploy.read_text().replace('"fc2"', '"fc2_rev"'))
    a = run_caffe_script("surgery.py", tiny.deploy, weights, edited, tmp_path / "a.caffemodel")
    b = run_caffe_script("surgery.py", tiny.deploy, weights, edited, tmp_path / "b.caffemodel", real_caffe=True)
    np.testing.assert_allclose(a["after"], b["after"], rtol=1e-4, atol=1e-6)
