"""D4 / D2 augmentation transforms (mcnn.prep.augment)."""

from __future__ import annotations

import numpy as np
import pytest

from mcnn.errors import ConfigError
from mcnn.prep.augment import D2, D4, apply, transforms


def test_d4_gives_eight_distinct_images() -> None:
    img = np.arange(2 * 5 * 5, dtype=np.uint8).reshape(2, 5, 5)
    outs = {apply(img, t).tobytes() for t in D4}
    assert len(outs) == 8
    assert np.array_equal(apply(img, "rot90"), np.rot90(img, 1, axes=(1, 2)))
    assert np.array_equal(apply(img, "flip"), img[:, :, ::-1])
    assert np.array_equal(apply(img, "flip_rot180"), img[:, ::-1, :])  # a vertical flip
    assert apply(img, "none") is img


def test_d2_keeps_the_shape_of_non_square_images() -> None:
    img = np.arange(3 * 4 * 6, dtype=np.uint8).reshape(3, 4, 6)
    assert transforms("d2", 4, 6) == D2
    outs = [apply(img, t) for t in D2]
    assert all(o.shape == img.shape for o in outs) and len({o.tobytes() for o in outs}) == 4


def test_d4_needs_square_images() -> None:
    assert transforms("d4", 8, 8) == D4 and transforms("none", 4, 6) == ("none",)
    with pytest.raises(ConfigError, match=r"--augment d4 needs square images .* use --augment d2"):
        transforms("d4", 1024, 1280)
