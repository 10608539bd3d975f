"""Wall time and peak memory of a command and its whole process tree (the bench scripts' one measure)."""

from __future__ import annotations

import os
import subprocess
import threading
import time


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
    (all resident memory, and its anonymous part)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    stderr = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed:\n{stderr}")
    return {"wall_s": wall, "max_rss_mb": usage.ru_maxrss / 1024, "tree_rss_mb": peak[0] / 2**20,
            "tree_anon_mb": peak[1] / 2**20}


