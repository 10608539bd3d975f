"""What a run or a benchmark ran on, in words."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name (from /proc/cpuinfo where available)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(gpu: int | None = None) -> str:
    """``GPU <name>`` for a CUDA device id, else ``CPU <model> (<n> cores)``."""
    if gpu is not None:
        try:
            import torch

            return f"GPU {torch.cuda.get_device_name(gpu)}"
        except Exception:
            return f"GPU {gpu}"
    return f"CPU {cpu_model()} ({os.cpu_count()} cores)"
