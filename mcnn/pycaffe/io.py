"""pycaffe's ``caffe.io``: images in and out of the net's layout, Datum and BlobProto conversion.

Images are NumPy arrays H x W x K, float in [0, 1] as :func:`load_image` returns them (pycaffe's
convention). :class:`Transformer` turns such an image into a net input K x H x W in the order
resize, transpose, channel swap, raw scale, mean subtraction, input scale (and back with
``deprocess``). Files are read with tifffile (TIFF) or Pillow (everything else); scikit-image is
not needed. Datum and BlobProto conversion reuse :mod:`mcnn.caffe.datum` and :mod:`mcnn.caffe.io`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mcnn.caffe import datum as cdatum
from mcnn.caffe import io as cio
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.errors import BadInputError, ConfigError

PathLike = str | os.PathLike[str]

#: skimage's rgb2gray weights (ITU-R 709 luma), which pycaffe's ``load_image(color=False)`` applies.
GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)


# ---------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------

def _read(path: Path) -> np.ndarray:
    """The file's pixels as stored: H x W or H x W x K, integer or float."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with tifffile.TiffFile(path) as tif:
                if not tif.pages:
                    raise ValueError("no image in the file")
                return np.asarray(tif.pages[0].asarray())
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
        return np.asarray(im)


def as_float(image: np.ndarray) -> np.ndarray:
    """float32 values as skimage's ``img_as_float``: integers divided by their type's maximum, bool 0/1."""
    arr = np.asarray(image)
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        return (arr.astype(np.float64) / np.iinfo(arr.dtype).max).astype(np.float32)
    return arr.astype(np.float32)


def load_image(filename: PathLike, color: bool = True) -> np.ndarray:
    """An image file as a float32 H x W x K array in [0, 1] (pycaffe's ``caffe.io.load_image``).

    ``color=True`` gives 3 channels (grey images repeated, an alpha channel dropped);
    ``color=False`` gives one channel (colour converted with :data:`GRAY_WEIGHTS`).
    :class:`BadInputError` naming the file if it is missing or unreadable.
    """
    path = Path(filename)
    if not path.is_file():
        raise BadInputError(str(path), "missing file")
    try:
        raw = _read(path)
    except Exception as exc:  # any decoder failure is one line naming the file
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise BadInputError(str(path), f"unreadable image ({text})") from None
    img = as_float(raw)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim not in (2, 3):
        raise BadInputError(str(path), f"not an H x W or H x W x K image (shape {img.shape})")
    if not color:
        if img.ndim == 3:
            img = img[:, :, :3] @ GRAY_WEIGHTS if img.shape[2] >= 3 else img[:, :, 0]
        return img[:, :, np.newaxis].astype(np.float32)
    if img.ndim == 2:
        return np.repeat(img[:, :, np.newaxis], 3, axis=2)
    if img.shape[2] == 4:
        return np.ascontiguousarray(img[:, :, :3])
    return img


def resize_image(im: np.ndarray, new_dims: Sequence[int], interp_order: int = 1) -> np.ndarray:
    """``im`` (H x W x K) resized to ``new_dims`` (H', W') with spline order ``interp_order``, as float32.

    Pixel centres map as in skimage's ``resize`` (the image edges stay aligned); beyond the
    outermost pixel centres the edge values are repeated. A constant image stays constant.
    """
    from scipy import ndimage

    arr = np.asarray(im, dtype=np.float32)
    height, width = (int(d) for d in new_dims[:2])
    if arr.ndim != 3:
        raise ConfigError(f"resize_image: needs an H x W x K image, got shape {arr.shape}")
    if (height, width) == arr.shape[:2]:
        return arr.copy()
    low, high = float(arr.min()), float(arr.max())
    if high == low:
        return np.full((height, width, arr.shape[2]), low, dtype=np.float32)
    factors = (height / arr.shape[0], width / arr.shape[1], 1.0)
    out = ndimage.zoom(arr.astype(np.float64), factors, order=interp_order, mode="nearest", grid_mode=True)
    return out[:height, :width].astype(np.float32)


def oversample(images: Sequence[np.ndarray] | np.ndarray, crop_dims: Sequence[int]) -> np.ndarray:
    """10 crops of ``crop_dims`` (H', W') per image: the 4 corners, the centre, then the same 5 mirrored.

    ``images`` are H x W x K (all one shape); returns (10 * len(images)) x H' x W' x K float32, the
    crops of each image together in the order top-left, top-right, bottom-left, bottom-right, centre.
    """
    if len(images) == 0:
        return np.zeros((0, *[int(d) for d in crop_dims], 0), dtype=np.float32)
    shape = np.asarray(images[0]).shape
    ch, cw = (int(d) for d in crop_dims[:2])
    if ch > shape[0] or cw > shape[1]:
        raise ConfigError(f"oversample: crop {ch}x{cw} is larger than the image {shape[0]}x{shape[1]}")
    top = int(shape[0] / 2.0 - ch / 2.0)
    left = int(shape[1] / 2.0 - cw / 2.0)
    corners = [(0, 0), (0, shape[1] - cw), (shape[0] - ch, 0), (shape[0] - ch, shape[1] - cw), (top, left)]
    crops = np.empty((10 * len(images), ch, cw, shape[2]), dtype=np.float32)
    for i, image in enumerate(images):
        im = np.asarray(image)
        for j, (y, x) in enumerate(corners):
            crop = im[y:y + ch, x:x + cw, :]
            crops[10 * i + j] = crop
            crops[10 * i + 5 + j] = crop[:, ::-1, :]
    return crops


class Transformer:
    """Turns H x W x K images into net inputs and back, per input blob (pycaffe's ``caffe.io.Transformer``).

    ``inputs`` maps each input blob name to its shape (N, C, H, W). :meth:`preprocess` applies, in
    order: resize to (H, W), transpose, channel swap, raw scale, mean subtraction, input scale.
    """

    def __init__(self, inputs: Mapping[str, Sequence[int]]):
        self.inputs = {name: tuple(int(d) for d in shape) for name, shape in inputs.items()}
        self.transpose: dict[str, tuple[int, ...]] = {}
        self.channel_swap: dict[str, tuple[int, ...]] = {}
        self.raw_scale: dict[str, float] = {}
        self.mean: dict[str, np.ndarray] = {}
        self.input_scale: dict[str, float] = {}

    def _check(self, name: str) -> None:
        if name not in self.inputs:
            raise ConfigError(f"Transformer: {name!r} is not one of the net inputs: {', '.join(self.inputs)}")

    def preprocess(self, in_: str, data: np.ndarray) -> np.ndarray:
        """``data`` (H x W x K) as input ``in_`` expects it (C x H x W with the transpose (2, 0, 1)), float32."""
        self._check(in_)
        out = np.asarray(data, dtype=np.float32)
        dims = self.inputs[in_][2:]
        if out.shape[:2] != dims:
            out = resize_image(out, dims)
        if in_ in self.transpose:
            out = out.transpose(self.transpose[in_])
        if in_ in self.channel_swap:
            out = out[list(self.channel_swap[in_]), :, :]
        out = np.array(out, dtype=np.float32)  # a copy: the scalings below work in place
        if in_ in self.raw_scale:
            out *= self.raw_scale[in_]
        if in_ in self.mean:
            out -= self.mean[in_]
        if in_ in self.input_scale:
            out *= self.input_scale[in_]
        return out

    def deprocess(self, in_: str, data: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`preprocess` (except the resize) for one input (singleton axes squeezed)."""
        self._check(in_)
        out = np.array(data, dtype=np.float32).squeeze()
        if in_ in self.input_scale:
            out /= self.input_scale[in_]
        if in_ in self.mean:
            out += self.mean[in_]
        if in_ in self.raw_scale:
            out /= self.raw_scale[in_]
        if in_ in self.channel_swap:
            out = out[np.argsort(self.channel_swap[in_]), :, :]
        if in_ in self.transpose:
            out = out.transpose(np.argsort(self.transpose[in_]))
        return out

    def set_transpose(self, in_: str, order: Sequence[int]) -> None:
        """The axis order that turns an image into the input, e.g. (2, 0, 1) for H x W x K -> K x H x W."""
        self._check(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ConfigError(f"Transformer: transpose order {tuple(order)} needs as many axes as the input "
                              f"{in_!r} has per image ({len(self.inputs[in_]) - 1})")
        self.transpose[in_] = tuple(int(i) for i in order)

    def set_channel_swap(self, in_: str, order: Sequence[int]) -> None:
        """The channel order applied after the transpose, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check(in_)
        if len(order) != self.inputs[in_][1]:
            raise ConfigError(f"Transformer: channel swap {tuple(order)} needs one entry per channel of "
                              f"{in_!r} ({self.inputs[in_][1]})")
        self.channel_swap[in_] = tuple(int(i) for i in order)

    def set_raw_scale(self, in_: str, scale: float) -> None:
        """Multiply by ``scale`` before the mean (e.g. 255 for [0, 1] images and a 0..255 mean)."""
        self._check(in_)
        self.raw_scale[in_] = float(scale)

    def set_mean(self, in_: str, mean: np.ndarray) -> None:
        """Subtract ``mean``: one value per channel (C,), or an elementwise C x H x W (or H x W) array."""
        self._check(in_)
        arr = np.asarray(mean, dtype=np.float32)
        if arr.ndim == 1:
            if arr.shape[0] != self.inputs[in_][1]:
                raise ConfigError(f"Transformer: mean has {arr.shape[0]} channels, input {in_!r} has "
                                  f"{self.inputs[in_][1]}")
            arr = arr[:, np.newaxis, np.newaxis]
        else:
            shape = (1, *arr.shape) if arr.ndim == 2 else arr.shape
            if len(shape) != 3 or tuple(shape) != self.inputs[in_][1:]:
                raise ConfigError(f"Transformer: mean of shape {arr.shape} does not fit input {in_!r} "
                                  f"(C x H x W = {self.inputs[in_][1:]})")
        self.mean[in_] = arr

    def set_input_scale(self, in_: str, scale: float) -> None:
        """Multiply by ``scale`` after the mean (e.g. the data layer's transform_param.scale)."""
        self._check(in_)
        self.input_scale[in_] = float(scale)


# ---------------------------------------------------------------------------
# Datum and BlobProto
# ---------------------------------------------------------------------------

def array_to_datum(arr: np.ndarray, label: int | None = None) -> pb.Datum:
    """A Datum of a C x H x W array: uint8 as bytes, anything else as float_data; ``label`` if given."""
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ConfigError(f"array_to_datum: needs a C x H x W array, got shape {arr.shape}")
    datum = cdatum.array_to_datum(arr, 0 if label is None else int(label))
    if label is None:
        datum.ClearField("label")
    return datum


def datum_to_array(datum: pb.Datum) -> np.ndarray:
    """The C x H x W array of a Datum: uint8 from ``data``, float64 from ``float_data`` (as pycaffe gives)."""
    arr = cdatum.datum_to_array(datum)
    return arr if arr.dtype == np.uint8 else arr.astype(np.float64)


def array_to_blobproto(arr: np.ndarray, diff: np.ndarray | None = None) -> pb.BlobProto:
    """A BlobProto with ``arr`` (shape and data) and optionally ``diff`` (same count)."""
    blob = cio.array_to_blob(np.asarray(arr))
    if diff is not None:
        values = np.asarray(diff, dtype=np.float32)
        if values.size != np.asarray(arr).size:
            raise ConfigError(f"array_to_blobproto: diff has {values.size} values, the data {np.asarray(arr).size}")
        blob.diff.extend(values.ravel().tolist())
    return blob


def blobproto_to_array(blob: pb.BlobProto, return_diff: bool = False) -> np.ndarray:
    """The data (or with ``return_diff`` the diff) of a BlobProto as a float64 array of its shape.

    Legacy num/channels/height/width take precedence over ``shape`` when set, as in pycaffe.
    """
    legacy = any(blob.HasField(f) for f in ("num", "channels", "height", "width"))
    shape = (blob.num, blob.channels, blob.height, blob.width) if legacy else cio.blob_shape(blob)
    if return_diff:
        values = np.asarray(blob.diff if len(blob.diff) else blob.double_diff, dtype=np.float64)
        if values.size != int(np.prod(shape)):
            raise ConfigError(f"blobproto_to_array: {values.size} diff values for shape {shape}")
        return values.reshape(shape)
    if legacy:
        probe = pb.BlobProto()
        probe.CopyFrom(blob)
        probe.ClearField("shape")
        return cio.blob_to_array(probe).astype(np.float64)
    return cio.blob_to_array(blob).astype(np.float64)


def arraylist_to_blobprotovector_str(arraylist: Sequence[np.ndarray]) -> bytes:
    """A serialised BlobProtoVector holding each array as a BlobProto."""
    vec = pb.BlobProtoVector(blobs=[array_to_blobproto(a) for a in arraylist])
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(text: bytes) -> list[np.ndarray]:
    """The arrays of a serialised BlobProtoVector."""
    vec = pb.BlobProtoVector()
    vec.ParseFromString(text)
    return [blobproto_to_array(b) for b in vec.blobs]


__all__ = [
    "Transformer",
    "array_to_blobproto",
    "array_to_datum",
    "arraylist_to_blobprotovector_str",
    "blobproto_to_array",
    "blobprotovector_str_to_arraylist",
    "datum_to_array",
    "load_image",
    "oversample",
    "resize_image",
]
