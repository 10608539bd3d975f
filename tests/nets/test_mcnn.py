"""The M-CNN builder and its summary: the paper's 22 conv / 2 FC layers and 624 pathway maps."""

from __future__ import annotations

import collections

import pytest

from mcnn.caffe import pb
from mcnn.cli import parse_scales
from mcnn.errors import ConfigError, ShapeError
from mcnn.nets import DataSpec, build_net, summarize

BBBC021 = DataSpec(channels=3, height=1024, width=1280, classes=12)


def test_default_mcnn_matches_the_paper_counts() -> None:
    summary = summarize(build_net("mcnn", BBBC021, deploy=True).net)
    assert summary.conv_layers == 22
    assert summary.fc_layers == 2
    (concat,) = summary.concats
    assert concat.branches == 7
    assert concat.conv_layers == 21
    assert concat.kernel_maps == 624
    assert concat.maps_per_branch == [48, 48, 48, 96, 96, 96, 192]
    rows = {r.name: r for r in summary.rows}
    assert rows["concat"].shape == (208, 16, 20)
    assert rows["pool_in_s64"].shape == (3, 16, 20)
    assert rows["conv1_s1"].shape == (16, 1024, 1280)
    assert rows["pool_fuse"].shape == (1024, 8, 10)
    assert rows["fc1"].param_shapes == [(512, 1024 * 8 * 10), (512,)]
    assert rows["fc2"].shape == (12,)
    # 21 pathway convs hold 413,024 parameters for a 3-channel input (Godinez et al. 2017, Fig. 1).
    pathway = sum(r.params for r in summary.rows if r.type == "Convolution" and r.name != "conv_fuse")
    assert pathway == 413_024
    assert rows["conv_fuse"].params == 214_016


def test_three_scale_net() -> None:
    net = build_net("mcnn", DataSpec(channels=2, height=128, width=128, classes=4), deploy=True,
                    scales=parse_scales("1,2,4")).net
    summary = summarize(net)
    (concat,) = summary.concats
    assert (summary.conv_layers, summary.fc_layers) == (10, 2)
    assert (concat.branches, concat.conv_layers, concat.kernel_maps) == (3, 9, 144)
    rows = {r.name: r for r in summary.rows}
    assert rows["concat"].shape == (48, 32, 32)
    assert rows["pool_out_s1"].shape == (16, 32, 32)
    assert "pool_in_s64" not in rows


def test_non_multiple_of_64_uses_caffe_ceil() -> None:
    summary = summarize(build_net("mcnn", DataSpec(channels=1, height=250, width=330, classes=2),
                                  deploy=True, fusion_pool=0).net)
    assert {r.name: r.shape for r in summary.rows}["concat"] == (208, 4, 6)


def test_train_val_has_phase_data_layers_loss_and_test_accuracy() -> None:
    data = DataSpec(channels=3, height=256, width=256, classes=12, crop=200, mirror=True,
                    mean_values=(10, 20, 30), scale=0.5, train_source="a_lmdb", test_source="b_lmdb",
                    train_batch=4, test_batch=2)
    net = build_net("mcnn", data).net
    types = collections.Counter(layer.type for layer in net.layer)
    assert types["Data"] == 2 and types["SoftmaxWithLoss"] == 1 and types["Accuracy"] == 2
    train, test = net.layer[0], net.layer[1]
    assert train.include[0].phase == pb.TRAIN and test.include[0].phase == pb.TEST
    assert train.data_param.backend == pb.DataParameter.LMDB
    assert (train.data_param.source, train.data_param.batch_size) == ("a_lmdb", 4)
    assert (test.data_param.source, test.data_param.batch_size) == ("b_lmdb", 2)
    assert train.transform_param.mirror and not test.transform_param.mirror
    assert train.transform_param.crop_size == 200 and list(train.transform_param.mean_value) == [10, 20, 30]
    accuracy = [layer for layer in net.layer if layer.type == "Accuracy"]
    assert all(layer.include[0].phase == pb.TEST for layer in accuracy)
    assert [layer.accuracy_param.top_k for layer in accuracy] == [1, 5]
    summary = summarize(net, {"data": (3, 200, 200)})
    assert summary.conv_layers == 22


def test_deploy_has_input_and_prob_and_no_loss() -> None:
    net = build_net("mcnn", BBBC021, deploy=True).net
    assert net.layer[0].type == "Input"
    assert list(net.layer[0].input_param.shape[0].dim) == [1, 3, 1024, 1280]
    assert (net.layer[-1].name, net.layer[-1].type) == ("prob", "Softmax")
    assert not any(layer.type in ("SoftmaxWithLoss", "Accuracy", "Data") for layer in net.layer)


def test_round_mode_is_never_written() -> None:
    for deploy in (False, True):
        net = build_net("mcnn", BBBC021, deploy=deploy).net
        assert all(not layer.pooling_param.HasField("round_mode") for layer in net.layer)


def test_options_change_the_net() -> None:
    net = build_net("mcnn", BBBC021, deploy=True, pathway_widths=(8,) * 7, fusion_width=256,
                    fusion_pool=0, dropout=0.5, pool="AVE", fc_width=128).net
    rows = {r.name: r for r in summarize(net).rows}
    assert rows["concat"].shape == (56, 16, 20)
    assert rows["conv_fuse"].shape == (256, 16, 20)
    assert rows["fc1"].param_shapes[0] == (128, 256 * 16 * 20)
    layers = {layer.name: layer for layer in net.layer}
    assert layers["drop_fc1"].dropout_param.dropout_ratio == 0.5
    assert layers["pool_in_s2"].pooling_param.pool == pb.PoolingParameter.AVE


def test_provenance_header_separates_paper_and_reconstruction() -> None:
    header = build_net("mcnn", BBBC021).header
    paper = next(line for line in header if line.startswith("From the paper"))
    ours = next(line for line in header if line.startswith("Reconstruction"))
    assert "scales 1,2,4,8,16,32,64" in paper and "5x5" in paper and "FC 512" in paper
    assert "pathway widths 16,16,16,32,32,32,64" in ours and "fusion width 1024" in ours
    header = build_net("mcnn", BBBC021, scales=(1, 2, 4)).header
    assert "scales 1,2,4" in next(line for line in header if line.startswith("Reconstruction"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scales": (1, 3)}, "3 is not a power of two"),
        ({"scales": (4, 2)}, "increasing"),
        ({"scales": (1, 2), "pathway_widths": (8,)}, "1 values for 2 scales"),
        ({"fusion_pool": 1}, "--fusion-pool"),
        ({"dropout": 1.0}, "--dropout"),
        ({"kernel_size": 4}, "odd"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_net("mcnn", BBBC021, **options)


def test_image_smaller_than_coarsest_scale_names_the_layer() -> None:
    net = build_net("mcnn", DataSpec(channels=1, height=48, width=300, classes=2), deploy=True).net
    with pytest.raises(ShapeError, match="layer 'pool_out_s1': pooling kernel 64 is larger than its input 48x300"):
        summarize(net)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1..64", (1, 2, 4, 8, 16, 32, 64)), ("4..16", (4, 8, 16)), ("1,2,4", (1, 2, 4)), ("8", (8,))],
)
def test_parse_scales(text: str, expected: tuple[int, ...]) -> None:
    assert parse_scales(text) == expected


@pytest.mark.parametrize("text", ["1..63", "a..b", "8..2", "1,x"])
def test_parse_scales_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="--scales"):
        parse_scales(text)


def test_data_spec_validation() -> None:
    with pytest.raises(ConfigError, match="--classes must be at least 2"):
        DataSpec(channels=1, height=8, width=8, classes=0)
    with pytest.raises(ConfigError, match="--crop 300 is larger than the 256x256 images"):
        DataSpec(channels=1, height=256, width=256, classes=2, crop=300)
    with pytest.raises(ConfigError, match="--mean-value needs 1 or 3 values"):
        DataSpec(channels=3, height=8, width=8, classes=2, mean_values=(1, 2))
    with pytest.raises(ConfigError, match="not both"):
        DataSpec(channels=1, height=8, width=8, classes=2, mean_values=(1,), mean_file="m.binaryproto")
