"""Offline augmentation: the rotations and flips of the square (dihedral group D4).

Caffe itself only mirrors and crops, so the paper's augmented images had to be written into the
LMDB. ``d4`` gives the 8 symmetries of a square image; images that are not square keep their shape
only under the 4 symmetries of ``d2`` (identity, horizontal flip, vertical flip, 180° rotation).
Transforms act on C x H x W arrays; ``flip`` mirrors left-right and is applied after the rotation
(``flip_rot90`` = rotate 90° counter-clockwise, then mirror).
"""

from __future__ import annotations

import numpy as np

from mcnn.errors import ConfigError

AUGMENTS = ("none", "d2", "d4")
D4 = ("none", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")
D2 = ("none", "flip", "flip_rot180", "rot180")


def transforms(augment: str, height: int, width: int) -> tuple[str, ...]:
    """The transform names written per training image for ``--augment`` (identity first)."""
    if augment == "none":
        return ("none",)
    if augment == "d2":
        return D2
    if augment == "d4":
        if height != width:
            raise ConfigError(f"--augment d4 needs square images (90° rotations would turn {height}x{width} into "
                              f"{width}x{height}); use --augment d2 for the 4 shape-preserving flips and rotations")
        return D4
    raise ConfigError(f"--augment {augment}: choose from {', '.join(AUGMENTS)}")


def apply(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` (C x H x W) under the transform ``name`` (a contiguous copy unless ``none``)."""
    if name == "none":
        return image
    flip = name.startswith("flip")
    rot = name[5:] if flip else name
    k = {"": 0, "rot90": 1, "rot180": 2, "rot270": 3}.get(rot)
    if k is None:
        raise ValueError(f"unknown transform {name!r}")
    out = np.rot90(image, k=k, axes=(1, 2)) if k else image
    if flip:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)
