"""Starting a training run: one process, several local GPUs, or one process of a torchrun job.

``-gpu 0,1`` (or ``all``) starts one process per GPU on this machine; under ``torchrun``
(the ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` variables are set) each process joins the job, on
its local GPU with ``-gpu`` or on the CPU without (gloo), which is how multi-process training
is tested without GPUs. Each process reads its share of every batch (Caffe: ``batch_size`` is
per GPU) and gradients are averaged across processes before each update, as Caffe does.
"""

from __future__ import annotations

import dataclasses
import os
import socket

import torch

from mcnn.caffe.proto import caffe_pb2 as pb
from mcnn.engine.glog import GlogWriter
from mcnn.engine.trainer import Trainer, TrainOptions, TrainResult
from mcnn.errors import ConfigError


def parse_gpus(text: str | None) -> list[int]:
    """``-gpu`` value -> device ids (``None`` -> CPU, ``all`` -> every visible GPU)."""
    if text is None or text == "":
        return []
    if text == "all":
        count = torch.cuda.device_count()
        if count == 0:
            raise ConfigError("-gpu all: no CUDA device is visible")
        return list(range(count))
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"-gpu {text!r}: expected a device id, a comma list or 'all'") from None
    available = torch.cuda.device_count()
    for i in ids:
        if i < 0 or i >= available:
            raise ConfigError(f"-gpu {text}: device {i} is not available ({available} CUDA device(s) visible)")
    return ids


def solver_gpus(text: str | None, solver: pb.SolverParameter, log: GlogWriter | None = None) -> list[int]:
    """The devices ``caffe train`` picks: ``-gpu`` when given, else the solver's ``device_id`` (default 0)
    when the solver sets ``solver_mode: GPU`` (tools/caffe.cpp), else the CPU (empty list).

    Where the solver asks for a GPU and no CUDA device is visible, Caffe stops ("Cannot use GPU in
    CPU-only Caffe"); the engine logs one warning line and trains on the CPU, so the committed
    solvers (``solver_mode: GPU``) still run on a CPU machine.
    """
    if text:
        return parse_gpus(text)
    if not (solver.HasField("solver_mode") and solver.solver_mode == pb.SolverParameter.GPU):
        return []
    device, available = solver.device_id, torch.cuda.device_count()
    if available == 0:
        (log or GlogWriter())(f"solver_mode: GPU (device_id {device}) but no CUDA device is visible; training on "
                              "the CPU (Caffe would stop here; give -gpu or solver_mode: CPU)", "caffe.cpp:186", "W")
        return []
    if not 0 <= device < available:
        raise ConfigError(f"solver device_id {device}: device not available ({available} CUDA device(s) visible)")
    return [device]


#: NCCL for the gradients on the GPUs, gloo for the small CPU collectives (the finite-loss and signal
#: flags of mcnn.engine.distributed and mcnn.engine.signals): NCCL alone has no CPU backend.
GPU_BACKEND = "cpu:gloo,cuda:nccl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, gpus: list[int], solver: str, options: TrainOptions) -> None:
    import torch.distributed as dist

    torch.cuda.set_device(gpus[rank])
    dist.init_process_group(GPU_BACKEND, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        opts = dataclasses.replace(options, rank=rank, world=world, device=f"cuda:{gpus[rank]}")
        Trainer(solver, opts).solve()
    finally:
        dist.destroy_process_group()


def run_training(solver: str, options: TrainOptions, gpus: list[int],
                 log: GlogWriter | None = None) -> TrainResult | None:
    """Train ``solver`` on ``gpus`` (empty = CPU); returns the root process's result when local."""
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if world_env > 1:
        import torch.distributed as dist

        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        if gpus:
            device = f"cuda:{gpus[local % len(gpus)]}"
            torch.cuda.set_device(device)
            backend = GPU_BACKEND
        else:
            device, backend = "cpu", "gloo"
        dist.init_process_group(backend)
        try:
            opts = dataclasses.replace(options, rank=rank, world=world_env, device=device)
            return Trainer(solver, opts, log if rank == 0 else None).solve()
        finally:
            dist.destroy_process_group()
    if len(gpus) > 1:
        import torch.multiprocessing as mp

        mp.spawn(_worker, args=(len(gpus), _free_port(), gpus, solver, options), nprocs=len(gpus), join=True)
        return None
    device = f"cuda:{gpus[0]}" if gpus else "cpu"
    return Trainer(solver, dataclasses.replace(options, device=device), log).solve()
