"""caffe.io on the engine: images, the Transformer, Datum/BlobProto conversion, and caffe.Classifier.

Expected values are pycaffe's documented behaviour, worked out by hand or with plain NumPy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mcnn.caffe import pb
from mcnn.caffe.io import parse_prototxt, weights_to_caffemodel, write_binaryproto, write_caffemodel
from mcnn.errors import BadInputError, ConfigError
from mcnn.pycaffe import io as cio
from mcnn.pycaffe.classifier import Classifier

# -- load_image ------------------------------------------------------------------------------


def test_load_image_colour_grey_alpha_and_16_bit(tmp_path: Path) -> None:
    rgb = np.array([[[255, 0, 51], [0, 255, 102]]], dtype=np.uint8)  # 1 x 2 x 3
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    img = cio.load_image(tmp_path / "rgb.png")
    assert img.dtype == np.float32 and img.shape == (1, 2, 3)
    np.testing.assert_allclose(img, rgb / 255.0, rtol=1e-6)
    grey = cio.load_image(tmp_path / "rgb.png", color=False)
    assert grey.shape == (1, 2, 1)
    # skimage's rgb2gray: 0.2125 R + 0.7154 G + 0.0721 B
    np.testing.assert_allclose(grey[0, :, 0], [0.2125 + 0.0721 * 0.2, 0.7154 + 0.0721 * 0.4], rtol=1e-5)
    rgba = np.dstack([rgb, np.full((1, 2), 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_allclose(cio.load_image(tmp_path / "rgba.png"), rgb / 255.0, rtol=1e-6)
    plane = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "grey16.tif", plane)
    three = cio.load_image(tmp_path / "grey16.tif")
    assert three.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_allclose(three[:, :, c], plane / 65535.0, rtol=1e-6)
    one = cio.load_image(tmp_path / "grey16.tif", color=False)
    np.testing.assert_allclose(one[:, :, 0], plane / 65535.0, rtol=1e-6)


def test_load_image_names_the_bad_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"nope\.png: missing file"):
        cio.load_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(BadInputError, match=r"junk\.png: unreadable image"):
        cio.load_image(tmp_path / "junk.png")


# -- resize_image, oversample ------------------------------------------------------------------

def test_resize_image_bilinear_between_pixel_centres() -> None:
    row = np.array([[0.0, 1.0]], dtype=np.float32)[:, :, None].repeat(2, axis=0)  # 2 x 2 x 1
    up = cio.resize_image(row, (2, 4))
    # output centre i maps to input (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (clamped at the edges)
    np.testing.assert_allclose(up[0, :, 0], [0.0, 0.25, 0.75, 1.0], atol=1e-6)
    down = cio.resize_image(np.arange(8, dtype=np.float32).reshape(2, 4, 1), (1, 2))
    # centres map to (i + 0.5) * 2 - 0.5 = 0.5, 2.5 in x and 0.5 in y: means of 2 x 2 blocks
    np.testing.assert_allclose(down[:, :, 0], [[2.5, 4.5]], atol=1e-6)
    many = cio.resize_image(np.ones((3, 3, 5), np.float32) * 0.3, (6, 2))
    assert many.shape == (6, 2, 5) and np.allclose(many, 0.3)  # a constant image stays constant
    assert cio.resize_image(row, (2, 2)) is not row


def test_oversample_gives_corners_centre_and_mirrors() -> None:
    image = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2)
    crops = cio.oversample([image, image + 100], (2, 3))
    assert crops.shape == (20, 2, 3, 2)
    # centre: int(4/2 - 1) = 1, int(5/2 - 1.5) = 1
    expected = [image[0:2, 0:3], image[0:2, 2:5], image[2:4, 0:3], image[2:4, 2:5], image[1:3, 1:4]]
    for i, crop in enumerate(expected):
        np.testing.assert_array_equal(crops[i], crop)
        np.testing.assert_array_equal(crops[5 + i], crop[:, ::-1])
        np.testing.assert_array_equal(crops[10 + i], crop + 100)


# -- Transformer -----------------------------------------------------------------------------

def test_transformer_preprocess_order_and_deprocess() -> None:
    t = cio.Transformer({"data": (1, 3, 2, 2)})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255)
    t.set_mean("data", np.array([10.0, 20.0, 30.0]))
    t.set_input_scale("data", 0.5)
    image = np.random.default_rng(0).random((2, 2, 3)).astype(np.float32)
    out = t.preprocess("data", image)
    expected = (image.transpose(2, 0, 1)[[2, 1, 0]] * 255 - np.array([10, 20, 30])[:, None, None]) * 0.5
    assert out.dtype == np.float32 and out.shape == (3, 2, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    np.testing.assert_allclose(t.deprocess("data", out[None]), image, rtol=1e-5, atol=1e-6)
    big = np.ones((4, 4, 3), np.float32) * 0.5
    np.testing.assert_allclose(t.preprocess("data", big), (127.5 - np.array([10, 20, 30])[:, None, None]) * 0.5 *
                               np.ones((3, 2, 2)), rtol=1e-6)  # resized to 2 x 2 first; the mean is per input channel
    elementwise = cio.Transformer({"data": (1, 1, 2, 2)})
    elementwise.set_transpose("data", (2, 0, 1))
    elementwise.set_mean("data", np.array([[1.0, 2.0], [3.0, 4.0]]))  # an H x W mean
    np.testing.assert_allclose(elementwise.preprocess("data", np.zeros((2, 2, 1))), -np.array([[[1, 2], [3, 4]]]))


@pytest.mark.parametrize(("call", "message"), [
    (lambda t: t.set_transpose("data", (1, 0)), "transpose order"),
    (lambda t: t.set_channel_swap("data", (1, 0)), "one entry per channel"),
    (lambda t: t.set_mean("data", np.zeros(2)), "mean has 2 channels"),
    (lambda t: t.set_mean("data", np.zeros((3, 5, 5))), "does not fit"),
    (lambda t: t.preprocess("image", np.zeros((2, 2, 3))), "'image' is not one of the net inputs: data"),
])
def test_transformer_refuses_what_does_not_fit(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call(cio.Transformer({"data": (1, 3, 2, 2)}))


# -- Datum, BlobProto --------------------------------------------------------------------------

def test_datum_round_trips() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    datum = cio.array_to_datum(image, 4)
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 2, 2, 4)
    assert datum.data == image.tobytes() and not len(datum.float_data)
    back = cio.datum_to_array(datum)
    assert back.dtype == np.uint8 and np.array_equal(back, image)
    floats = cio.array_to_datum(image.astype(np.float32) / 4)
    assert not floats.HasField("label") and list(floats.float_data)[:3] == [0.0, 0.25, 0.5]
    values = cio.datum_to_array(floats)
    assert values.dtype == np.float64 and np.array_equal(values, image / 4)
    with pytest.raises(ConfigError, match="C x H x W"):
        cio.array_to_datum(np.zeros((2, 2)))


def test_blobproto_round_trips_with_diff_legacy_and_vectors(tmp_path: Path) -> None:
    data = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    blob = cio.array_to_blobproto(data, diff=-data)
    assert list(blob.shape.dim) == [1, 2, 3]
    np.testing.assert_array_equal(cio.blobproto_to_array(blob), data)
    np.testing.assert_array_equal(cio.blobproto_to_array(blob, return_diff=True), -data)
    write_binaryproto(tmp_path / "mean.binaryproto", np.ones((2, 3, 3)))  # compute_image_mean's legacy layout
    mean = pb.BlobProto.FromString((tmp_path / "mean.binaryproto").read_bytes())
    assert cio.blobproto_to_array(mean).shape == (1, 2, 3, 3)
    arrays = [data, np.array([1.5, 2.5])]
    text = cio.arraylist_to_blobprotovector_str(arrays)
    assert isinstance(text, bytes)
    back = cio.blobprotovector_str_to_arraylist(text)
    assert [a.shape for a in back] == [(1, 2, 3), (2,)]
    np.testing.assert_array_equal(back[1], [1.5, 2.5])


# -- Classifier ------------------------------------------------------------------------------

DEPLOY = """name: "tiny"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 3 dim: 3 dim: 4 dim: 4 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" inner_product_param { num_output: 2 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def classifier_files(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(DEPLOY)
    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((2, 48)).astype(np.float32) * 0.01, np.array([0.1, -0.2], np.float32)
    model = tmp_path / "w.caffemodel"
    write_caffemodel(model, weights_to_caffemodel(parse_prototxt(DEPLOY, pb.NetParameter), {"fc": [w, b]}))
    return deploy, model, w, b


def test_classifier_predicts_centre_crops_and_oversampled_averages(classifier_files) -> None:
    deploy, model, w, b = classifier_files
    mean = np.array([0.2, 0.3, 0.4])
    clf = Classifier(str(deploy), str(model), image_dims=(6, 6), mean=mean, raw_scale=255.0, channel_swap=(2, 1, 0))
    images = [np.random.default_rng(i).random((6, 6, 3)).astype(np.float32) for i in range(2)]

    def scores(crop: np.ndarray) -> np.ndarray:
        x = crop.transpose(2, 0, 1)[[2, 1, 0]] * 255.0 - mean[:, None, None]
        return softmax(w.astype(np.float64) @ x.ravel() + b)

    centre = clf.predict(images, oversample=False)
    assert centre.shape == (2, 2)
    for i, image in enumerate(images):
        np.testing.assert_allclose(centre[i], scores(image[1:5, 1:5]), rtol=1e-4)
    averaged = clf.predict(images)  # 20 crops, run as 7 batches of the net's 3 (the last one padded)
    for i, image in enumerate(images):
        windows = [image[0:4, 0:4], image[0:4, 2:6], image[2:6, 0:4], image[2:6, 2:6], image[1:5, 1:5]]
        expected = np.mean([scores(c) for c in windows] + [scores(c[:, ::-1]) for c in windows], axis=0)
        np.testing.assert_allclose(averaged[i], expected, rtol=1e-4)
    with pytest.raises(ConfigError, match="smaller than the net's input"):
        Classifier(str(deploy), str(model), image_dims=(3, 3)).predict(images)


def test_classifier_resizes_to_image_dims_first(classifier_files) -> None:
    deploy, model, w, b = classifier_files
    clf = Classifier(str(deploy), str(model))  # image_dims default: the net's 4 x 4
    image = np.full((9, 7, 3), 0.25, np.float32)
    out = clf.predict([image], oversample=False)
    np.testing.assert_allclose(out[0], softmax(w.astype(np.float64) @ np.full(48, 0.25) + b), rtol=1e-4)
