"""pycaffe's process-wide settings: CPU or GPU mode, the GPU id, and the random seed.

As in Caffe, the mode in effect when a net or solver is created decides where it computes;
``set_random_seed`` seeds the weight fillers of nets created afterwards and the random draws
(dropout) of their forward passes. Without it the seed is drawn from the system's entropy.
"""

from __future__ import annotations

import torch

from mcnn.errors import ConfigError

_state: dict[str, object] = {"gpu": False, "device": 0}
_generator = torch.Generator()
_generator.seed()


def _cuda_check(what: str) -> None:
    if not torch.cuda.is_available():
        raise ConfigError(f"{what}: this PyTorch sees no CUDA device (torch.cuda.is_available() is False); "
                          "use caffe.set_mode_cpu()")


def set_mode_cpu() -> None:
    """Compute on the CPU (the default)."""
    _state["gpu"] = False


def set_mode_gpu() -> None:
    """Compute on the GPU chosen by :func:`set_device` (ConfigError when PyTorch has no CUDA device)."""
    _cuda_check("set_mode_gpu")
    _state["gpu"] = True


def set_device(device_id: int) -> None:
    """Choose the CUDA device used in GPU mode (ConfigError if there is no such device)."""
    _cuda_check(f"set_device({device_id})")
    count = torch.cuda.device_count()
    if not 0 <= int(device_id) < count:
        raise ConfigError(f"set_device({device_id}): {count} CUDA device(s) visible (ids 0..{count - 1})")
    _state["device"] = int(device_id)


def set_random_seed(seed: int) -> None:
    """Seed the fillers of nets created from now on and the random draws of forward passes."""
    _generator.manual_seed(int(seed))
    torch.manual_seed(int(seed))


def engine_device() -> torch.device:
    """The device nets and solvers created now compute on."""
    return torch.device(f"cuda:{_state['device']}") if _state["gpu"] else torch.device("cpu")


def generator() -> torch.Generator:
    """The generator that weight fillers of new nets draw from (seeded by :func:`set_random_seed`)."""
    return _generator


def draw_seed() -> int:
    """A seed for a new net's Data layers (crops, mirrors), drawn from :func:`generator`."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=_generator))
