"""mcnn.engine.pooling: the tiled MAX fast path gives F.max_pool2d's values, and gradients keep Caffe's rule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mcnn.caffe import shapes
from mcnn.engine import pooling


def _window(k: int, s: int | None = None, pad: int = 0) -> shapes.Window2d:
    return shapes.Window2d(kernel=(k, k), stride=(s or k, s or k), pad=(pad, pad))


def _tied(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Values on a coarse grid (many tied maxima), with NaN, -inf and signed zeros planted."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-3, 4, shape, generator=g).float()
    flat = x.view(-1)
    flat[::37] = float("nan")
    flat[5::41] = float("-inf")
    flat[7::43] = -0.0
    return x


@pytest.mark.parametrize(("hw", "k", "ceil_mode"), [((64, 80), 2, True), ((64, 80), 16, True), ((64, 80), 64, False),
                                                    ((10, 14), 4, False), ((12, 12), 3, True)])
def test_tiled_max_equals_max_pool2d_value_for_value(hw: tuple[int, int], k: int, ceil_mode: bool) -> None:
    x = _tied((2, 3, *hw), seed=k)
    w = _window(k)
    out_hw = shapes.pool_output_hw(w, hw, "pool", ceil_mode)
    assert pooling.tiles_exactly(x, w, out_hw)
    fast = pooling.max_of_tiles(x, w.kernel, out_hw)
    reference = F.max_pool2d(x, w.kernel, w.stride, ceil_mode=ceil_mode)
    assert fast.shape == reference.shape == (2, 3, *out_hw)
    assert torch.equal(fast.isnan(), reference.isnan()) and fast.isnan().any()
    finite = ~reference.isnan()
    assert torch.equal(fast[finite], reference[finite])


def test_large_inputs_without_a_gradient_take_the_tiled_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    tiled = pooling.max_of_tiles
    monkeypatch.setattr(pooling, "max_of_tiles", lambda x, *a: calls.append(tuple(x.shape)) or tiled(x, *a))
    w = _window(4)
    big, small = torch.rand(1, 2, 128, 128), torch.rand(1, 1, 64, 64)  # 32,768 and 4,096 elements
    with torch.no_grad():
        y = pooling.max_pool(big, w, (32, 32), True)
        pooling.max_pool(small, w, (16, 16), True)
        pooling.max_pool(big, w, (32, 32), True, tiles=False)
    pooling.max_pool(big.requires_grad_(), w, (32, 32), True)
    assert calls == [(1, 2, 128, 128)]
    assert torch.equal(y, F.max_pool2d(big.detach(), 4, 4))


def test_windows_that_do_not_tile_take_the_general_path() -> None:
    x = torch.zeros(1, 1, 10, 14)
    clipped = shapes.pool_output_hw(_window(4), (10, 14), "p", True)  # CEIL: a last window cut by the edge
    assert clipped == (3, 4) and not pooling.tiles_exactly(x, _window(4), clipped)
    assert not pooling.tiles_exactly(x, _window(3, 2), (5, 7))  # overlapping windows
    assert not pooling.tiles_exactly(x, _window(2, pad=1), (6, 8))  # padded


def test_a_tied_maximum_gives_its_gradient_to_the_first_as_caffe_does() -> None:
    x = torch.tensor([[[[1.0, 1.0], [0.5, 1.0]]]], requires_grad=True)
    w = _window(2)
    y = pooling.max_pool(x, w, (1, 1), True)
    y.sum().backward()
    assert x.grad is not None and x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    with torch.no_grad():  # without a gradient the tiled path computes the same maximum
        assert pooling.max_pool(x, w, (1, 1), True).item() == 1.0
