"""The bench scripts' shared measures: wall time and peak memory of a command and its process tree; and,
for the engine benchmarks (plain_torch.py, device.py), the committed M-CNNs at a size, one batch, timed
alternation, relative differences, and training steps of the engine's own loop on a batch in memory.

torch and mcnn are imported inside the functions that need them, so the command measures stay light.
"""

from __future__ import annotations

import functools
import math
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from mcnn.caffe.proto import caffe_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
#: The committed nets of each benchmark size (the shapes come from their Input/Data layers).
PROTOTXT = {"demo": "prototxt/demo/mcnn_{}.prototxt", "bbbc021": "prototxt/bbbc021/mcnn_{}.prototxt"}
#: The solver of the timed training steps (the committed solvers' momentum and decay, a fixed rate).
BASE_LR, MOMENTUM, WEIGHT_DECAY = 0.001, 0.9, 0.0005


def _tree_rss(pid: int) -> tuple[int, int]:
    """Resident memory (bytes) of ``pid`` and all its descendants, from /proc: all of it (VmRSS) and
    the anonymous part (RssAnon: the heap, not the file pages an LMDB's memory map brings in)."""
    total, anon, todo = 0, 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1]) * 1024
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as handle:
                    todo += [int(x) for x in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total, anon


def measure(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd``; wall time, the largest process's peak RSS and the sampled peaks of the tree
    (all resident memory, and its anonymous part): :func:`measure_logged` with a throw-away log."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mcnn-bench-") as tmp:
        return measure_logged(cmd, Path(tmp) / "output.log")


def measure_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None,
                   cwd: Path | None = None) -> dict[str, float]:
    """:func:`measure`'s figures (wall seconds; peak RSS of the largest process, and the tree's sampled
    peaks, in MiB) of ``cmd`` run in ``cwd`` with ``env`` (None: this environment), its stdout and
    stderr written to the file ``log`` (a file, not a pipe: a long log such as Caffe's cannot fill a
    pipe and stall the command). SystemExit with the log's tail when the command fails."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL)
        peak = [0, 0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                total, anon = _tree_rss(proc.pid)
                peak[0], peak[1] = max(peak[0], total), max(peak[1], anon)
                done.wait(0.05)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        thread.join()
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit status {proc.returncode}; log {log}):\n{tail}")
    return {"wall_s": wall, "max_rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": peak[0] / 2**20,
            "tree_anon_mb": peak[1] / 2**20}




# -- the engine benchmarks' nets, batches and timing ------------------------------------------------

def committed_nets(size: str) -> tuple[pb.NetParameter, pb.NetParameter]:
    """(deploy, train_val) NetParameters of the committed M-CNN of ``size`` (``demo`` or ``bbbc021``)."""
    from mcnn.caffe import io as cio

    deploy, train_val = (cio.read_net(ROOT / PROTOTXT[size].format(kind)) for kind in ("deploy", "train_val"))
    return deploy, train_val


def deploy_shape(deploy: pb.NetParameter) -> tuple[int, int, int]:
    """One image's (C, H, W) from a deploy net's Input layer."""
    layer = next(layer for layer in deploy.layer if layer.type == "Input")
    c, h, w = (int(d) for d in layer.input_param.shape[0].dim[1:])
    return c, h, w


def with_input(deploy: pb.NetParameter, shape: Sequence[int]) -> pb.NetParameter:
    """A copy of ``deploy`` whose Input layer takes images of ``shape`` (C, H, W)."""
    out = type(deploy)()
    out.CopyFrom(deploy)
    layer = next(layer for layer in out.layer if layer.type == "Input")
    del layer.input_param.shape[:]
    layer.input_param.shape.add().dim.extend([1, *shape])
    return out


def input_train_net(train_val: pb.NetParameter, shape: Sequence[int]) -> pb.NetParameter:
    """``train_val`` with its Data layers replaced by one Input layer of ``data`` (1 x C x H x W) and
    ``label`` (1), so the engine's training loop takes batches given in memory."""
    from mcnn.caffe.proto import caffe_pb2 as pb

    out = pb.NetParameter()
    out.CopyFrom(train_val)
    layers = [layer for layer in out.layer if layer.type != "Data"]
    feed = pb.LayerParameter(name="data", type="Input", top=["data", "label"])
    feed.input_param.shape.add().dim.extend([1, *shape])
    feed.input_param.shape.add().dim.extend([1])
    del out.layer[:]
    out.layer.extend([feed, *layers])
    return out


def batch_of(shape: Sequence[int], batch: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A reproducible batch: N x C x H x W values in [0, 1) (Caffe's 1/256-scaled bytes) and N labels."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *shape), generator=gen), torch.arange(batch) % classes


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 when both are 0): the difference as a fraction of the values' scale."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    scale = float(b.abs().max()) if b.numel() else 0.0
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return diff / scale if scale else diff


def alternating_times(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds of each of ``calls`` in each of ``rounds`` rounds, after one warm-up call each; the calls
    alternate within a round and their order flips every round, so the calls of one round share the machine's
    speed of the moment (a shared VM's varies by up to a third within half an hour): compare them round by
    round."""
    names = list(calls)
    for name in names:
        calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return times


def best_alternating(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Best seconds per call of each of ``calls`` over :func:`alternating_times`' rounds."""
    return {name: min(times) for name, times in alternating_times(calls, rounds).items()}


def save_json(out: Path | None, kind: str, payload: dict[str, object]) -> Path:
    """Write ``payload`` with the time and the machine (:func:`mcnn.machine.describe`) added to ``out``, by
    default ``bench/results/<kind>-<time>.json``, atomically; prints and returns the path."""
    import json

    from mcnn.fsutil import atomic_write_text
    from mcnn.machine import describe

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out or Path(__file__).resolve().parent / "results" / f"{kind}-{stamp}.json"
    atomic_write_text(path, json.dumps({"when": stamp, "machine": describe(), **payload}, indent=1) + "\n")
    print(f"results: {path}")
    return path


@functools.cache
def _in_memory_trainer() -> type:
    """The engine's Trainer fed one fixed batch (its hook for nets without Data layers)."""
    from mcnn.engine.trainer import Trainer

    class InMemoryTrainer(Trainer):
        external_inputs = True
        inputs: dict[str, Any] = {}  # noqa: RUF012 (set per instance by EngineTraining.set_batch)

        def input_values(self, net: Any) -> dict[str, Any]:
            """The batch set by :meth:`EngineTraining.set_batch`."""
            return self.inputs

    return InMemoryTrainer


class EngineTraining:
    """Training steps of the engine's own loop (Trainer.step: clear, forward, loss, backward, SGD update)
    on a train net with Input layers (:func:`input_train_net`), on one batch set by :meth:`set_batch`.
    ``bf16``/``channels_last`` are train.py's ``--bf16``/``--channels-last``; ``rank``/``world`` a process
    of a data-parallel run (torch.distributed set up by the caller)."""

    def __init__(self, train_net: pb.NetParameter, device: str = "cpu", *, bf16: bool = False,
                 channels_last: bool = False, rank: int = 0, world: int = 1):
        import torch

        from mcnn.caffe.proto import caffe_pb2 as pb
        from mcnn.engine.trainer import TrainOptions

        solver = pb.SolverParameter(base_lr=BASE_LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, lr_policy="fixed",
                                    type="SGD", max_iter=10**9, display=0, random_seed=0, snapshot_after_train=False)
        solver.train_net_param.CopyFrom(train_net)
        options = TrainOptions(device=device, bf16=bf16, channels_last=channels_last, rank=rank, world=world)
        self.trainer = _in_memory_trainer()(solver, options)
        self.net = self.trainer.net
        self.device = torch.device(device)

    def set_batch(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """The N x C x H x W batch and its N labels (moved to the device once, here)."""
        import torch

        self.trainer.inputs = {"data": x.to(self.device), "label": labels.to(self.device, torch.float32)}

    def step(self) -> None:
        """One iteration (the loop reads the loss back every iteration, for its display)."""
        import torch

        self.trainer.step(1)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


# -- device timing: calls, a doubling batch search, memory ------------------------------------------

#: Words of the errors a GPU gives when a batch does not fit (cuDNN and cuBLAS name their own).
OOM_WORDS = ("out of memory", "CUDNN_STATUS_ALLOC_FAILED", "CUBLAS_STATUS_ALLOC_FAILED")


def sync(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA); nothing on the CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` says the device ran out of memory."""
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or any(w in str(exc) for w in OOM_WORDS)


def free(device: torch.device) -> None:
    """Collect garbage and hand cached CUDA memory back."""
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def best_seconds(call: Callable[[], object], device: torch.device, reps: int) -> float:
    """Best seconds per call over ``reps`` timed rounds after one warm-up call (cuDNN picks its algorithms
    there); short calls are repeated within a round (to about 50 ms) so launch latency averages out."""
    call()
    sync(device)
    start = time.perf_counter()
    call()
    sync(device)
    single = time.perf_counter() - start
    inner = max(1, min(20, math.ceil(0.05 / max(single, 1e-6))))
    best = single
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(inner):
            call()
        sync(device)
        best = min(best, (time.perf_counter() - start) / inner)
    return best


def batch_search(make: Callable[[int], Callable[[], object]], max_batch: int, deadline: float,
                 device: torch.device, reps: int, say: Callable[[str], None], label: str) -> dict[str, object]:
    """Doubling batch search (1, 2, 4, ...): ``make(batch)`` gives the call to time; img/s and peak memory
    (torch.cuda.max_memory_allocated, GiB; None on the CPU) per batch, until out of memory, ``max_batch``
    or the time left before ``deadline`` (the next batch is taken to need 2.2 times the last one's time).
    RuntimeError if not even batch 1 fits."""
    import torch

    points: list[dict[str, object]] = []
    batch, stopped, last = 1, f"reached --max-batch {max_batch}", 0.0
    while batch <= max_batch:
        if points and time.perf_counter() + 2.2 * last > deadline:
            stopped = f"time cap before batch {batch}"
            break
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        try:
            seconds = best_seconds(make(batch), device, reps)
        except RuntimeError as exc:  # out of memory, or a library limit at this size: keep what fitted
            what = "out of memory" if is_oom(exc) else " ".join(str(exc).split())[:200]
            stopped = f"{what} at batch {batch}"
            points.append({"batch": batch, "status": what})
            break
        last = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        points.append({"batch": batch, "images_per_s": batch / seconds, "seconds_per_call": seconds,
                       "peak_memory_gib": peak, "status": "ok"})
        say(f"{label} batch {batch}: {batch / seconds:.1f} img/s" + (f", peak {peak:.2f} GiB" if peak else ""))
        batch *= 2
    free(device)
    done = [p for p in points if p["status"] == "ok"]
    if not done:
        raise RuntimeError(f"no batch fitted ({stopped})")
    best = max(done, key=lambda p: p["images_per_s"])  # type: ignore[arg-type, return-value]
    return {"best_images_per_s": best["images_per_s"], "best_batch": best["batch"],
            "largest_batch": done[-1]["batch"], "peak_memory_gib": done[-1]["peak_memory_gib"],
            "stopped": stopped, "points": points}


# -- results ----------------------------------------------------------------------------------------

def machine(device: str | torch.device = "cpu") -> dict[str, object]:
    """What a run ran on: the host, torch, CUDA and cuDNN versions; the GPU, or the CPU's torch threads."""
    import torch

    from mcnn.machine import describe

    device = torch.device(device)
    info: dict[str, object] = {"host": describe(), "torch": torch.__version__, "cuda": torch.version.cuda,
                               "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
    else:
        info["threads"] = torch.get_num_threads()
    return info


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)]


def write_results(out: Path, name: str, payload: object, text: str) -> tuple[Path, Path]:
    """Write ``out/name.json`` (``payload``) and ``out/name.md`` (``text``) atomically; returns both paths."""
    import json

    from mcnn.fsutil import atomic_write_text

    paths = out / f"{name}.json", out / f"{name}.md"
    atomic_write_text(paths[0], json.dumps(payload, indent=1) + "\n")
    atomic_write_text(paths[1], text)
    return paths
