#!/usr/bin/env python
"""One prepared GPU benchmark of the engine (issue 15): under 8 minutes on one H100/H200-class GPU.

Stages, each with its own time budget (a stage that fails or runs out of memory is recorded as
``skipped: <reason>``, never a crash):

- forward and training img/s of the committed M-CNN at the demo (2x128x128) and BBBC021
  (3x1024x1280) sizes, in float32 with TF32 off (Caffe-exact) and in bf16 autocast with
  channels_last inputs; each by a doubling batch search (1, 2, 4, ...) that stops at the first
  out-of-memory, at ``--max-batch`` or when the next batch would not fit in the stage's time,
  so it finds the largest batch that fits; peak memory (torch.cuda.max_memory_allocated) per
  batch. Forward: the engine's Net under inference_mode; training: the engine's own loop (one
  Trainer iteration). Random weights, inputs already on the device: compute only;
- agreement of the BBBC021 M-CNN forward on the device with the float32 CPU forward (same
  weights and images): fp32 (TF32 off), TF32 and bf16 autocast with channels_last;
- 2-process data-parallel training on one device (torch.multiprocessing spawn, gloo: NCCL
  refuses two ranks on one GPU): the engine's Trainer with rank/world, which broadcasts the root's
  weights and averages gradients (mcnn.engine.distributed); checks both ranks end with the same
  weights, and the same updates as one process given the whole batch.

The results go to ``--out`` (default bench/results/) as device-<time>.json and .md, rewritten
after every stage, with the goals of issue 15 beside the figures (at BBBC021 size: inference
>= 1,000 img/s bf16 and >= 250 img/s fp32, training >= 300 img/s bf16).

  python bench/device.py                                  # the GPU run (cuda:0)
  python bench/device.py --device cpu --quick             # dry run of every stage at tiny sizes
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure as m  # noqa: E402  (bench/measure.py, beside this script)
import torch  # noqa: E402

from mcnn.caffe.proto import caffe_pb2 as pb  # noqa: E402
from mcnn.cli import one_line  # noqa: E402
from mcnn.engine.net import Net  # noqa: E402
from mcnn.engine.process import cuda_precision  # noqa: E402
from mcnn.errors import ConfigError  # noqa: E402

SIZES = ("demo", "bbbc021")
#: Inputs of the dry run: the committed nets at small images (3x128x160 keeps BBBC021's 4:5 and its 7 scales).
QUICK_SHAPES = {"demo": (2, 128, 128), "bbbc021": (3, 128, 160)}
PRECISIONS = ("fp32", "bf16")
WORKS = ("forward", "train")
#: Issue 15's goals for one H100/H200-class GPU at BBBC021 size (img/s).
GOALS = {("bbbc021", "bf16", "forward"): 1000.0, ("bbbc021", "fp32", "forward"): 250.0,
         ("bbbc021", "bf16", "train"): 300.0}
GOAL_SHAPE = (3, 1024, 1280)
#: Seconds each stage may take (a search stops doubling before it would overrun).
BUDGETS = {"forward": 30.0, "train": 40.0, "agreement": 45.0, "ddp": 90.0}
MAX_BATCH = {("demo", "forward"): 4096, ("demo", "train"): 2048, ("bbbc021", "forward"): 1024,
             ("bbbc021", "train"): 512}


class _Clock:
    """Seconds since the run started, for the progress lines."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f}s] {message}", flush=True)


def shape_of(size: str, quick: bool) -> tuple[int, int, int]:
    """One image's (C, H, W) at ``size``: the committed net's, or the dry run's smaller one."""
    return QUICK_SHAPES[size] if quick else m.deploy_shape(m.committed_nets(size)[0])


def _forward_maker(size: str, shape: tuple[int, ...], precision: str,
                   device: torch.device) -> Callable[[int], Callable[[], object]]:
    deploy = m.with_input(m.committed_nets(size)[0], shape)
    net = Net(deploy, pb.TEST, generator=torch.Generator().manual_seed(0), device=device, source=size)
    bf16 = precision == "bf16"

    def make(batch: int) -> Callable[[], object]:
        x = torch.rand((batch, *shape), device=device)
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last)

        def call() -> object:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                return net.forward({"data": x})["prob"]
        return call
    return make


def _train_maker(size: str, shape: tuple[int, ...], precision: str,
                 device: torch.device) -> Callable[[int], Callable[[], object]]:
    bf16 = precision == "bf16"
    engine = m.EngineTraining(m.input_train_net(m.committed_nets(size)[1], shape), str(device), bf16=bf16,
                              channels_last=bf16)  # train.py --bf16 --channels-last (autocast on CUDA only)
    classes = int(engine.net.blob_shapes["fc2"][0])

    def make(batch: int) -> Callable[[], object]:
        engine.set_batch(torch.rand((batch, *shape), device=device), torch.arange(batch, device=device) % classes)
        return engine.step
    return make


def goal_status(size: str, precision: str, work: str, shape: tuple[int, ...],
                images_per_s: float | None) -> tuple[float | None, str]:
    """(goal img/s or None, ``met`` / ``not met`` / ``n/a ...``) of one throughput row."""
    goal = GOALS.get((size, precision, work))
    if goal is None:
        return None, "—"
    if tuple(shape) != GOAL_SHAPE:
        return goal, f"n/a (input {'x'.join(map(str, shape))}, the goal is at 3x1024x1280)"
    if images_per_s is None:
        return goal, "not measured"
    return goal, "met" if images_per_s >= goal else "not met"


def agreement(shape: tuple[int, ...], device: torch.device, batch: int = 2) -> dict[str, object]:
    """BBBC021 M-CNN forward on ``device`` against the float32 CPU forward: fp32, TF32, bf16 channels_last."""
    deploy = m.with_input(m.committed_nets("bbbc021")[0], shape)
    logits = next(layer.bottom[0] for layer in deploy.layer if layer.type == "Softmax")
    cpu = Net(deploy, pb.TEST, generator=torch.Generator().manual_seed(0))
    x, _ = m.batch_of(shape, batch, 12, seed=1)
    with torch.inference_mode():
        ref = cpu.forward({"data": x})
    ref = {k: ref[k].clone() for k in (logits, "prob")}
    net = Net(deploy, pb.TEST, generator=torch.Generator().manual_seed(0), device=device)
    with torch.no_grad():
        for mine, theirs in zip(net.learnable(), cpu.learnable(), strict=True):
            mine.tensor.copy_(theirs.tensor)
    del cpu
    rows = {}
    try:
        for name, tf32, bf16 in (("fp32", False, False), ("tf32", True, False), ("bf16", False, True)):
            cuda_precision(tf32)  # the engine's switch: Net.to() re-applies it, so set it there
            xs = x.to(device)
            if bf16:
                xs = xs.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = net.forward({"data": xs})
            got = {k: out[k].float().cpu() for k in (logits, "prob")}
            rows[name] = {"logits_max_rel_diff": m.relative_difference(got[logits], ref[logits]),
                          "prob_max_abs_diff": float((got["prob"] - ref["prob"]).abs().max()),
                          "argmax_agreement": float((got["prob"].argmax(1) == ref["prob"].argmax(1)).float().mean())}
    finally:
        cuda_precision(False)
    return {"input": "x".join(map(str, shape)), "batch": batch, "logits_blob": logits, "comparisons": rows}


def ddp_worker(rank: int, world: int, init: str, device: str, shape: tuple[int, ...], batch: int, steps: int,
               out: str) -> None:
    """One process of the 2-process run: gloo group, the engine's Trainer as rank ``rank``, its share of
    the batch; saves its final weights to ``out/rank<rank>.pt``."""
    import torch.distributed as dist

    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        engine = m.EngineTraining(m.input_train_net(m.committed_nets("demo")[1], shape), device, rank=rank, world=world)
        x, labels = m.batch_of(shape, batch * world, int(engine.net.blob_shapes["fc2"][0]), seed=2)
        engine.set_batch(x[rank::world], labels[rank::world])
        for _ in range(steps):
            engine.step()
        flat = torch.cat([b.tensor.detach().reshape(-1).cpu() for b in engine.net.learnable()])
        torch.save(flat, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def ddp(device: torch.device, shape: tuple[int, ...], batch: int, steps: int, deadline: float) -> dict[str, object]:
    """Spawn 2 engine training processes on ``device``; compare their weights with each other and with
    one process trained on the whole batch."""
    import torch.multiprocessing as mp

    world = 2
    with tempfile.TemporaryDirectory(prefix="mcnn-bench-ddp-") as tmp:
        start = time.perf_counter()
        context = mp.start_processes(ddp_worker, args=(world, f"file://{tmp}/init", str(device), shape, batch, steps,
                                                       tmp), nprocs=world, join=False, start_method="spawn")
        while not context.join(timeout=1.0):
            if time.perf_counter() > deadline:
                for process in context.processes:
                    process.kill()
                raise TimeoutError("the 2 processes did not finish within the stage's budget")
        wall = time.perf_counter() - start
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(world)]
    single = m.EngineTraining(m.input_train_net(m.committed_nets("demo")[1], shape), str(device))
    initial = torch.cat([b.tensor.detach().reshape(-1).cpu() for b in single.net.learnable()])
    x, labels = m.batch_of(shape, batch * world, int(single.net.blob_shapes["fc2"][0]), seed=2)
    single.set_batch(x, labels)
    for _ in range(steps):
        single.step()
    alone = torch.cat([b.tensor.detach().reshape(-1).cpu() for b in single.net.learnable()])
    return {"backend": "gloo", "processes": world, "device": str(device), "steps": steps,
            "batch_per_process": batch, "input": "x".join(map(str, shape)), "wall_s": wall,
            "ranks_max_rel_diff": m.relative_difference(ranks[1], ranks[0]),
            "update_rel_diff_vs_one_process": m.relative_difference(ranks[0] - initial, alone - initial)}


# -- the run -------------------------------------------------------------------------------------------

class Run:
    """The record of one run: stages run under their budgets, results rewritten after each stage."""

    def __init__(self, args: argparse.Namespace, device: torch.device):
        self.args, self.device, self.say = args, device, _Clock()
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        self.end = time.perf_counter() + args.budget
        self.record: dict[str, object] = {
            "when": self.stamp, "machine": m.machine(device), "device": str(device), "quick": args.quick,
            "settings": {"fp32": "TF32 off (torch.backends.cuda.matmul.allow_tf32 = cudnn.allow_tf32 = False)",
                         "bf16": "torch.autocast bfloat16, channels_last inputs",
                         "cudnn_benchmark": bool(torch.backends.cudnn.benchmark), "reps": args.reps,
                         "budget_s": args.budget},
            "goals": [{"size": s, "precision": p, "work": w, "images_per_s": g, "input": "3x1024x1280"}
                      for (s, p, w), g in GOALS.items()],
            "throughput": [], "agreement": None, "ddp": None, "stages": {}}

    def stage(self, name: str, budget: float, fn: Callable[[float], dict[str, object]]) -> dict[str, object] | None:
        """Run ``fn(deadline)``; record ok or ``skipped: <reason>`` with its seconds; write the results."""
        left = self.end - time.perf_counter()
        entry: dict[str, object] = {"budget_s": round(min(budget, max(left, 0.0)), 1)}
        result = None
        if left < 5:
            entry["status"] = "skipped: the run's --budget was spent"
        else:
            self.say(f"{name}: start (budget {entry['budget_s']} s)")
            start = time.perf_counter()
            try:
                result = fn(start + min(budget, left))
                entry["status"] = "ok"
            except Exception as exc:  # a benchmark stage records why it stopped and the run goes on
                why = "out of memory" if isinstance(exc, torch.OutOfMemoryError) else type(exc).__name__
                entry["status"] = f"skipped: {why}" + ("" if why == "out of memory" else f": {one_line(exc)[:300]}")
            m.free(self.device)
            entry["seconds"] = round(time.perf_counter() - start, 2)
        self.say(f"{name}: {entry['status']}")
        self.record["stages"][name] = entry  # type: ignore[index]
        self.write()
        return result

    def throughput(self, size: str, precision: str, work: str) -> None:
        """One forward or training search, as a throughput row (with its goal)."""
        shape = shape_of(size, self.args.quick)
        maker = _forward_maker if work == "forward" else _train_maker
        cap = self.args.max_batch or MAX_BATCH[(size, work)]
        label = f"{work} {size} {precision}"

        def run(deadline: float) -> dict[str, object]:
            return m.batch_search(maker(size, shape, precision, self.device), cap, deadline, self.device,
                                  self.args.reps, self.say, label)

        result = self.stage(f"{work}:{size}:{precision}", BUDGETS[work], run)
        row: dict[str, object] = {"size": size, "input": "x".join(map(str, shape)), "precision": precision,
                                  "work": work, "status": self.record["stages"][f"{work}:{size}:{precision}"]["status"]}
        row.update(result or {})
        row["goal_images_per_s"], row["goal_status"] = goal_status(size, precision, work, shape,
                                                                   row.get("best_images_per_s"))
        self.record["throughput"].append(row)  # type: ignore[union-attr]
        self.write()

    def write(self) -> tuple[Path, Path]:
        """Write device-<stamp>.json and .md to ``--out`` (atomically, so a killed run leaves whole files)."""
        return m.write_results(self.args.out, f"device-{self.stamp}", self.record, markdown(self.record))


def _num(value: object, fmt: str = ".1f") -> str:
    return "—" if value is None else format(value, fmt)


def markdown(record: dict[str, object]) -> str:
    """The run as Markdown: machine and settings, throughput with goals, agreement, DDP, stages."""
    stages: dict[str, dict[str, object]] = record["stages"]  # type: ignore[assignment]
    lines = [f"# Device benchmark {record['when']}", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in record["machine"].items())  # type: ignore[union-attr]
             + f"; device {record['device']}" + (" (quick dry run at small inputs)" if record["quick"] else ""), "",
             "Goals (issue 15, one H100/H200-class GPU at BBBC021 size, 3x1024x1280): inference >= 1,000 img/s "
             "in bf16 and >= 250 img/s in fp32; training >= 300 img/s in bf16. fp32: TF32 off (Caffe-exact); bf16: "
             "autocast with channels_last inputs. Random weights, inputs already on the device (compute only); "
             "forward: the engine's Net under inference_mode; training: the engine's loop (forward, backward, SGD "
             "with momentum and weight decay), batch found by doubling until out of memory or the stage's time.",
             "", "## Throughput", ""]
    rows = [[r["size"], r["input"], r["precision"], r["work"],
             _num(r.get("best_images_per_s")) if r["status"] == "ok" else r["status"], r.get("best_batch", "—"),
             r.get("largest_batch", "—"), _num(r.get("peak_memory_gib"), ".2f"), r.get("stopped", "—"),
             _num(r["goal_images_per_s"], ",.0f"), r["goal_status"]] for r in record["throughput"]]  # type: ignore[union-attr]
    lines += m.table(["size", "input", "precision", "work", "best img/s", "at batch", "largest batch that fit",
                      "peak memory (GiB)", "search stopped", "goal img/s", "goal"], rows)
    agree = record["agreement"] or {}
    lines += ["", "## Device against CPU: the BBBC021 M-CNN forward", ""]
    if agree:
        lines += [f"Input {agree['input']}, batch {agree['batch']}, random weights; differences to the float32 CPU "
                  f"forward: logits ({agree['logits_blob']}) as max |Δ| / max |CPU|, probabilities as max |Δ|.", ""]
    rows = []
    for key, title in (("fp32", "fp32, TF32 off"), ("tf32", "TF32"), ("bf16", "bf16 autocast, channels_last")):
        row = agree.get("comparisons", {}).get(key)  # type: ignore[union-attr]
        rows.append([title, f"{row['logits_max_rel_diff']:.2e}", f"{row['prob_max_abs_diff']:.2e}",
                     f"{100 * row['argmax_agreement']:.0f} %"] if row else
                    [title, stages.get("agreement", {}).get("status", "not run"), "—", "—"])
    lines += m.table(["on the device", "logits max rel diff", "prob max abs diff", "same argmax"], rows)
    d = record["ddp"]
    lines += ["", "## 2-process data-parallel training on one device", ""]
    row = ([d["backend"], d["processes"], d["device"], d["steps"], d["batch_per_process"], d["input"],  # type: ignore[index]
            f"{d['wall_s']:.1f}", f"{d['ranks_max_rel_diff']:.1e}", f"{d['update_rel_diff_vs_one_process']:.1e}"]  # type: ignore[index]
           if d else ["gloo", 2, record["device"], "—", "—", "—", "—", stages.get("ddp", {}).get("status", "not run"),
                      "—"])
    lines += m.table(["backend", "processes", "device", "steps", "batch per process", "input", "wall s",
                      "rank 0 vs rank 1 weights (max rel diff)",
                      "updates vs one process with the whole batch (max rel diff)"], [row])
    lines += ["", "## Stages", ""]
    lines += m.table(["stage", "status", "seconds", "budget s"],
                     [[name, st["status"], st.get("seconds", "—"), st["budget_s"]] for name, st in stages.items()])
    return "\n".join(lines) + "\n"


def get_args_parser() -> argparse.ArgumentParser:
    """The command line of the device benchmark."""
    from mcnn.cli import ArgumentParser

    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = p.add_argument_group("where and how long")
    where.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    where.add_argument("--quick", action="store_true", help="every stage at small inputs and batches (a dry run)")
    where.add_argument("--budget", type=float, default=420.0,
                       help="seconds for the whole run; stages are cut to what is left (default 420)")
    where.add_argument("--threads", type=int, default=0, help="CPU torch threads (default: torch's choice)")
    what = p.add_argument_group("what to measure")
    what.add_argument("--max-batch", type=int, default=0,
                      help="largest batch to try (default 4096/2048 demo forward/training, 1024/512 BBBC021; "
                           "2 with --quick)")
    what.add_argument("--reps", type=int, default=3, help="timed rounds per batch, the best kept (default 3)")
    what.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                      help="leave cuDNN's algorithm search off (default on)")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder")
    return p


def check_args(args: argparse.Namespace) -> torch.device:
    """The device, after checking every option (ConfigError naming the option)."""
    from mcnn.cli import output_folder

    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ConfigError(f"--device {args.device!r}: expected cuda, cuda:N or cpu") from None
    if device.type not in ("cuda", "cpu"):
        raise ConfigError(f"--device {args.device!r}: expected cuda, cuda:N or cpu")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {args.device}: no CUDA device is visible; the dry run is --device cpu --quick")
        device = torch.device("cuda", device.index or 0)
        if device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {args.device}: {torch.cuda.device_count()} CUDA device(s) visible")
    for flag, value, low in (("--budget", args.budget, 1), ("--reps", args.reps, 1), ("--max-batch", args.max_batch, 0),
                             ("--threads", args.threads, 0)):
        if value < low:
            raise ConfigError(f"{flag} {value}: must be at least {low}")
    output_folder(args.out)
    return device


def main(args: argparse.Namespace) -> int:
    """Run every stage, print progress, write device-<time>.json/.md."""
    device = check_args(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick and not args.max_batch:
        args.max_batch = 2
    cuda_precision(False)  # Caffe-exact float32: no TF32 in convolutions or matrix products
    torch.backends.cudnn.benchmark = args.cudnn_benchmark and device.type == "cuda"
    run = Run(args, device)
    run.say(f"device benchmark on {run.record['machine']}; results in {args.out}")
    for work in WORKS:
        for size in SIZES:
            for precision in PRECISIONS:
                run.throughput(size, precision, work)
    run.record["agreement"] = run.stage("agreement", BUDGETS["agreement"],
                                        lambda _: agreement(shape_of("bbbc021", args.quick), device))
    batch, steps = (1, 2) if args.quick else (8, 3)
    run.record["ddp"] = run.stage("ddp", BUDGETS["ddp"],
                                  lambda deadline: ddp(device, shape_of("demo", args.quick), batch, steps, deadline))
    json_path, md_path = run.write()
    print(markdown(run.record))
    run.say(f"results: {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    from mcnn.cli import run as run_cli

    sys.exit(run_cli("device", lambda: main(get_args_parser().parse_args())))
