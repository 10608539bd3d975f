"""Random single-layer nets, forward and backward, against real Caffe (``make parity``).

520 seeded draws over every layer type the engine computes (tests/parity/draws.py). Caffe fills the
learnable blobs and sets random top diffs; the engine loads those blobs, runs the same inputs and
differentiates the same objective. Top data, bottom diffs and blob diffs must agree within 1e-5 of
the blob's largest magnitude. A draw that Caffe refuses (a failed CHECK) must be refused by the
engine too, and vice versa, except for the differences the README documents (Caffe compatibility).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from mcnn.caffe.io import parse_prototxt
from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.net import Net
from mcnn.errors import McnnError
from tests.parity.draws import Case, draw_cases
from tests.support.parity import Report, check_failure, relative_difference, run_oracle

COUNT, SEED, TOLERANCE = 520, 13, 1e-5

#: The engine's refusals that README "Caffe compatibility" documents (Caffe computes these).
DOCUMENTED = {
    "is larger than its padded input": "convolution kernel larger than its padded input",
    "larger than its input": "pooling kernel larger than its input",
    "starts outside": "pooling window that starts outside its input",
    "must address a non-batch axis": "Flatten/InnerProduct over the batch axis",
}


def caffe_outputs(folder: Path, cases: list[Case]) -> dict[int, str]:
    """Run the oracle over every case (restarting it after each abort); index -> Caffe's refusal line."""
    refused: dict[int, str] = {}
    start = 0
    while start < len(cases):
        out = run_oracle("oracle_layers.py", folder, start, check=False)
        if out.returncode == 0:
            break
        current = int((folder / "current").read_text())
        if current < start or current >= len(cases):
            raise AssertionError(f"oracle_layers.py failed outside a case:\n{out.stderr[-3000:]}")
        refused[current] = check_failure(out.stderr)
        start = current + 1
    return refused


def engine_outputs(case: Case, arrays: dict[str, np.ndarray], caffe: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The engine's top data, bottom diffs and blob diffs for ``case`` with Caffe's blobs and top diffs."""
    net = Net(parse_prototxt(case.prototxt(), pb.NetParameter, case.name), pb.TEST)
    blobs = net.layer_blobs("L") or []
    with torch.no_grad():
        for i, blob in enumerate(blobs):
            blob.tensor.copy_(torch.from_numpy(caffe[f"param_{i}"]).reshape(blob.tensor.shape))
    feeds = {k[3:]: torch.from_numpy(v).requires_grad_(k[3:] in case.diff_bottoms)
             for k, v in arrays.items() if k.startswith("in_")}
    values = net.forward(feeds)
    out = {f"top_{t}": values[t].detach().numpy().copy() for t in case.tops}
    if case.backward:
        if case.loss:
            objective = net.loss(values)
        else:
            objective = sum((values[t] * torch.from_numpy(caffe[f"topdiff_{t}"])).sum() for t in case.tops)
        wrt = [feeds[b] for b in case.diff_bottoms] + [b.tensor for b in blobs if b.tensor.requires_grad]
        grads = torch.autograd.grad(objective, wrt, allow_unused=True)
        for name, g, x in zip(case.diff_bottoms, grads, wrt, strict=False):
            out[f"diff_{name}"] = (torch.zeros_like(x) if g is None else g).numpy()
        if case.kind != "BatchNorm":  # statistics, not learned: Caffe's diffs of them mean nothing
            for i, (g, x) in enumerate(zip(grads[len(case.diff_bottoms):], wrt[len(case.diff_bottoms):],
                                           strict=True)):
                out[f"pdiff_{i}"] = (torch.zeros_like(x) if g is None else g).numpy()
    return out


def documented(message: str) -> str:
    """The documented difference an engine refusal is, or ""."""
    return next((why for key, why in DOCUMENTED.items() if key in message), "")


def test_random_single_layer_nets(caffe_prefix: Path, tmp_path: Path, report: Report) -> None:
    cases = draw_cases(COUNT, SEED)
    inputs = []
    for i, case in enumerate(cases):
        (tmp_path / f"{case.name}.prototxt").write_text(case.prototxt())
        inputs.append(case.arrays(SEED * 100_000 + i))
        np.savez(tmp_path / f"{case.name}.in.npz", **inputs[-1])
    (tmp_path / "cases.json").write_text(json.dumps([{"name": c.name, "tops": c.tops, "diff_bottoms": c.diff_bottoms,
                                                      "backward": c.backward, "loss": c.loss} for c in cases]))
    refused = caffe_outputs(tmp_path, cases)
    worst: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    failures, agreed_refusals = [], 0
    for i, case in enumerate(cases):
        where = f"{case.name} ({case.kind}: {re.sub(' +', ' ', case.layer)})"
        try:
            caffe = dict(np.load(tmp_path / f"{case.name}.out.npz")) if i not in refused else None
            engine = engine_outputs(case, inputs[i], caffe) if caffe is not None else None
            if caffe is None:
                Net(parse_prototxt(case.prototxt(), pb.NetParameter, case.name), pb.TEST)
        except McnnError as e:
            if i in refused:
                agreed_refusals += 1
            elif documented(str(e)):
                report.findings.append(f"{where}: Caffe computes it, the engine refuses ({documented(str(e))}): {e}")
            else:
                failures.append(f"{where}: Caffe computes it, the engine refuses: {e}")
            continue
        if caffe is None:
            failures.append(f"{where}: Caffe refuses it ({refused[i]}), the engine computes it")
            continue
        counts[case.kind] += 1
        for key, want in caffe.items():
            if key.startswith(("top_", "diff_", "pdiff_")) and key in engine:
                diff = relative_difference(engine[key], want)
                worst[case.kind] = max(worst[case.kind], diff)
                if diff > TOLERANCE:
                    failures.append(f"{where}: {key} differs by {diff:.2e} (relative)")
    for kind in sorted(counts):
        report.add(f"layer {kind}", worst[kind], TOLERANCE, counts[kind])
    report.add("layer draws refused by both", 0.0, TOLERANCE, agreed_refusals, "same refusal on both sides")
    assert sum(counts.values()) + agreed_refusals + len(report.findings) >= COUNT - len(failures)
    assert sum(counts.values()) >= 400, f"only {sum(counts.values())} of {COUNT} draws ran on both sides"
    assert not failures, f"{len(failures)} of {COUNT} draws differ:\n" + "\n".join(failures[:40])
    assert set(counts) >= {"Convolution", "Pooling", "InnerProduct", "LRN", "Softmax", "Concat", "SoftmaxWithLoss",
                           "Accuracy", "Eltwise", "Scale", "BatchNorm", "Flatten", "Reshape"}
