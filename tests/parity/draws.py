"""Seeded random single-layer nets: one layer of each supported type fed by Input layers.

Each draw is a :class:`Case`: the net's prototxt text, its inputs (float data, integer labels), which
bottoms get a diff, the top diffs of a backward pass, and the learnable blobs where Caffe's fillers
would not do (BatchNorm's statistics). Caffe's fillers (Gaussian, std 1) fill the other learnable
blobs; the oracle writes the values it used, and the engine loads them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Shape = tuple[int, ...]


@dataclass
class Case:
    """One random net: ``layer`` is the text inside ``layer { ... }`` of the layer under test (named L)."""

    name: str
    kind: str
    layer: str
    bottoms: dict[str, Shape]
    tops: list[str]
    labels: dict[str, int] = field(default_factory=dict)  # label bottom -> number of classes
    diff_bottoms: list[str] = field(default_factory=list)
    backward: bool = True
    loss: bool = False
    params: list[np.ndarray] = field(default_factory=list)

    def prototxt(self) -> str:
        """The whole net: one Input layer per bottom, then layer L; ``force_backward`` when diffs are compared."""
        lines = [f'name: "{self.name}"']
        if self.backward:
            lines.append("force_backward: true")
        for b, shape in self.bottoms.items():
            dims = " ".join(f"dim: {d}" for d in shape)
            lines.append(f'layer {{ name: "in_{b}" type: "Input" top: "{b}" input_param {{ shape {{ {dims} }} }} }}')
        lines.append(f'layer {{ name: "L" type: "{self.kind}" {self.layer} }}')
        return "\n".join(lines) + "\n"

    def arrays(self, seed: int) -> dict[str, np.ndarray]:
        """Seeded inputs (``in_<blob>``) and given learnable blobs (``param_<i>``), float32."""
        rng = np.random.default_rng(seed)
        out = {}
        for b, shape in self.bottoms.items():
            if b in self.labels:
                out[f"in_{b}"] = rng.integers(0, self.labels[b], shape).astype(np.float32)
            else:
                out[f"in_{b}"] = rng.standard_normal(shape).astype(np.float32)
        for i, p in enumerate(self.params):
            out[f"param_{i}"] = np.asarray(p, np.float32)
        return out


GAUSS = 'weight_filler { type: "gaussian" std: 1 } bias_filler { type: "gaussian" std: 1 }'


def _io(bottoms: list[str], tops: list[str]) -> str:
    return " ".join([f'bottom: "{b}"' for b in bottoms] + [f'top: "{t}"' for t in tops])


def _pair(rng: np.random.Generator, name: str, low: int, high: int) -> tuple[str, int, int]:
    """``name: v`` (``kernel_size`` for kernel) or ``name_h: .. name_w: ..`` (sometimes left at the default);
    the text and the h/w values."""
    form = rng.integers(3)
    h, w = int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1))
    if form == 0:
        return f"{'kernel_size' if name == 'kernel' else name}: {h}", h, h
    if form == 1:
        return f"{name}_h: {h} {name}_w: {w}", h, w
    return "", -1, -1


def conv(rng: np.random.Generator, name: str) -> Case:
    """Convolution with groups, dilation, rectangular kernels, pads and strides, with or without bias."""
    group = int(rng.choice([1, 1, 2, 3]))
    c, n = group * int(rng.integers(1, 3)), int(rng.integers(1, 3))
    h, w = int(rng.integers(3, 9)), int(rng.integers(3, 9))
    kernel = _pair(rng, "kernel", 1, 4)[0] or f"kernel_size: {int(rng.integers(1, 4))}"
    pad, stride = _pair(rng, "pad", 0, 2)[0], _pair(rng, "stride", 1, 3)[0]
    dil = f"dilation: {int(rng.integers(1, 3))}" if rng.random() < 0.3 else ""
    bias = "" if rng.random() < 0.7 else "bias_term: false"
    out = group * int(rng.integers(1, 3))
    g = f"group: {group}" if group > 1 else ""
    text = (f'{_io(["x"], ["y"])} convolution_param {{ num_output: {out} {kernel} {pad} {stride} {dil} {g} {bias} '
            f'{GAUSS} }}')
    return Case(name, "Convolution", text, {"x": (n, c, h, w)}, ["y"], diff_bottoms=["x"])


def pool(rng: np.random.Generator, name: str) -> Case:
    """MAX and AVE pooling with pads, strides, rectangular windows, ceil rounding, or global."""
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = int(rng.integers(2, 9)), int(rng.integers(2, 9))
    method = rng.choice(["MAX", "AVE"])
    if rng.random() < 0.15:
        body = "global_pooling: true"
    else:
        kernel = _pair(rng, "kernel", 1, 4)[0] or f"kernel_size: {int(rng.integers(1, 4))}"
        body = f"{kernel} {_pair(rng, 'pad', 0, 2)[0]} {_pair(rng, 'stride', 1, 3)[0]}"
    text = f'{_io(["x"], ["y"])} pooling_param {{ pool: {method} {body} }}'
    return Case(name, "Pooling", text, {"x": (n, c, h, w)}, ["y"], diff_bottoms=["x"])


def inner_product(rng: np.random.Generator, name: str) -> Case:
    """InnerProduct over the axes from ``axis`` on (sometimes negative), transposed or not."""
    shape = tuple(int(rng.integers(1, 4)) for _ in range(int(rng.integers(2, 5))))
    axis = int(rng.integers(1, len(shape)))
    if rng.random() < 0.3:
        axis -= len(shape)
    opts = f"axis: {axis}" if axis != 1 or rng.random() < 0.5 else ""
    opts += " transpose: true" if rng.random() < 0.4 else ""
    opts += " bias_term: false" if rng.random() < 0.2 else ""
    text = f'{_io(["x"], ["y"])} inner_product_param {{ num_output: {int(rng.integers(1, 6))} {opts} {GAUSS} }}'
    return Case(name, "InnerProduct", text, {"x": shape}, ["y"], diff_bottoms=["x"])


def lrn(rng: np.random.Generator, name: str) -> Case:
    """LRN across or within channels, odd local sizes, alpha, beta and k."""
    region = rng.choice(["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
    size = int(rng.choice([1, 3, 5]))
    text = (f'{_io(["x"], ["y"])} lrn_param {{ local_size: {size} alpha: {rng.uniform(0.1, 2):.3f} '
            f'beta: {rng.uniform(0.3, 1):.3f} k: {rng.uniform(0.5, 2):.3f} norm_region: {region} }}')
    shape = (int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    return Case(name, "LRN", text, {"x": shape}, ["y"], diff_bottoms=["x"])


def _any_shape(rng: np.random.Generator, low: int = 1, high: int = 4) -> Shape:
    return tuple(int(rng.integers(low, high + 1)) for _ in range(int(rng.integers(2, 5))))


def elementwise(rng: np.random.Generator, name: str) -> Case:
    """ReLU (leaky sometimes), Sigmoid, TanH, Dropout (TEST: identity) and Split."""
    kind = str(rng.choice(["ReLU", "Sigmoid", "TanH", "Dropout", "Split"]))
    param, tops = "", ["y"]
    if kind == "ReLU" and rng.random() < 0.6:
        param = f"relu_param {{ negative_slope: {rng.uniform(0, 0.5):.3f} }}"
    if kind == "Dropout":
        param = f"dropout_param {{ dropout_ratio: {rng.uniform(0.1, 0.9):.2f} }}"
    if kind == "Split":
        tops = ["y", "z"][: int(rng.integers(1, 3))]
    return Case(name, kind, f'{_io(["x"], tops)} {param}', {"x": _any_shape(rng)}, tops, diff_bottoms=["x"])


def softmax(rng: np.random.Generator, name: str) -> Case:
    """Softmax along any axis (negative too, the batch axis included)."""
    shape = _any_shape(rng)
    axis = int(rng.integers(-len(shape), len(shape)))
    param = f"softmax_param {{ axis: {axis} }}" if axis != 1 or rng.random() < 0.5 else ""
    return Case(name, "Softmax", f'{_io(["x"], ["y"])} {param}', {"x": shape}, ["y"], diff_bottoms=["x"])


def concat(rng: np.random.Generator, name: str) -> Case:
    """Two or three bottoms joined along an axis (0 and negative ones too)."""
    base = list(_any_shape(rng))
    axis = int(rng.integers(-len(base), len(base)))
    k = axis % len(base)
    bottoms = {}
    for i in range(int(rng.integers(2, 4))):
        shape = list(base)
        shape[k] = int(rng.integers(1, 4))
        bottoms[f"x{i}"] = tuple(shape)
    param = f"concat_param {{ axis: {axis} }}" if axis != 1 or rng.random() < 0.5 else ""
    return Case(name, "Concat", f'{_io(list(bottoms), ["y"])} {param}', bottoms, ["y"], diff_bottoms=list(bottoms))


def flatten(rng: np.random.Generator, name: str) -> Case:
    """Flatten from ``axis`` to ``end_axis`` (defaults, positive and negative)."""
    shape = _any_shape(rng)
    nd = len(shape)
    axis, end = int(rng.integers(1, nd)), int(rng.integers(1, nd))
    axis, end = min(axis, end), max(axis, end)
    if rng.random() < 0.3:
        end -= nd
    param = f"flatten_param {{ axis: {axis} end_axis: {end} }}" if rng.random() < 0.8 else ""
    return Case(name, "Flatten", f'{_io(["x"], ["y"])} {param}', {"x": shape}, ["y"], diff_bottoms=["x"])


def reshape(rng: np.random.Generator, name: str) -> Case:
    """Reshape with 0 (copy) and -1 (infer) dims, keeping the batch axis."""
    n, c, h, w = (int(rng.integers(1, 4)) for _ in range(4))
    choice = int(rng.integers(4))
    dims = [["0", "-1"], ["0", str(c), str(h * w)], ["0", "0", "-1", "1"], ["0", str(c * h), "-1"]][choice]
    text = f'{_io(["x"], ["y"])} reshape_param {{ shape {{ {" ".join("dim: " + d for d in dims)} }} }}'
    return Case(name, "Reshape", text, {"x": (n, c, h, w)}, ["y"], diff_bottoms=["x"])


def eltwise(rng: np.random.Generator, name: str) -> Case:
    """Eltwise PROD, SUM (with coefficients sometimes) and MAX over two or three bottoms."""
    shape, k = _any_shape(rng), int(rng.integers(2, 4))
    op = str(rng.choice(["PROD", "SUM", "MAX"]))
    coeff = ""
    if op == "SUM" and rng.random() < 0.5:
        coeff = " ".join(f"coeff: {c:.3f}" for c in rng.uniform(-2, 2, k))
    bottoms = {f"x{i}": shape for i in range(k)}
    text = f'{_io(list(bottoms), ["y"])} eltwise_param {{ operation: {op} {coeff} }}'
    return Case(name, "Eltwise", text, bottoms, ["y"], diff_bottoms=list(bottoms))


def scale(rng: np.random.Generator, name: str) -> Case:
    """Scale with a learned scale (axis, num_axes, bias) or with the scale as a second bottom."""
    shape = _any_shape(rng, 1, 3)
    nd = len(shape)
    axis = int(rng.integers(1, nd))
    num_axes = int(rng.integers(0, nd - axis + 1))
    bias = " bias_term: true" if rng.random() < 0.5 else ""
    if rng.random() < 0.4:
        # The engine takes a second (scale) bottom only along axis 0, without a bias (infer_extra.py).
        k = int(rng.integers(1, nd + 1))
        bottoms = {"x": shape, "s": shape[:k]}
        return Case(name, "Scale", f'{_io(["x", "s"], ["y"])} scale_param {{ axis: 0 }}', bottoms, ["y"],
                    diff_bottoms=["x", "s"])
    param = (f"scale_param {{ axis: {axis} num_axes: {num_axes}{bias} filler {{ type: 'gaussian' }} "
             f"bias_filler {{ type: 'gaussian' }} }}")
    return Case(name, "Scale", f'{_io(["x"], ["y"])} {param}', {"x": shape}, ["y"], diff_bottoms=["x"])


def batch_norm(rng: np.random.Generator, name: str) -> Case:
    """BatchNorm with stored statistics (TEST's default) or the batch's own, and an eps."""
    shape = (int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    c = shape[1]
    stats = rng.random() < 0.6
    param = f"batch_norm_param {{ use_global_stats: {'true' if stats else 'false'} eps: {rng.uniform(1e-5, 0.1):.5f} }}"
    factor = np.float32(rng.uniform(0.5, 3))
    params = [rng.standard_normal(c) * factor, rng.uniform(0.5, 2, c) * factor, np.array([factor])]
    return Case(name, "BatchNorm", f'{_io(["x"], ["y"])} {param}', {"x": shape}, ["y"], diff_bottoms=["x"],
                params=params)


def softmax_loss(rng: np.random.Generator, name: str) -> Case:
    """SoftmaxWithLoss in each normalization mode, with ignore_label and a loss weight sometimes."""
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    spatial = tuple(int(rng.integers(1, 3)) for _ in range(int(rng.integers(0, 3))))
    mode = str(rng.choice(["FULL", "VALID", "BATCH_SIZE", "NONE"]))
    ignore = f"ignore_label: {int(rng.integers(c))}" if rng.random() < 0.4 else ""
    weight = f"loss_weight: {rng.uniform(0.5, 2):.3f}" if rng.random() < 0.3 else ""
    text = f'{_io(["x", "label"], ["loss"])} {weight} loss_param {{ normalization: {mode} {ignore} }}'
    return Case(name, "SoftmaxWithLoss", text, {"x": (n, c, *spatial), "label": (n, *spatial)}, ["loss"],
                labels={"label": c}, diff_bottoms=["x"], loss=True)


def euclidean(rng: np.random.Generator, name: str) -> Case:
    """EuclideanLoss between two bottoms (both get a diff)."""
    shape = _any_shape(rng)
    return Case(name, "EuclideanLoss", _io(["a", "b"], ["loss"]), {"a": shape, "b": shape}, ["loss"],
                diff_bottoms=["a", "b"], loss=True)


def accuracy(rng: np.random.Generator, name: str) -> Case:
    """Accuracy with top_k, ignore_label and the per-class second top (forward only)."""
    n, c = int(rng.integers(1, 6)), int(rng.integers(2, 6))
    spatial = (int(rng.integers(1, 3)),) if rng.random() < 0.3 else ()
    opts = f"top_k: {int(rng.integers(1, c + 1))}" if rng.random() < 0.6 else ""
    opts += f" ignore_label: {int(rng.integers(c))}" if rng.random() < 0.3 else ""
    tops = ["acc", "per_class"] if rng.random() < 0.4 else ["acc"]
    text = f'{_io(["x", "label"], tops)} accuracy_param {{ {opts} }}'
    return Case(name, "Accuracy", text, {"x": (n, c, *spatial), "label": (n, *spatial)}, tops,
                labels={"label": c}, backward=False)


#: Drawers and their weights: the layers with the most parameters get the most draws.
DRAWERS: list[tuple[Callable[[np.random.Generator, str], Case], int]] = [
    (conv, 8), (pool, 7), (inner_product, 4), (lrn, 3), (elementwise, 4), (softmax, 2), (concat, 3),
    (flatten, 2), (reshape, 1), (eltwise, 2), (scale, 3), (batch_norm, 2), (softmax_loss, 4), (euclidean, 1),
    (accuracy, 3),
]


def draw_cases(count: int, seed: int) -> list[Case]:
    """``count`` seeded cases; every drawer at least once, then in proportion to its weight."""
    rng = np.random.default_rng(seed)
    funcs = [f for f, _ in DRAWERS]
    weights = np.array([w for _, w in DRAWERS], float)
    picks = list(range(len(funcs))) + list(rng.choice(len(funcs), count - len(funcs), p=weights / weights.sum()))
    return [funcs[k](rng, f"c{i:04d}") for i, k in enumerate(picks)]
