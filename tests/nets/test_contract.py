"""The contract every registered architecture meets (timm style): a new one is tested the moment it is registered.

For each name of :func:`mcnn.nets.list_nets`: the train_val and deploy variants are emitted with a
header, parse back and reserialise identically, summarise with the right class count, run forward
in the PyTorch engine and (slow) in OpenCV's own Caffe importer, a second reader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.nets import DataSpec, list_nets, summarize
from mcnn.nets.emit import net_texts
from mcnn.nets.presets import default_crop
from mcnn.nets.registry import arch_info

#: A tiny geometry every architecture accepts (the M-CNN's coarsest scale is 64 px).
TINY = DataSpec(channels=2, height=128, width=128, classes=3, class_names=("a", "b", "c"))


def _write_deploy(arch: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{arch}_deploy.prototxt"
    path.write_text(net_texts(arch, TINY, ["contract test"])["deploy"], encoding="utf-8")
    return path


def test_the_paper_architectures_are_registered_in_file_order() -> None:
    assert list_nets()[:3] == ["mcnn", "alexnet", "googlenet"]
    assert len(set(list_nets())) == len(list_nets())


@pytest.mark.parametrize("arch", list_nets())
def test_emits_both_variants_that_parse_back(arch: str) -> None:
    texts = net_texts(arch, TINY, ["contract test"])
    assert set(texts) == {"train_val", "deploy"}
    for variant, text in texts.items():
        assert text.startswith("# contract test")
        assert f"{variant} variant." in text
        net = cio.parse_prototxt(text, pb.NetParameter, f"{arch}_{variant}")
        assert cio.format_prototxt(net, cio.header_lines(text)) == text
        types = [layer.type for layer in net.layer]
        if variant == "deploy":
            assert types[0] == "Input" and types[-1] == "Softmax" and "SoftmaxWithLoss" not in types
        else:
            assert types.count("Data") == 2 and "SoftmaxWithLoss" in types and "Accuracy" in types


@pytest.mark.parametrize("arch", list_nets())
def test_summarises_to_the_class_count(arch: str) -> None:
    deploy = cio.parse_prototxt(net_texts(arch, TINY)["deploy"], pb.NetParameter, arch)
    summary = summarize(deploy)
    assert summary.rows[-1].shape == (TINY.classes,)
    assert sum(r.params for r in summary.rows) > 0


@pytest.mark.parametrize("arch", list_nets())
def test_default_crop_is_the_registered_reference(arch: str) -> None:
    crop = arch_info(arch).crop
    assert default_crop(arch, 1024, 1280) == crop
    assert default_crop(arch, 128, 128) == (crop if 0 < crop < 128 else 0)


@pytest.mark.parametrize("arch", list_nets())
def test_runs_forward_in_the_engine(arch: str, tmp_path: Path) -> None:
    from mcnn.engine import load_net

    net = load_net(_write_deploy(arch, tmp_path))
    batch = np.random.default_rng(0).random((2, TINY.channels, TINY.height, TINY.width), dtype=np.float32)
    prob = np.asarray(net.forward({"data": batch})["prob"].detach().cpu())
    assert prob.shape == (2, TINY.classes)
    assert np.all(prob >= 0)
    assert prob.sum(axis=1) == pytest.approx(np.ones(2), abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", list_nets())
def test_runs_forward_in_opencv(arch: str, tmp_path: Path) -> None:
    pytest.importorskip("cv2")
    from tests.support.crosscheck import opencv_forward, write_random_caffemodel

    path = _write_deploy(arch, tmp_path)
    model = tmp_path / "random.caffemodel"
    write_random_caffemodel(cio.read_net(path), model)
    image = np.random.default_rng(0).random((1, TINY.channels, TINY.height, TINY.width), dtype=np.float32)
    prob = opencv_forward(path, model, image, ["prob"])["prob"]
    assert prob.shape == (1, TINY.classes)
    assert prob.sum() == pytest.approx(1.0, abs=1e-5)
