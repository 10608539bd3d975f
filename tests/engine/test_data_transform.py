"""Caffe's DataTransformer and Data layer reading order (TransformationParameter in src/caffe/proto/caffe.proto).

Caffe facts used (data_transformer.cpp, data_layer.cpp):
- crop_size: TRAIN takes a random offset h_off in [0, H - crop], w_off in [0, W - crop];
  TEST takes the centre, h_off = (H - crop) // 2, w_off = (W - crop) // 2;
- mirror: flips left-right with probability 1/2 in ANY phase when mirror: true;
- value transform: out = (x - mean) * scale; mean_value is one value for all channels or one
  per channel; a mean_file (BlobProto .binaryproto) is a per-pixel C x H x W mean over the full
  image, subtracted at the source pixel of the crop (i.e. before the flip);
- the Data layer reads records in key order and wraps around to the first record.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from mcnn.caffe import pb
from mcnn.caffe.datum import LmdbWriter, array_to_datum, record_key
from mcnn.caffe.io import parse_prototxt, write_binaryproto
from mcnn.engine.data import DataFeed, Transformer
from mcnn.errors import McnnError

C, H, W = 3, 7, 9
#: every pixel distinct (0..188), so a crop identifies its offset
IMAGE = np.arange(C * H * W, dtype=np.uint8).reshape(C, H, W)


def transformer(text: str, phase: int, shape=(C, H, W), base: Path | None = None) -> Transformer:
    return Transformer(parse_prototxt(text, pb.TransformationParameter), phase, shape, "data_layer",
                       **({"base_dir": base} if base is not None else {}))


def apply(t: Transformer, image: np.ndarray = IMAGE, seed: int = 0) -> np.ndarray:
    out = t(image, np.random.default_rng(seed))
    assert out.dtype == np.float32
    return out


def find_crop(out: np.ndarray, image: np.ndarray, size: int, flipped: bool = False) -> tuple[int, int]:
    """The (top, left) offset whose crop of ``image`` equals ``out`` (optionally flipped)."""
    hits = []
    for top in range(image.shape[1] - size + 1):
        for left in range(image.shape[2] - size + 1):
            crop = image[:, top:top + size, left:left + size].astype(np.float32)
            if flipped:
                crop = crop[:, :, ::-1]
            if np.array_equal(crop, out):
                hits.append((top, left))
    assert len(hits) == 1, hits
    return hits[0]


# ---------------------------------------------------------------------------
# crop
# ---------------------------------------------------------------------------

@pytest.mark.parametrize(("crop", "top", "left"), [(4, 1, 2), (5, 1, 2), (3, 2, 3), (7, 0, 1)])
def test_test_phase_crop_is_centred(crop: int, top: int, left: int) -> None:
    """TEST: offset ((H - crop) // 2, (W - crop) // 2); H=7, W=9: crop 4 -> (1, 2), crop 3 -> (2, 3)."""
    t = transformer(f"crop_size: {crop}", pb.TEST)
    for seed in range(5):
        out = apply(t, seed=seed)
        assert out.shape == (C, crop, crop)
        np.testing.assert_array_equal(out, IMAGE[:, top:top + crop, left:left + crop].astype(np.float32))


def test_train_phase_crops_are_random_and_in_bounds() -> None:
    """TRAIN: every crop is an in-bounds window; offsets vary over [0, H-crop] x [0, W-crop]."""
    t = transformer("crop_size: 4", pb.TRAIN)
    offsets = [find_crop(apply(t, seed=s), IMAGE, 4) for s in range(150)]
    tops = {o[0] for o in offsets}
    lefts = {o[1] for o in offsets}
    assert tops <= set(range(4)) and lefts <= set(range(6))
    # 150 draws over the 4 x 6 = 24 offsets: all rows and columns appear, and most pairs
    assert tops == set(range(4)) and lefts == set(range(6))
    assert len(set(offsets)) >= 18


def test_no_crop_keeps_whole_image() -> None:
    for phase in (pb.TRAIN, pb.TEST):
        np.testing.assert_array_equal(apply(transformer("", phase)), IMAGE.astype(np.float32))


def test_crop_larger_than_image_is_an_error() -> None:
    with pytest.raises(McnnError, match="data_layer"):
        transformer("crop_size: 8", pb.TEST)


# ---------------------------------------------------------------------------
# mirror
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("phase", [pb.TRAIN, pb.TEST])
def test_mirror_flips_left_right_in_any_phase(phase: int) -> None:
    """mirror: true -> each output is the image or its left-right flip; both occur (p = 1/2)."""
    t = transformer("mirror: true", phase)
    flips = 0
    for seed in range(60):
        out = apply(t, seed=seed)
        if np.array_equal(out, IMAGE[:, :, ::-1].astype(np.float32)):
            flips += 1
        else:
            np.testing.assert_array_equal(out, IMAGE.astype(np.float32))
    assert 15 <= flips <= 45


def test_mirror_false_never_flips() -> None:
    t = transformer("mirror: false crop_size: 5", pb.TEST)
    for seed in range(20):
        np.testing.assert_array_equal(apply(t, seed=seed), IMAGE[:, 1:6, 2:7].astype(np.float32))


def test_mirror_with_test_crop_flips_the_centre_crop() -> None:
    t = transformer("mirror: true crop_size: 4", pb.TEST)
    centre = IMAGE[:, 1:5, 2:6].astype(np.float32)
    seen = set()
    for seed in range(30):
        out = apply(t, seed=seed)
        flipped = np.array_equal(out, centre[:, :, ::-1])
        assert flipped or np.array_equal(out, centre)
        seen.add(flipped)
    assert seen == {True, False}


# ---------------------------------------------------------------------------
# mean and scale
# ---------------------------------------------------------------------------

def test_single_mean_value_all_channels() -> None:
    out = apply(transformer("mean_value: 10", pb.TEST))
    np.testing.assert_allclose(out, IMAGE.astype(np.float32) - 10)


def test_mean_value_per_channel() -> None:
    out = apply(transformer("mean_value: 1 mean_value: 20 mean_value: 100.5", pb.TEST))
    want = IMAGE.astype(np.float32) - np.array([1, 20, 100.5], np.float32)[:, None, None]
    np.testing.assert_allclose(out, want)


def test_mean_value_count_must_match_channels() -> None:
    """Caffe: one mean_value, or exactly one per channel."""
    with pytest.raises(McnnError, match="data_layer"):
        transformer("mean_value: 1 mean_value: 2", pb.TEST)


def test_scale_applies_after_mean() -> None:
    """(x - mean) * scale: x = 0..188, mean 4, scale 0.5 -> (x - 4)/2 (not x/2 - 4)."""
    out = apply(transformer("mean_value: 4 scale: 0.5", pb.TEST))
    np.testing.assert_allclose(out, (IMAGE.astype(np.float32) - 4) * 0.5)
    assert out[0, 0, 0] == pytest.approx(-2.0)


def test_scale_alone() -> None:
    out = apply(transformer("scale: 0.00390625", pb.TRAIN))   # 1/256
    np.testing.assert_allclose(out, IMAGE.astype(np.float32) / 256, rtol=1e-6)


def write_mean(path: Path, seed: int = 0) -> np.ndarray:
    mean = np.random.default_rng(seed).uniform(0, 50, (1, C, H, W)).astype(np.float32)
    write_binaryproto(path, mean)
    return mean[0]


def test_mean_file_without_crop(tmp_path: Path) -> None:
    mean = write_mean(tmp_path / "mean.binaryproto")
    out = apply(transformer(f'mean_file: "{tmp_path / "mean.binaryproto"}" scale: 2', pb.TEST))
    np.testing.assert_allclose(out, (IMAGE.astype(np.float32) - mean) * 2, rtol=1e-6)


def test_mean_file_at_crop_position_before_flip(tmp_path: Path) -> None:
    """TEST crop 4 at (1, 2) with mirror: out = flip?((x - mean)[:, 1:5, 2:6]) * scale: the mean is taken at
    the crop's source pixels, and the flip applies to the mean-subtracted crop."""
    mean = write_mean(tmp_path / "mean.binaryproto", seed=1)
    t = transformer(f'mean_file: "{tmp_path / "mean.binaryproto"}" crop_size: 4 mirror: true scale: 0.5', pb.TEST)
    want = (IMAGE.astype(np.float32) - mean)[:, 1:5, 2:6] * 0.5
    seen = set()
    for seed in range(30):
        out = apply(t, seed=seed)
        flipped = np.allclose(out, want[:, :, ::-1], rtol=1e-6)
        assert flipped or np.allclose(out, want, rtol=1e-6), seed
        seen.add(flipped)
    assert seen == {True, False}


def test_mean_file_with_train_crop_follows_the_crop(tmp_path: Path) -> None:
    """TRAIN random crops subtract the mean at the same window as the image."""
    mean = write_mean(tmp_path / "mean.binaryproto", seed=2)
    t = transformer(f'mean_file: "{tmp_path / "mean.binaryproto"}" crop_size: 5', pb.TRAIN)
    offsets = set()
    for seed in range(20):
        out = apply(t, seed=seed)
        # out + mean-crop must be an image crop; find which one by matching every offset
        matches = [(a, b) for a in range(3) for b in range(5)
                   if np.allclose(out + mean[:, a:a + 5, b:b + 5], IMAGE[:, a:a + 5, b:b + 5], atol=1e-4)]
        assert len(matches) == 1
        offsets.add(matches[0])
    assert len(offsets) > 3


def test_mean_file_shape_mismatch_is_an_error(tmp_path: Path) -> None:
    write_binaryproto(tmp_path / "m.binaryproto", np.zeros((1, C, H + 1, W), np.float32))
    with pytest.raises(McnnError, match="data_layer"):
        transformer(f'mean_file: "{tmp_path / "m.binaryproto"}"', pb.TEST)


def test_mean_file_and_mean_value_are_exclusive(tmp_path: Path) -> None:
    write_mean(tmp_path / "mean.binaryproto")
    with pytest.raises(McnnError, match="data_layer"):
        transformer(f'mean_file: "{tmp_path / "mean.binaryproto"}" mean_value: 3', pb.TEST)


# ---------------------------------------------------------------------------
# DataFeed: LMDB order, wrap-around, multi-process split, errors
# ---------------------------------------------------------------------------

N_RECORDS = 5


def write_db(path: Path, shapes: dict[int, tuple[int, int, int]] | None = None) -> Path:
    """Record i: every pixel = 10*i, label = 100 + i. Records are put in reverse order; LMDB keeps key order."""
    shapes = shapes or {}
    with LmdbWriter(path) as writer:
        for i in reversed(range(N_RECORDS)):
            img = np.full(shapes.get(i, (1, 2, 3)), 10 * i, np.uint8)
            writer.put(record_key(i, f"img{i}"), array_to_datum(img, 100 + i))
    return path


def data_layer(source: Path, batch: int, extra: str = "backend: LMDB") -> pb.LayerParameter:
    return parse_prototxt(f'name: "data" type: "Data" top: "data" top: "label" '
                          f'data_param {{ source: "{source}" batch_size: {batch} {extra} }}', pb.LayerParameter)


def record_ids(batch: dict) -> tuple[list[int], list[int]]:
    data, label = batch["data"].numpy(), batch["label"].numpy()
    ids = [int(d.flat[0]) // 10 for d in data]
    for d, i in zip(data, ids, strict=True):
        assert (d == 10 * i).all()
    return ids, [int(v) - 100 for v in label]


@pytest.mark.parametrize(("b", "want"), [(0, [0, 1]), (1, [2, 3]), (2, [4, 0]), (3, [1, 2]), (7, [4, 0])])
def test_feed_reads_key_order_and_wraps(tmp_path: Path, b: int, want: list[int]) -> None:
    """Batch b holds positions b*B .. b*B+B-1 modulo N (B = 2, N = 5)."""
    feed = DataFeed(data_layer(write_db(tmp_path / "db"), 2), pb.TEST, seed=0)
    assert feed.positions(b) == [2 * b, 2 * b + 1]
    ids, labels = record_ids(feed.batch(b))
    assert ids == want and labels == want
    out = feed.batch(b)
    assert tuple(out["data"].shape) == (2, 1, 2, 3) and out["data"].dtype == torch.float32
    assert out["label"].dtype == torch.float32   # labels are float blobs, as in Caffe


def test_feed_three_batches_of_three_cycle_through(tmp_path: Path) -> None:
    feed = DataFeed(data_layer(write_db(tmp_path / "db"), 3), pb.TRAIN, seed=1)
    seq = [i for b in range(5) for i in record_ids(feed.batch(b))[0]]
    assert seq == [p % N_RECORDS for p in range(15)]


@pytest.mark.parametrize("b", [0, 1, 2, 5])
def test_two_ranks_interleave_and_cover_world_one(tmp_path: Path, b: int) -> None:
    """world=2, batch B: rank r takes stream positions (b*B + j)*2 + r; together they cover exactly the
    positions that world=1 with batch 2B reads as batch b."""
    db = write_db(tmp_path / "db")
    # one copy per feed: the ranks run in separate processes (see the same-source test below)
    copies = [shutil.copytree(db, tmp_path / f"db{i}") for i in range(3)]
    ranks = [DataFeed(data_layer(copies[r], 2), pb.TRAIN, seed=0, rank=r, world=2) for r in range(2)]
    single = DataFeed(data_layer(copies[2], 4), pb.TRAIN, seed=0)
    p0, p1 = ranks[0].positions(b), ranks[1].positions(b)
    assert p0 == [4 * b, 4 * b + 2] and p1 == [4 * b + 1, 4 * b + 3]
    assert sorted(p0 + p1) == single.positions(b) == list(range(4 * b, 4 * b + 4))
    got = record_ids(ranks[0].batch(b))[0] + record_ids(ranks[1].batch(b))[0]
    assert sorted(got) == sorted(record_ids(single.batch(b))[0])
    assert record_ids(ranks[0].batch(b))[0] == [p % N_RECORDS for p in p0]


def test_train_and_test_layers_may_share_a_source(tmp_path: Path) -> None:
    """Caffe opens one DB handle per Data layer, so a TRAIN and a TEST Data layer (or two test nets) may read the
    same LMDB; the trainer builds all feeds in one process."""
    db = write_db(tmp_path / "db")
    train = DataFeed(data_layer(db, 2), pb.TRAIN, seed=0)
    test = DataFeed(data_layer(db, 3), pb.TEST, seed=0)
    assert record_ids(train.batch(1))[0] == [2, 3]
    assert record_ids(test.batch(1))[0] == [3, 4, 0]


def test_record_with_other_shape_names_its_key(tmp_path: Path) -> None:
    db = write_db(tmp_path / "db", shapes={3: (1, 3, 3)})
    feed = DataFeed(data_layer(db, 2), pb.TEST, seed=0)
    record_ids(feed.batch(0))                          # records 0, 1 are fine
    with pytest.raises(McnnError, match="00000003_img3"):
        feed.batch(1)                                  # records 2, 3


def test_missing_lmdb_names_path(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_lmdb"
    with pytest.raises(McnnError, match="no_such_lmdb"):
        DataFeed(data_layer(missing, 2), pb.TEST, seed=0)


@pytest.mark.parametrize("extra", ["", "backend: LEVELDB"])
def test_backend_other_than_lmdb_is_refused(tmp_path: Path, extra: str) -> None:
    """DataParameter.backend defaults to LEVELDB in Caffe; only LMDB is supported, so it must be explicit."""
    db = write_db(tmp_path / "db")
    with pytest.raises(McnnError, match="LMDB"):
        DataFeed(data_layer(db, 2, extra), pb.TEST, seed=0)


def test_feed_applies_transform(tmp_path: Path) -> None:
    """transform_param of the Data layer: (x - mean_value) * scale on every record."""
    db = write_db(tmp_path / "db")
    layer = data_layer(db, 2)
    layer.transform_param.mean_value.append(5)
    layer.transform_param.scale = 0.1
    feed = DataFeed(layer, pb.TEST, seed=0)
    data = feed.batch(1)["data"].numpy()   # records 2, 3: pixels 20, 30
    np.testing.assert_allclose(data[0], (20 - 5) * 0.1, rtol=1e-6)
    np.testing.assert_allclose(data[1], (30 - 5) * 0.1, rtol=1e-6)
