#!/usr/bin/env python
"""The M-CNN written in plain PyTorch beside the engine: the same net and weights, timed in one run.

:class:`PlainMCNN` is an ordinary ``torch.nn.Module`` (``nn.Conv2d``, ``nn.ReLU(inplace=True)``,
``nn.MaxPool2d(ceil_mode=True)``, ``nn.Linear``; one ``nn.Sequential`` per pathway) built from a
deploy or train_val prototxt's layers and shapes, not through :mod:`mcnn.engine`, with the weights
of an engine :class:`~mcnn.engine.net.Net`. The script checks that both forwards agree within 1e-5
relative and that one SGD step makes the same update, then times, engine and plain PyTorch
alternating call by call, best of ``--repeat`` rounds: forward img/s (engine traced as evaluate.py
runs it, engine eager, plain eager, plain traced and frozen) and one training step (forward,
backward, SGD with momentum and weight decay on the same batch: the engine's own training loop
against ``torch.optim.SGD``). Results: ``--out``/plain-<time>.json and .md (default bench/results/).

  python bench/plain_torch.py                                  # demo batch 8 and 16, BBBC021 batch 1
  python bench/plain_torch.py --cases demo:16 --repeat 10
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure as m  # noqa: E402  (bench/measure.py, beside this script)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from mcnn.caffe import shapes  # noqa: E402
from mcnn.caffe.netstate import filter_net  # noqa: E402
from mcnn.caffe.proto import caffe_pb2 as pb  # noqa: E402
from mcnn.engine.net import Net  # noqa: E402
from mcnn.errors import ConfigError  # noqa: E402

#: Forward agreement the script demands between engine and plain PyTorch (max |a-b| / max |b|).
TOLERANCE = 1e-5


def torch_pool_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True) -> int:
    """PyTorch's pooled length (``pooling_output_shape`` in ATen): Caffe's ceil
    (:func:`mcnn.caffe.shapes.pool_output_size`), but its last-window rule applies with or without padding."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pool_module(layer: pb.LayerParameter, hw: tuple[int, int]) -> tuple[nn.Module, tuple[int, int]]:
    """The PyTorch pooling of a Caffe Pooling layer on an H x W input, and the pooled (H, W).

    Where the two rounding rules give the same size and PyTorch accepts the pad (at most half the
    kernel), this is ``nn.MaxPool2d``/``nn.AvgPool2d`` with ``ceil_mode`` (AVE with
    ``count_include_pad=True``, whose divisor, the window clipped at input + pad, is Caffe's). They
    differ in one case: without padding and with stride > kernel, Caffe keeps a last window that
    starts past the input (an empty window: MAX writes -FLT_MAX there) where PyTorch drops it; that
    geometry is refused, as the engine refuses it. A MAX pad over half the kernel is done explicitly:
    ``nn.ConstantPad2d`` with -inf (Caffe's MAX ignores padded cells) to exactly Caffe's windows, then
    a pad-free ``nn.MaxPool2d``.
    """
    p = layer.pooling_param
    if p.pool not in (pb.PoolingParameter.MAX, pb.PoolingParameter.AVE):
        raise ConfigError(f"layer {layer.name!r}: plain PyTorch M-CNN: only MAX and AVE pooling")
    w = shapes.pool_window(p, hw, layer.name)
    ceil = p.round_mode == pb.PoolingParameter.CEIL
    caffe = tuple(shapes.pool_output_size(hw[i], w.kernel[i], w.stride[i], w.pad[i], ceil) for i in range(2))
    ours = tuple(torch_pool_size(hw[i], w.kernel[i], w.stride[i], w.pad[i], ceil) for i in range(2))
    if caffe != ours:
        raise ConfigError(f"layer {layer.name!r}: kernel {w.kernel}, stride {w.stride} on {hw[0]}x{hw[1]}: Caffe's "
                          "last pooling window would start outside the input (an empty window); not supported")
    fits = all(w.pad[i] <= w.kernel[i] // 2 for i in range(2))
    if p.pool == pb.PoolingParameter.AVE:
        if not fits:
            raise ConfigError(f"layer {layer.name!r}: AVE pooling with pad {w.pad} over half the kernel {w.kernel}")
        return nn.AvgPool2d(w.kernel, w.stride, w.pad, ceil_mode=ceil, count_include_pad=True), caffe
    if fits:
        return nn.MaxPool2d(w.kernel, w.stride, w.pad, ceil_mode=ceil), caffe
    extra = [max(0, (caffe[i] - 1) * w.stride[i] + w.kernel[i] - hw[i] - 2 * w.pad[i]) for i in range(2)]
    pad = nn.ConstantPad2d((w.pad[1], w.pad[1] + extra[1], w.pad[0], w.pad[0] + extra[0]), float("-inf"))
    return nn.Sequential(pad, nn.MaxPool2d(w.kernel, w.stride)), caffe


@dataclass
class _Chain:
    """The layers from the input (or from the Concat) to one blob, and that blob's shape (C, H, W) or (F,)."""

    origin: str
    layers: list[tuple[str, nn.Module]]
    shape: tuple[int, ...]

    def then(self, name: str, module: nn.Module, shape: tuple[int, ...]) -> _Chain:
        return _Chain(self.origin, [*self.layers, (name, module)], shape)


_TERMINAL, _SKIPPED = {"Softmax", "SoftmaxWithLoss"}, {"Input", "Data", "Accuracy"}


class PlainMCNN(nn.Module):
    """An M-CNN as an ordinary PyTorch module, built from a deploy or train_val NetParameter.

    ``input_shape`` is one image's (C, H, W). ``forward(x)`` maps N x C x H x W float32 to the
    N x classes logits (the blob before the Softmax, named ``logits_blob``).
    Layers keep their Caffe names (``self.pathways[0].conv1_s1``, ``self.head.fc1``).
    """

    def __init__(self, net: pb.NetParameter, input_shape: Sequence[int], source: str = "net"):
        super().__init__()
        self.source = source
        chains: dict[str, _Chain] = {}
        branches: list[_Chain] | None = None
        self.logits_blob = ""
        self.specs: dict[str, list[pb.ParamSpec]] = {}
        for layer in filter_net(net, pb.TEST).layer:
            if layer.type in _SKIPPED:
                if layer.type != "Accuracy":
                    chains[layer.top[0]] = _Chain("input", [], tuple(input_shape))
                continue
            if layer.type in _TERMINAL:
                self.logits_blob = layer.bottom[0]
                break
            if layer.type == "Concat":
                if branches is not None or any(chains[b].origin != "input" for b in layer.bottom):
                    raise ConfigError(f"{source}: layer {layer.name!r}: one Concat of pathways from the input only")
                branches = [chains[b] for b in layer.bottom]
                if layer.concat_param.axis != 1 or len({c.shape[1:] for c in branches}) != 1:
                    raise ConfigError(f"{source}: layer {layer.name!r}: pathways must join on channels at one size")
                channels = sum(c.shape[0] for c in branches)
                chains[layer.top[0]] = _Chain("concat", [], (channels, *branches[0].shape[1:]))
                continue
            chain = chains[layer.bottom[0]]
            for name, module, shape in self._modules_of(layer, chain.shape):
                chain = chain.then(name, module, shape)
            chains[layer.top[0]] = chain
            self.specs[layer.name] = list(layer.param)
        head = chains.get(self.logits_blob)
        if branches is None or head is None or head.origin != "concat":
            raise ConfigError(f"{source}: not an M-CNN (pathways joined by one Concat, then a Softmax)")
        self.pathways = nn.ModuleList(nn.Sequential(OrderedDict(c.layers)) for c in branches)
        self.head = nn.Sequential(OrderedDict(head.layers))
        self.out_shape = head.shape

    def _modules_of(self, layer: pb.LayerParameter,
                    shape: tuple[int, ...]) -> list[tuple[str, nn.Module, tuple[int, ...]]]:
        """The module(s) of one layer and the shape after each."""
        name = layer.name.replace(".", "_").replace("/", "_")
        if layer.type == "Convolution":
            p = layer.convolution_param
            w = shapes.conv_window(p, layer.name)
            conv = nn.Conv2d(shape[0], p.num_output, w.kernel, w.stride, w.pad, w.dilation, groups=p.group or 1,
                             bias=p.bias_term)
            hw = shapes.conv_output_hw(w, (shape[1], shape[2]), layer.name)
            return [(name, conv, (p.num_output, *hw))]
        if layer.type == "Pooling":
            module, hw = pool_module(layer, (shape[1], shape[2]))
            return [(name, module, (shape[0], *hw))]
        if layer.type == "ReLU":
            slope = layer.relu_param.negative_slope
            return [(name, nn.LeakyReLU(slope, inplace=True) if slope else nn.ReLU(inplace=True), shape)]
        if layer.type == "Dropout":
            return [(name, nn.Dropout(layer.dropout_param.dropout_ratio), shape)]
        if layer.type == "InnerProduct":
            p = layer.inner_product_param
            if p.transpose or p.axis != 1:
                raise ConfigError(f"{self.source}: layer {layer.name!r}: only InnerProduct on axis 1, not transposed")
            out: list[tuple[str, nn.Module, tuple[int, ...]]] = []
            if len(shape) > 1:  # Caffe's InnerProduct flattens every axis after the batch
                out.append((f"{name}_flatten", nn.Flatten(1), (math.prod(shape),)))
            out.append((name, nn.Linear(math.prod(shape), p.num_output, bias=p.bias_term), (p.num_output,)))
            return out
        raise ConfigError(f"{self.source}: layer {layer.name!r}: type {layer.type} is not in the plain PyTorch M-CNN")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x classes logits of an N x C x H x W batch."""
        return self.head(torch.cat([pathway(x) for pathway in self.pathways], dim=1))

    def layer_module(self, layer: str) -> nn.Module:
        """The module of the Caffe layer named ``layer``; KeyError if there is none."""
        key = layer.replace(".", "_").replace("/", "_")
        for container in (*self.pathways, self.head):
            if key in container._modules:
                return container._modules[key]
        raise KeyError(layer)

    @torch.no_grad()
    def load_engine_weights(self, net: Net) -> int:
        """Copy every learnable blob of the engine ``net`` (blob 0: weight, 1: bias) into the same-named
        layer; returns the number of values copied. ConfigError on a missing layer or another shape."""
        copied = 0
        for blob in net.learnable():
            try:
                target = (self.layer_module(blob.layer).weight, self.layer_module(blob.layer).bias)[blob.index]
            except (KeyError, AttributeError):
                target = None
            if target is None or tuple(target.shape) != tuple(blob.tensor.shape):
                raise ConfigError(f"{self.source}: layer {blob.layer!r} blob {blob.index} (engine shape "
                                  f"{tuple(blob.tensor.shape)}) has no plain PyTorch parameter of that shape")
            target.copy_(blob.tensor.detach())
            copied += target.numel()
        return copied

    def param_groups(self, base_lr: float, weight_decay: float) -> list[dict[str, object]]:
        """``torch.optim`` parameter groups with the prototxt's lr_mult and decay_mult per blob (default 1).

        With a fixed learning rate PyTorch's SGD (``b = m b + g + wd w; w -= lr b``) makes Caffe's
        update (``v = m v + lr (g + wd w); w -= v``), so the two train alike.
        """
        groups: dict[tuple[float, float], list[nn.Parameter]] = {}
        for layer, specs in self.specs.items():
            module = self.layer_module(layer)
            for i, param in enumerate(p for p in (getattr(module, "weight", None), getattr(module, "bias", None))
                                      if p is not None):
                spec = specs[i] if i < len(specs) else pb.ParamSpec()
                groups.setdefault((spec.lr_mult, spec.decay_mult), []).append(param)
        return [{"params": params, "lr": base_lr * lr, "weight_decay": weight_decay * decay}
                for (lr, decay), params in groups.items()]


class PlainTraining:
    """Training steps of plain PyTorch: zero_grad, cross-entropy (Caffe's SoftmaxWithLoss averaged over the
    batch), backward, ``torch.optim.SGD`` with the prototxt's lr/decay multipliers."""

    def __init__(self, model: PlainMCNN, device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).train()
        self.optimizer = torch.optim.SGD(model.param_groups(m.BASE_LR, m.WEIGHT_DECAY), lr=m.BASE_LR,
                                         momentum=m.MOMENTUM)
        self.x = self.labels = torch.empty(0)

    def set_batch(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """The N x C x H x W batch and its N labels (moved to the device once, here)."""
        self.x, self.labels = x.to(self.device), labels.to(self.device, torch.long)

    def step(self) -> float:
        """One step; returns the loss (read back, as the engine's loop does)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x), self.labels)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def update_difference(engine: m.EngineTraining, plain: PlainTraining) -> float:
    """max |plain - engine| / max |engine| over the last update of every learnable blob: the engine's SGD
    history (Caffe's ``v = m v + lr (g + wd w)``, which is the update) against lr x PyTorch's momentum buffer.

    Compared as updates, not as weight changes, which float32 weights round to about 1e-4 of an update.
    """
    by_param = {id(p): plain.optimizer.state[p]["momentum_buffer"] * group["lr"]
                for group in plain.optimizer.param_groups for p in group["params"]}
    model = plain.model
    theirs, ours = [], []
    for blob, history in zip(engine.net.learnable(), engine.trainer.updater.history, strict=True):
        module = model.layer_module(blob.layer)
        param = module.weight if blob.index == 0 else module.bias
        theirs.append(history.reshape(-1))
        ours.append(by_param[id(param)].reshape(-1))
    return m.relative_difference(torch.cat(ours), torch.cat(theirs))


def forward_case(size: str, batch: int, repeat: int) -> dict[str, object]:
    """Agreement and forward img/s of the engine and plain PyTorch at one size and batch (CPU)."""
    from mcnn.engine.inference import InferenceModel

    deploy, _ = m.committed_nets(size)
    shape = m.deploy_shape(deploy)
    engine = Net(deploy, pb.TEST, generator=torch.Generator().manual_seed(0), source=m.PROTOTXT[size])
    plain = PlainMCNN(deploy, shape, m.PROTOTXT[size].format("deploy")).eval()
    plain.load_engine_weights(engine)
    classes = int(engine.blob_shapes["prob"][0])
    x, _ = m.batch_of(shape, batch, classes)
    traced_engine = InferenceModel(engine, ["prob"])
    with torch.inference_mode():
        blobs = engine.forward({"data": x})
        logits = plain(x)
        out = {"logits_rel_diff": m.relative_difference(logits, blobs[plain.logits_blob]),
               "prob_rel_diff": m.relative_difference(F.softmax(logits, 1), blobs["prob"])}
    with torch.no_grad():
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(plain, x, check_trace=False)))
        out["traced_prob_rel_diff"] = m.relative_difference(torch.from_numpy(traced_engine(x)["prob"]),
                                                            F.softmax(frozen(x), 1))

    eager = torch.inference_mode()
    best = m.best_alternating({"engine_traced": lambda: traced_engine(x),
                               "engine_eager": eager(lambda: engine.forward({"data": x})["prob"]),
                               "plain_eager": eager(lambda: F.softmax(plain(x), 1)),
                               "plain_frozen": lambda: frozen(x)}, repeat)
    out.update({f"{k}_forward_images_per_s": batch / v for k, v in best.items()})
    out["forward_engine_over_plain"] = best["plain_eager"] / best["engine_eager"]
    out["forward_traced_engine_over_frozen_plain"] = best["plain_frozen"] / best["engine_traced"]
    return out


def training_case(size: str, batch: int, repeat: int) -> dict[str, object]:
    """Update agreement and training step time of the engine's loop and plain PyTorch (CPU)."""
    deploy, train_val = m.committed_nets(size)
    shape = m.deploy_shape(deploy)
    engine = m.EngineTraining(m.input_train_net(train_val, shape))
    plain_model = PlainMCNN(train_val, shape, m.PROTOTXT[size].format("train_val"))
    plain_model.load_engine_weights(engine.net)
    plain = PlainTraining(plain_model)
    x, labels = m.batch_of(shape, batch, plain_model.out_shape[0])
    engine.set_batch(x, labels)
    plain.set_batch(x, labels)
    engine.step()
    plain.step()  # the first step of each is also the warm-up
    out: dict[str, object] = {"update_rel_diff": update_difference(engine, plain),
                              "params": engine.net.param_count()}
    best = m.best_alternating({"engine": engine.step, "plain": plain.step}, repeat)
    out.update({"engine_step_s": best["engine"], "plain_step_s": best["plain"],
                "engine_train_images_per_s": batch / best["engine"], "plain_train_images_per_s": batch / best["plain"],
                "train_engine_over_plain": best["plain"] / best["engine"]})
    return out


def markdown(payload: dict[str, object]) -> str:
    """The results as Markdown: the machine, then one row per case."""
    rows = [[r["size"], r["input"], r["batch"], *(f"{r[k]:.2f}" for k in (
                "engine_traced_forward_images_per_s", "engine_eager_forward_images_per_s",
                "plain_eager_forward_images_per_s", "plain_frozen_forward_images_per_s", "forward_engine_over_plain",
                "engine_train_images_per_s", "plain_train_images_per_s", "train_engine_over_plain")),
             f"{max(r['logits_rel_diff'], r['prob_rel_diff']):.1e} / {r['update_rel_diff']:.1e}"]
            for r in payload["results"]]  # type: ignore[union-attr]
    lines = [f"# Engine against plain PyTorch {payload['when']}", "", f"Machine: {payload['machine']}", "",
             f"Best of {payload['repeat']} alternated rounds in one process; training: forward, backward and SGD "
             "update (momentum, weight decay) on the same batch. Ratios above 1: the engine is faster.", "",
             *m.table(["size", "input", "batch", "fwd engine traced", "fwd engine eager", "fwd plain eager",
                       "fwd plain frozen", "eager engine/plain", "train engine img/s", "train plain img/s",
                       "train engine/plain", "max rel diff fwd / update"], rows)]
    return "\n".join(lines) + "\n"


def parse_cases(text: str) -> list[tuple[str, int]]:
    """``demo:8,bbbc021:1`` -> [("demo", 8), ("bbbc021", 1)]; ConfigError naming --cases otherwise."""
    cases = []
    for part in text.split(","):
        size, _, batch = part.strip().partition(":")
        if size not in m.PROTOTXT or not batch.isdigit() or int(batch) < 1:
            raise ConfigError(f"--cases {text!r}: expected SIZE:BATCH items with SIZE one of {', '.join(m.PROTOTXT)}")
        cases.append((size, int(batch)))
    return cases


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of the comparison."""
    from mcnn.cli import ArgumentParser

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to measure")
    what.add_argument("--cases", default="demo:8,demo:16,bbbc021:1",
                      help="SIZE:BATCH list (sizes demo, bbbc021; default demo:8,demo:16,bbbc021:1)")
    what.add_argument("--repeat", type=int, default=5, help="alternated rounds, the best kept (default 5)")
    what.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    return p


def main(args: argparse.Namespace) -> int:
    """Measure every case, write plain-<time>.json/.md; exit status 1 if engine and plain disagree."""
    from mcnn.cli import output_folder
    from mcnn.machine import describe

    cases = parse_cases(args.cases)
    output_folder(args.out)
    if args.repeat < 1:
        raise ConfigError(f"--repeat {args.repeat}: need at least 1 round")
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for size, batch in cases:
        shape = m.deploy_shape(m.committed_nets(size)[0])
        print(f"{size} batch {batch}: forward ...", flush=True)
        row: dict[str, object] = {"size": size, "input": "x".join(map(str, shape)), "batch": batch}
        row.update(forward_case(size, batch, args.repeat))
        print(f"{size} batch {batch}: training ...", flush=True)
        row.update(training_case(size, batch, args.repeat))
        results.append(row)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": stamp, "machine": f"{describe()}, torch {torch.__version__}, {torch.get_num_threads()} "
               "threads", "repeat": args.repeat, "tolerance": TOLERANCE, "results": results}
    text = markdown(payload)
    print(text + f"results: {m.write_results(args.out, f'plain-{stamp}', payload, text)[1]}")
    worst = max(max(r["logits_rel_diff"], r["prob_rel_diff"], r["traced_prob_rel_diff"]) for r in results)
    if worst > TOLERANCE:  # the figures are written; the status says they compare different things
        print(f"plain_torch: engine and plain PyTorch differ by {worst:.2e} (> {TOLERANCE:g})", file=sys.stderr)
    return int(worst > TOLERANCE)


if __name__ == "__main__":
    from mcnn.cli import run

    sys.exit(run("plain_torch", lambda: main(get_args_parser().parse_args())))
