"""Waiting for a condition in a test, bounded in time: one way, for coroutines and for threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(predicate: Callable[[], object], within_s: float, what: str) -> None:
    """Poll ``predicate`` without blocking the event loop; fail naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        await asyncio.sleep(0.02)


def wait_until(predicate: Callable[[], object], within_s: float, what: str, every_s: float = 0.05) -> None:
    """The same for code outside an event loop (a subprocess, a file), sleeping ``every_s`` between polls."""
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what}")
        time.sleep(every_s)
