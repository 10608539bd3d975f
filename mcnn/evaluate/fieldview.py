"""Fields as pictures: channel colours, colour composites, and one example field per class.

The paper shows its multi-channel fields in fixed colours: nuclei blue and GFP green for
BBBC013-016 (Fig. 3a), actin red, tubulin green and nuclei blue for BBBC021 (Fig. 5a).
:func:`channel_colours` gives every channel of a dataset its colour from the channel's name
(the names the dataset modules in :mod:`mcnn.datasets` give, as ``dataset.json`` records them);
:func:`composite` mixes the channels of one C x H x W field into an RGB picture. The example fields
of a confusion matrix (:class:`Examples`) are stored as small RGB pictures in ``examples.npz`` so that
the summary of a reproduction can draw them without reading the LMDBs again.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcnn.caffe.transform import LmdbRecords
from mcnn.errors import ConfigError
from mcnn.fsutil import atomic_write_bytes
from mcnn.prep.prepared import DATASET_JSON

if TYPE_CHECKING:
    from mcnn.evaluate.predict import ModelRun

PathLike = str | os.PathLike[str]
RGB = tuple[float, float, float]

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
#: Colours for channels whose name says nothing, and for a colour already taken, in this order.
SPARE: tuple[RGB, ...] = (GREEN, RED, BLUE, (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0))
#: Channel names (lower case) and the colour the paper gives them. BBBC015's "crimson" channel is its
#: nuclear stain: the paper shows all of BBBC013-016 as nuclei blue, GFP green (Fig. 3a).
NAMED: dict[str, RGB] = {
    **dict.fromkeys(("dna", "dapi", "hoechst", "nuclei", "nucleus", "nuclear", "draq5", "crimson"), BLUE),
    **dict.fromkeys(("gfp", "fitc", "tubulin", "microtubules", "protein", "arrestin"), GREEN),
    **dict.fromkeys(("actin", "phalloidin"), RED),
}
#: Percentiles of a channel's pixels shown as black and as full colour.
STRETCH = (0.5, 99.5)
#: The longest side, in pixels, of a stored example picture.
THUMBNAIL = 192


def channel_colours(channels: Sequence[str]) -> list[RGB]:
    """The display colour (R, G, B in [0, 1]) of each channel, in the field's channel order.

    One channel is grey (white). Otherwise a channel named in :data:`NAMED` (case-insensitive:
    DNA/DAPI/nuclei blue; GFP/FITC/tubulin/protein green; actin red) takes that colour unless an
    earlier channel already has it; every other channel takes the first colour of :data:`SPARE`
    (green, red, blue, yellow, magenta, cyan) no earlier channel has. So BBBC021's (DNA, tubulin,
    actin) is blue, green, red as in Fig. 5a, and HPA's (protein, nucleus, microtubules, ER) is
    green, blue, red, yellow, the Human Protein Atlas' own colours.
    """
    if len(channels) == 1:
        return [(1.0, 1.0, 1.0)]
    taken: list[RGB] = []
    for name in channels:
        wanted = NAMED.get(name.strip().lower())
        if wanted is None or wanted in taken:
            wanted = next((c for c in SPARE if c not in taken), (1.0, 1.0, 1.0))
        taken.append(wanted)
    return taken


def stretch(plane: np.ndarray) -> np.ndarray:
    """One channel (H x W, any number type) as float32 in [0, 1]: the :data:`STRETCH` percentiles map to 0
    and 1 (a constant channel is all 0)."""
    values = np.asarray(plane, dtype=np.float32)
    lo, hi = np.percentile(values, STRETCH)
    if hi <= lo:
        return np.zeros(values.shape, np.float32)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)


def composite(image: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """A C x H x W field as an H x W x 3 float32 RGB picture in [0, 1]: each channel stretched
    (:func:`stretch`) and added in its :func:`channel_colours` colour."""
    if image.ndim != 3 or image.shape[0] != len(channels):
        raise ConfigError(f"a field of shape {'x'.join(map(str, image.shape))} does not have the {len(channels)} "
                          f"channels {', '.join(channels)}")
    rgb = np.zeros((*image.shape[1:], 3), np.float32)
    for plane, colour in zip(image, channel_colours(channels), strict=True):
        rgb += stretch(plane)[..., None] * np.asarray(colour, np.float32)
    return np.clip(rgb, 0.0, 1.0)


def shrink(array: np.ndarray, max_side: int) -> np.ndarray:
    """``array`` (H x W or H x W x 3) averaged over f x f blocks, f the smallest integer that makes both
    sides at most ``max_side`` (edge rows and columns beyond a whole block dropped); unchanged if f = 1."""
    h, w = array.shape[:2]
    f = max(1, -(-max(h, w) // max_side))
    if f == 1:
        return array
    cut = array[: h // f * f, : w // f * f].astype(np.float32)
    return cut.reshape(h // f, f, w // f, f, *array.shape[2:]).mean(axis=(1, 3))


def thumbnail(image: np.ndarray, channels: Sequence[str], max_side: int = THUMBNAIL) -> np.ndarray:
    """The :func:`composite` of a C x H x W field, shrunk to at most ``max_side`` pixels a side, as uint8 RGB."""
    return np.round(shrink(composite(image, channels), max_side) * 255).astype(np.uint8)


def find_channels(lmdb: PathLike) -> tuple[str, ...] | None:
    """The channel names of the prepared dataset an LMDB belongs to: ``channels`` of the ``dataset.json``
    in the LMDB's folder or up to three folders above (None when there is none)."""
    folder = Path(lmdb).resolve()
    for parent in [folder, *folder.parents[:3]]:
        path = parent / DATASET_JSON
        if path.is_file():
            try:
                channels = json.loads(path.read_text(encoding="utf-8")).get("channels")
            except (json.JSONDecodeError, AttributeError):
                return None
            return tuple(str(c) for c in channels) if isinstance(channels, list) else None
    return None


def resolve_channels(given: Sequence[str] | None, count: int, source: str) -> tuple[str, ...]:
    """The channel names to colour a ``count``-channel field by: ``given`` (checked against ``count``),
    else ``channel0``, ``channel1``, ... (which :func:`channel_colours` colours by position)."""
    if given is None:
        return tuple(f"channel{i}" for i in range(count))
    if len(given) != count:
        raise ConfigError(f"{source}: {len(given)} channel names ({', '.join(given)}) for {count}-channel fields")
    return tuple(given)


@dataclass
class Examples:
    """One example field per class: ``images[i]`` is the uint8 RGB picture (h x w x 3) of the record
    ``keys[i]`` of class ``classes[i]``, or None where no record of that class was at hand."""

    classes: list[str]
    keys: list[str | None]
    images: list[np.ndarray | None]

    def found(self) -> int:
        """How many classes have an example."""
        return sum(image is not None for image in self.images)


def first_of_each_class(labels: Sequence[int], count: int) -> list[int | None]:
    """For each class 0..count-1, the position of its first record in ``labels`` (None if it has none)."""
    first: list[int | None] = [None] * count
    for i, label in enumerate(labels):
        if 0 <= int(label) < count and first[int(label)] is None:
            first[int(label)] = i
    return first


def class_examples(lmdb: PathLike, labels: Sequence[int], classes: Sequence[str], channels: Sequence[str] | None,
                   max_side: int = THUMBNAIL) -> Examples:
    """The first record of each class in ``lmdb`` (key order; ``labels`` are the records' labels in that
    order, e.g. :attr:`mcnn.evaluate.predict.Predictions.labels`) as a :func:`thumbnail`.

    ``channels`` name the record's channels (None: :func:`find_channels`, then numbered names).
    """
    records = LmdbRecords(lmdb)
    names = resolve_channels(channels if channels is not None else find_channels(lmdb), records.shape[0], str(lmdb))
    keys: list[str | None] = []
    images: list[np.ndarray | None] = []
    for index in first_of_each_class(labels, len(classes)):
        if index is None:
            keys.append(None)
            images.append(None)
            continue
        image, _ = records.image(index)
        keys.append(records.keys[index].decode())
        images.append(thumbnail(image, names, max_side))
    return Examples(list(classes), keys, images)


def run_examples(run: ModelRun, lmdb: PathLike, channels: Sequence[str] | None) -> Examples:
    """:func:`class_examples` of the LMDB that ``run`` (:func:`mcnn.evaluate.predict.run_model`) predicted."""
    return class_examples(lmdb, run.predictions.labels.tolist(), run.classes, channels)


def write_examples(path: PathLike, examples: Examples) -> Path:
    """``examples`` as an .npz: ``classes`` and ``keys`` (strings, "" for none), ``example_<i>`` the picture
    of class i (absent for none); written atomically."""
    arrays: dict[str, np.ndarray] = {"classes": np.asarray(examples.classes, dtype=str),
                                     "keys": np.asarray([k or "" for k in examples.keys], dtype=str)}
    for i, image in enumerate(examples.images):
        if image is not None:
            arrays[f"example_{i}"] = image
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def read_examples(path: PathLike) -> Examples:
    """What :func:`write_examples` wrote."""
    with np.load(path, allow_pickle=False) as data:
        classes = [str(c) for c in data["classes"]]
        keys = [str(k) or None for k in data["keys"]]
        images = [data[f"example_{i}"] if f"example_{i}" in data.files else None for i in range(len(classes))]
    return Examples(classes, keys, images)


def merge_examples(parts: Sequence[Examples], classes: Sequence[str]) -> Examples | None:
    """For each class, the example of the first part that has one (None when ``parts`` is empty); parts
    whose class list differs from ``classes`` are left out."""
    usable = [p for p in parts if p.classes == list(classes)]
    if not usable:
        return None
    keys: list[str | None] = []
    images: list[np.ndarray | None] = []
    for i in range(len(classes)):
        part = next((p for p in usable if p.images[i] is not None), None)
        keys.append(part.keys[i] if part else None)
        images.append(part.images[i] if part else None)
    return Examples(list(classes), keys, images)
