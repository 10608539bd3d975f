"""Kernel maps (tools/kernel_maps.py, mcnn.evaluate.kernels) and the pictures of fields (mcnn.evaluate.fieldview)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import io as cio
from mcnn.caffe import pb
from mcnn.caffe.transform import LmdbRecords
from mcnn.datasets.bbbc013 import BBBC013
from mcnn.datasets.bbbc015 import BBBC015
from mcnn.datasets.bbbc021 import BBBC021
from mcnn.datasets.hpa import HPA
from mcnn.engine.net import Net, load_net
from mcnn.evaluate.fieldview import (
    BLUE,
    GREEN,
    RED,
    Examples,
    channel_colours,
    composite,
    merge_examples,
    read_examples,
    stretch,
    write_examples,
)
from mcnn.evaluate.kernelplot import tile_maps
from mcnn.evaluate.kernels import (
    blob_shapes,
    blob_stride,
    centre_window,
    default_layers,
    scale_input,
    scaled_window,
)
from mcnn.evaluate.plots import confusion_figure
from mcnn.evaluate.summary import pooled_examples
from tests.support import ROOT, run_script
from tests.support.tiny import make_setup

YELLOW = (1.0, 1.0, 0.0)


def test_channels_take_the_papers_colours() -> None:
    assert channel_colours(BBBC021.default_channels) == [BLUE, GREEN, RED]  # Fig. 5a: actin red, tubulin green
    assert channel_colours(BBBC013.default_channels) == [GREEN, BLUE]        # Fig. 3a: GFP green, nuclei blue
    assert channel_colours(BBBC015.default_channels) == [GREEN, BLUE]        # crimson is BBBC015's nuclear stain
    assert channel_colours(HPA.default_channels) == [GREEN, BLUE, RED, YELLOW]
    assert channel_colours(("FITC", "DAPI")) == [GREEN, BLUE]
    assert channel_colours(("nuclei", "cytoplasm")) == [BLUE, GREEN]
    assert channel_colours(("channel0", "channel1")) == [GREEN, RED]
    assert channel_colours(("protein",)) == [(1.0, 1.0, 1.0)]


def test_a_composite_adds_each_stretched_channel_in_its_colour() -> None:
    ramp = np.arange(201, dtype=np.uint16).reshape(3, 67)
    # the 0.5th and 99.5th percentiles of 0..200 are 1 and 199
    assert stretch(ramp)[1, 33] == pytest.approx((100 - 1) / 198)
    assert stretch(ramp)[0, 0] == 0.0 and stretch(ramp)[2, 66] == 1.0
    assert not stretch(np.full((4, 4), 7)).any()
    field = np.stack([ramp, ramp[::-1, ::-1]]).astype(np.uint8)  # DNA, then GFP
    rgb = composite(field, ("DNA", "GFP"))
    assert rgb.shape == (3, 67, 3)
    assert not rgb[..., 0].any()
    np.testing.assert_allclose(rgb[..., 2], stretch(field[0]))
    np.testing.assert_allclose(rgb[..., 1], stretch(field[1]))
    grey = composite(field[:1], ("protein",))
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])


def test_tiles_are_scaled_each_to_its_range() -> None:
    maps = np.stack([np.arange(16.0).reshape(4, 4) * (k + 1) for k in range(5)])
    mosaic = tile_maps(maps)
    # 5 maps: 3 a row, 2 rows; 4x4 tiles enlarged 8 times to 32x32, gaps of 1
    assert mosaic.shape == (2 * 32 + 1, 3 * 32 + 2)
    assert np.isnan(mosaic[32]).all() and np.isnan(mosaic[:, 32]).all()
    assert mosaic[0, 0] == 0.0 and mosaic[31, 31] == 1.0 and mosaic[33 + 31, 33 + 31] == 1.0
    assert np.isnan(mosaic[33:, 66:]).all()  # the sixth slot is empty


def test_windows_follow_the_scale_of_each_blob() -> None:
    assert centre_window(32, 40, 16) == (8, 12, 16, 16)
    assert centre_window(32, 40, 0) == (0, 0, 32, 40)
    assert scaled_window((8, 12, 16, 16), (32, 40), (16, 20)) == (4, 6, 8, 8)
    assert scaled_window((8, 12, 16, 16), (32, 40), (3, 3)) == (0, 0, 3, 3)  # rounded outwards


def test_default_layers_are_the_first_conv_of_every_scale() -> None:
    mcnn = cio.read_net(ROOT / "prototxt" / "bbbc021" / "mcnn_deploy.prototxt")
    assert default_layers(mcnn) == [f"conv1_s{s}" for s in (1, 2, 4, 8, 16, 32, 64)]
    by_name = {layer.name: layer for layer in mcnn.layer}
    assert scale_input(mcnn, by_name["conv3_s4"], "data") == "pool_in_s4"
    assert scale_input(mcnn, by_name["conv1_s1"], "data") == "data"
    _, shapes = blob_shapes(mcnn)
    assert [blob_stride(mcnn, f"conv1_s{s}", "data", shapes) for s in (1, 4, 64)] == [1, 4, 64]
    alexnet = cio.read_net(ROOT / "prototxt" / "bbbc021" / "alexnet_deploy.prototxt")
    assert default_layers(alexnet) == ["conv1"]
    _, shapes = blob_shapes(alexnet)
    assert blob_stride(alexnet, "conv2", "data", shapes) == 8  # conv1 stride 4, pool1 stride 2
    assert default_layers(cio.read_net(ROOT / "prototxt" / "hela" / "googlenet_deploy.prototxt")) == ["conv1/7x7_s2"]


def test_confusion_examples_sit_below_the_matrix_and_merge_over_splits(tmp_path: Path) -> None:
    cm = np.array([[3, 1], [0, 2]])
    assert len(confusion_figure(cm, ["a", "b"]).axes) == 1
    red = np.zeros((5, 6, 3), np.uint8)
    red[..., 0] = 255
    fig = confusion_figure(cm, ["a", "b"], examples=[red, None])
    assert len(fig.axes) == 3 and [ax.get_title() for ax in fig.axes[1:]] == ["a", "b"]
    assert np.array_equal(fig.axes[1].images[0].get_array(), red) and not fig.axes[2].images
    for name, examples in (("fold_a", Examples(["a", "b"], ["k1", None], [red, None])),
                           ("fold_b", Examples(["a", "b"], ["k2", "k3"], [red // 2, red // 3]))):
        (tmp_path / name).mkdir()
        write_examples(tmp_path / name / "examples.npz", examples)
    back = read_examples(tmp_path / "fold_a" / "examples.npz")
    assert back.keys == ["k1", None] and np.array_equal(back.images[0], red) and back.images[1] is None
    merged = pooled_examples(tmp_path, [("fold_a", {}), ("fold_b", {})], ["a", "b"])
    assert merged is not None and merged.keys == ["k1", "k3"] and np.array_equal(merged.images[1], red // 3)
    assert merge_examples([back], ["a", "c"]) is None  # another model's classes


@pytest.fixture
def trained(tmp_path: Path) -> dict[str, Path]:
    setup = make_setup(tmp_path / "ds", train_count=3, test_count=6)
    (tmp_path / "ds" / "labels.txt").write_text("plain\nblob\nstripe\n")
    net = Net(cio.read_net(setup.deploy), pb.TEST, generator=torch.Generator().manual_seed(3))
    weights = tmp_path / "w.caffemodel"
    cio.write_caffemodel(weights, net.to_caffemodel())
    return {"deploy": setup.deploy, "weights": weights, "lmdb": setup.root / "test_lmdb"}


def test_kernel_maps_are_the_engines_blobs_of_the_record(trained: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "maps"
    run = run_script("tools/kernel_maps.py", "--model", trained["deploy"], "--weights", trained["weights"],
                     "--lmdb", trained["lmdb"], "--record", "00000004_img4", "--region", "16", "--out", out)
    assert run.returncode == 0, run.stderr
    assert "00000004_img4 (blob): conv1_s1 (8 maps)" in run.stdout
    assert (out / "kernel_maps.png").stat().st_size > 5000
    arrays = np.load(out / "kernel_maps.npz")
    blobs = [f"conv1_s{s}" for s in (1, 2, 4, 8)]
    assert arrays["blobs"].tolist() == blobs and arrays["keys"].tolist() == ["00000004_img4"]
    assert arrays["labels"].tolist() == [1] and arrays["channels"].tolist() == ["channel0", "channel1"]
    # the centred 16x16 of the 32x32 input, and the same part of each blob at 1/1, 1/2, 1/4, 1/8
    assert arrays["input_window"].tolist() == [8, 8, 16, 16]
    assert arrays["windows"].tolist() == [[8, 8, 16, 16], [4, 4, 8, 8], [2, 2, 4, 4], [1, 1, 2, 2]]
    assert arrays["scales"].tolist() == [1, 2, 4, 8]
    image, _ = LmdbRecords(trained["lmdb"]).image(4)
    x = image[None].astype(np.float32) * np.float32(1 / 256)  # the tiny net's transform: scale 1/256, no crop
    with torch.no_grad():
        blobs_out = load_net(trained["deploy"], trained["weights"]).forward({"data": torch.from_numpy(x)})
    assert np.array_equal(arrays["input"], x[:, :, 8:24, 8:24])
    for name, (top, left, h, w) in zip(blobs, arrays["windows"].tolist(), strict=True):
        expected = blobs_out[name].numpy()[:, :, top: top + h, left: left + w]
        assert arrays[name].shape == (1, 8, h, w) and np.array_equal(arrays[name], expected), name
        assert (arrays[name] >= 0).all() and arrays[name].any()  # after the in-place ReLU, as Caffe's blob
