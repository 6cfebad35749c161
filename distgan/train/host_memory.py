"""How a training process's CPU allocator keeps freed memory (glibc malloc; a no-op elsewhere).

PyTorch's CPU allocator calls malloc/free for every tensor. glibc serves blocks above its mmap threshold
(128 KiB at start, raised only after such a block is freed) with fresh mmaps, and returns the top of the heap
to the OS past its trim threshold: a training step's activations are then page-faulted afresh on every step.
Whether a process is hit depended on what it happened to free before training: the same ResNet-20 loop ran
11 % slower in one process than in another (1.08 M against 0.70 M page faults; benchmarks/bench_engine.py).
Fixed thresholds make every worker reuse its heap, as jemalloc or tcmalloc would, without preloading one.
"""

import ctypes
import ctypes.util
import logging

log = logging.getLogger("distgan")

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 32 * 2**20  # glibc's largest allowed value: smaller blocks come from the reused heap
TRIM_THRESHOLD_BYTES = 1 * 2**30  # keep up to 1 GiB of freed heap instead of returning it to the OS

_done = False


def keep_freed_memory() -> None:
    """Set glibc's malloc thresholds once per process (idempotent; logs and does nothing without glibc)."""
    global _done
    if _done:
        return
    _done = True
    path = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(path)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.info("no glibc mallopt (%s): the CPU allocator keeps its defaults", path)
        return
    for parameter, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)):
        if mallopt(parameter, value) != 1:
            log.info("mallopt(%d, %d) refused: the CPU allocator keeps its default", parameter, value)
