"""Reading and writing the single-channel image files of the raw downloads.

Readers return a 2-D array (rows x columns) in the file's own integer type (uint8 for 8-bit
BMP/JPEG/TIFF, uint16 for 16-bit TIFF/PNG) and turn every failure into a
:class:`BadInputError` naming the file. Writers are used by the synthetic look-alikes and write
the formats the publishers ship (8-bit grayscale BMP, 3-channel JPEG with equal R, G, B,
8/16-bit TIFF).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from mcnn.errors import BadInputError

PathLike = str | os.PathLike[str]

_PIL_SUFFIXES = {".bmp", ".jpg", ".jpeg", ".png"}
_TIFF_SUFFIXES = {".tif", ".tiff"}


def bit_depth(dtype: np.dtype | str) -> str:
    """A human name of an image type for messages: ``8-bit``, ``16-bit``, or the dtype name."""
    dt = np.dtype(dtype)
    if dt == np.uint8:
        return "8-bit"
    if dt == np.uint16:
        return "16-bit"
    return f"{dt.name}"


def read_plane(path: PathLike, label: str | None = None) -> np.ndarray:
    """Read one single-channel image file as a 2-D integer array (H x W).

    ``label`` is the name used in error messages (default: the path). Colour files whose
    channels are identical (BBBC015's JPEGs) and palettised BMPs are returned as grayscale;
    a colour file with different channels is a :class:`BadInputError` (never a silent conversion),
    as is a file that is missing, unreadable or truncated.
    """
    p = Path(path)
    name = label or str(p)
    if not p.is_file():
        raise BadInputError(name, "missing file")
    suffix = p.suffix.lower()
    try:
        if suffix in _TIFF_SUFFIXES:
            array = _read_tiff(p)
        elif suffix in _PIL_SUFFIXES:
            array = _read_pil(p)
        else:
            raise BadInputError(name, f"unsupported image type {p.suffix!r} (expected TIFF, BMP, JPEG or PNG)")
    except BadInputError:
        raise
    except Exception as exc:  # every decoder failure becomes one line naming the file
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInputError(name, f"unreadable or truncated image ({text})") from None
    return _as_plane(array, name)


def _read_tiff(p: Path) -> np.ndarray:
    import tifffile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tifffile.TiffFile(p) as tif:
            if not tif.pages:
                raise ValueError("no image in the file")
            return tif.pages[0].asarray()


def _read_pil(p: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(p) as im:
        im.load()
        if im.mode in ("L", "I;16", "I;16B", "I;16L"):
            return np.asarray(im)
        if im.mode == "I":
            arr = np.asarray(im)
            if arr.min() >= 0 and arr.max() <= 65535:
                return arr.astype(np.uint16)
            return arr
        if im.mode in ("RGB", "RGBA"):
            return np.asarray(im.convert("RGB"))  # grey in colour is taken as grey by _as_plane; colour is refused
        return np.asarray(im.convert("L"))


def _as_plane(array: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            # never a silent luminance conversion: each channel of a dataset is its own grey file
            raise BadInputError(name, f"a colour image ({arr.shape[-1]} different channels), expected one grey "
                                "channel per file")
        arr = rgb[..., 0]
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise BadInputError(name, f"expected a single-channel image, got an array of shape {arr.shape}")
    if arr.dtype.kind not in "ui":
        raise BadInputError(name, f"expected an integer image, got {arr.dtype.name} pixels")
    return np.ascontiguousarray(arr)


def check_plane(plane: np.ndarray, name: str, dtype: np.dtype | None, shape: tuple[int, int] | None) -> None:
    """Raise :class:`BadInputError` if ``plane`` is not of ``dtype`` or not ``shape`` (H, W)."""
    if dtype is not None and plane.dtype != np.dtype(dtype):
        raise BadInputError(name, f"wrong bit depth: {bit_depth(plane.dtype)}, expected {bit_depth(dtype)}")
    if shape is not None and tuple(plane.shape) != tuple(shape):
        raise BadInputError(
            name, f"wrong size: {plane.shape[1]}x{plane.shape[0]} (WxH), expected {shape[1]}x{shape[0]}"
        )


# ---------------------------------------------------------------------------
# Writers (synthetic look-alikes)
# ---------------------------------------------------------------------------

def write_tiff(path: PathLike, plane: np.ndarray) -> None:
    """Write a 2-D uint8 or uint16 array as an uncompressed single-page grayscale TIFF."""
    import tifffile

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(p, np.ascontiguousarray(plane), photometric="minisblack")


def write_bmp(path: PathLike, plane: np.ndarray) -> None:
    """Write a 2-D uint8 array as an 8-bit (grayscale palette) BMP."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(plane, dtype=np.uint8), mode="L").save(p, format="BMP")


def write_jpeg(path: PathLike, plane: np.ndarray, quality: int = 92) -> None:
    """Write a 2-D uint8 array as a 3-channel JPEG with equal R, G and B (as BBBC015 ships)."""
    from PIL import Image

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.repeat(np.ascontiguousarray(plane, dtype=np.uint8)[..., None], 3, axis=2)
    # 4:4:4 sampling keeps the three channels identical after decoding.
    Image.fromarray(rgb, mode="RGB").save(p, format="JPEG", quality=quality, subsampling=0)
