"""The fixed glibc mmap threshold: freeing a large block does not raise it, so the next large block
is mapped (and given back to the system when freed) rather than carved out of the heap."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import pytest

MIB = 2**20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mapped_bytes() -> int:
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _Mallinfo2
    return int(mallinfo2().hblkhd)


CHECK = """
import ctypes, sys
from controller.malloc import fix_malloc_thresholds
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
