"""Process-wide settings the engine makes: how the C allocator keeps freed memory, how CUDA computes.

A training step at BBBC021 size (3 x 1024 x 1280) allocates and frees about 2.5 GB of activations and
gradients, in blocks of tens of MB. glibc's malloc serves blocks above its mmap threshold (at most 32 MB
by default, adjusted on the fly) with fresh ``mmap`` pages and returns them on ``free``, so every step
touches its memory anew: about 550,000 minor page faults and 1.4 s of kernel time per BBBC021 step on
2 cores (``getrusage``), a 2.08 s step. Raising the mmap and trim thresholds (``mallopt(3)``) keeps freed
blocks in the heap for the next step (no faults, 1.33 s); the arithmetic is unchanged (bit-identical
weights), the peak resident memory grows by the blocks kept (about 20 % at BBBC021 size).

``MCNN_MALLOC=system`` in the environment leaves the allocator as it is.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

#: ``mallopt`` parameters, from glibc's ``malloc.h``.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3

#: Blocks below this many bytes come from the heap (larger ones, e.g. a whole LMDB map, stay mmap-ed).
MMAP_THRESHOLD = 1 << 30
#: Free memory at the top of the heap is kept up to this many bytes (the largest C int).
TRIM_THRESHOLD = 2**31 - 1

_STATE: dict[str, bool | None] = {"applied": None}


def retain_freed_memory() -> bool:
    """Raise glibc malloc's mmap and trim thresholds once per process; True when they are in force.

    False (and nothing changed) off glibc (macOS, Windows, musl) or with ``MCNN_MALLOC=system``.
    Called when an engine net is built; safe to call again.
    """
    if _STATE["applied"] is not None:
        return bool(_STATE["applied"])
    applied = False
    if os.environ.get("MCNN_MALLOC", "").lower() != "system" and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc: musl has no mallopt
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD,
                                                                                      TRIM_THRESHOLD))
    _STATE["applied"] = applied
    return applied


#: Whether CUDA convolutions and matrix products may use TF32 (``--tf32``); Caffe computes in float32.
_CUDA_TF32 = {"allowed": False}


def cuda_precision(tf32: bool | None = None) -> bool:
    """Set (``tf32`` given) and apply how CUDA convolutions and matrix products compute; returns the choice.

    PyTorch lets cuDNN convolutions use TF32 by default (10-bit mantissa, about 1e-3 relative error per
    layer against float32 Caffe); the engine turns that off unless asked, so GPU results match Caffe's.
    """
    if tf32 is not None:
        _CUDA_TF32["allowed"] = bool(tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = _CUDA_TF32["allowed"]
    return _CUDA_TF32["allowed"]
