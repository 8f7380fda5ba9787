"""Re-plans asked for by live controls, coalesced: a flood of commands makes a few plans, not one each.

A Home Assistant switch toggled 200 times (an automation gone wrong, a user's fidgeting) asks
for 200 re-plans, each of which takes the planner up to its budget while the commands behind it
wait in the bounded inbox. :class:`ReplanSoon` takes a request at once and plans on a task of
its own: the requests that arrive within ``gap_s`` of it, or while a plan runs, join into the
next plan, which follows the last of them (its reason is the last request's). At most one plan
runs at a time and, however long a flood lasts, at most one starts per ``gap_s`` plus a plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

GAP_S = 1.0  # requests within this many (real) seconds of one another make one plan


class ReplanSoon:
    def __init__(
        self,
        replan: Callable[[str], Awaitable[None]],
        real_seconds: Callable[[float], float],
        gap_s: float = GAP_S,
    ) -> None:
        self._replan, self._real_seconds, self.gap_s = replan, real_seconds, gap_s
        self._reason: str | None = None  # the newest request not yet planned for
        self._task: asyncio.Task[None] | None = None

    def request(self, reason: str) -> None:
        """A plan soon for ``reason``; returns at once."""
        self._reason = reason
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="replan-soon")

    async def _run(self) -> None:
        # ends when no request came during the wait and the plan: each pass takes every request
        # pending, so a flood makes one pass per gap_s + plan, and its end the last one
        while self._reason is not None:
            await asyncio.sleep(self._real_seconds(self.gap_s))
            reason, self._reason = self._reason, None
            try:
                await self._replan(reason)
            except Exception:  # the plan job's own failures are the scheduled re-plan's to show
                log.exception("re-plan (%s) failed", reason)

    async def close(self) -> None:
        """Stop (the daemon stops): a plan pending is not made."""
        self._reason = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
