"""glibc malloc settings: the fixed mmap threshold (freeing a large block does not raise it, so the
next large block is mapped and given back to the system when freed rather than carved out of the
heap), and the release of free pages from the middle of the heap."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

from controller.daemon.malloc import heap_info

MIB = 2**20


def _mapped_bytes() -> int:
    info = heap_info()
    assert info is not None
    return int(info.hblkhd)


CHECK = """
import ctypes, sys
from controller.daemon.malloc import fix_malloc_thresholds
sys.path.insert(0, sys.argv[1])
from test_malloc import MIB, _mapped_bytes
assert fix_malloc_thresholds()
large = bytearray(8 * MIB)
del large  # without the fix, glibc raises its threshold to 8 MiB here
before = _mapped_bytes()
block = bytearray(1 * MIB)
mapped = _mapped_bytes() - before
del block
print(mapped, _mapped_bytes() - before)
"""


def test_a_freed_large_block_does_not_send_the_next_one_to_the_heap() -> None:
    if not hasattr(ctypes.CDLL(None), "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later")
    # a fresh process: in a long test session a free chunk in the heap may serve the block first
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    mapped, after_free = (int(v) for v in result.stdout.split())
    assert mapped >= MIB
    assert after_free < MIB


RELEASE = """
import sys
from controller.daemon.malloc import fix_malloc_thresholds, release_free_heap
assert fix_malloc_thresholds()

def resident_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))

blocks = [bytearray(4096) for _ in range(20_000)]  # 80 MB of small blocks from the heap
keep = blocks[-1]  # one live block at the top: the trim threshold alone cannot shrink the heap
del blocks
before = resident_kib()
assert release_free_heap()
print(before, resident_kib())
"""


def test_released_heap_pages_leave_the_resident_set() -> None:
    if not hasattr(ctypes.CDLL(None), "malloc_trim"):
        pytest.skip("needs glibc")
    result = subprocess.run(
        [sys.executable, "-c", RELEASE], capture_output=True, text=True, timeout=60, check=True
    )
    before_kib, after_kib = (int(v) for v in result.stdout.split())
    assert before_kib - after_kib > 60 * 1024  # most of the 80 MB freed in the middle is given back
