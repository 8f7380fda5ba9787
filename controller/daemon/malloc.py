"""glibc malloc settings for a process that runs for months.

glibc serves a request of 128 KiB or more with its own ``mmap`` and, when such a block is freed,
raises that threshold to the block's size (up to 32 MiB) and the heap's trim threshold to twice
that: from then on blocks of that size come from the heap, which a long-running process fragments
and never gives back. A daemon that now and then builds a large body (an Influx batch, a month of
history, a JSON plan) grows by megabytes a day this way (bench/soak.py). Importing the daemon's
libraries alone raises the threshold. Fixed thresholds keep large blocks in ``mmap``, returned on
free, and the top of the heap trimmed.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024  # glibc's defaults, kept fixed
TRIM_THRESHOLD = 128 * 1024


def fix_malloc_thresholds(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Set glibc's mmap and trim thresholds (which also stops them moving); False: not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this interpreter runs on
    except (OSError, AttributeError):  # no dlopen(NULL) or no mallopt: not glibc (musl has a no-op)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))


def release_free_heap() -> bool:
    """Give the free pages inside glibc's heap back to the system (``malloc_trim``); False: not glibc.

    The trim threshold only returns free memory at the top of the heap. The jobs' short-lived
    blocks leave free pages in the middle too, a few MB after a day of jobs (bench/soak.py).
    """
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    malloc_trim(0)
    return True


class HeapInfo(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (bytes): what the heap holds, for the soak bench and the tests."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
            "keepcost",
        )
    ]  # fmt: skip


def heap_info() -> HeapInfo | None:
    """glibc's ``mallinfo2()``: in use (uordblks), free in the heap (fordblks), mmapped (hblkhd);
    None on a C library without it."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = HeapInfo
    info: HeapInfo = mallinfo2()
    return info
