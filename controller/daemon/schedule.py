"""How the daemon's periodic work runs: interval jobs on the clock's monotonic time, calendar jobs
on the site's wall clock.

Interval work (poll, re-plan, prices, forecast, publish, housekeeping) runs one task per job on
:meth:`controller.clock.Clock.monotonic`, so a step of the system clock (NTP correcting a Raspberry
Pi without a real-time clock, a manual date) neither delays nor bunches it. A run that overruns
its interval skips the runs it missed (never two at once), keeping its phase. Calendar work (the
day-ahead prices at their publication times) is APScheduler's, with a CronTrigger in the site's
zone: it follows the local wall clock, as calendar work should.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock_time

from controller.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """A periodic job; ``interval_s`` is in the clock's (possibly simulated) seconds."""

    name: str
    interval_s: float
    run: Callable[[], Awaitable[None]]
    run_at_start: bool = True


@dataclass(frozen=True, slots=True)
class CalendarJob:
    """A job at fixed local times of every day (in the site's zone)."""

    name: str
    times: tuple[clock_time, ...]
    run: Callable[[], Awaitable[None]]


@dataclass(slots=True)
class JobStats:
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    last_duration_ms: float = 0.0
    last_success: datetime | None = None


class JobRunner:
    """Runs jobs one at a time each, isolating their failures, and knows when none is running."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.stats: dict[str, JobStats] = {}
        self.accepting = True  # False once stopping: no new run starts
        self.idle = asyncio.Event()
        self.idle.set()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def run(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        if not self.accepting:
            return
        stats = self.stats.setdefault(name, JobStats())
        started = time.perf_counter()
        stats.runs += 1
        self._in_flight += 1
        self.idle.clear()
        try:
            await job()
        except Exception as exc:
            stats.failures += 1
            stats.consecutive_failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed (%d in a row)", name, stats.consecutive_failures)
        else:
            stats.consecutive_failures = 0
            stats.last_success = self.clock.now()
        finally:
            stats.last_duration_ms = (time.perf_counter() - started) * 1000.0
            self._in_flight -= 1
            if self._in_flight == 0:
                self.idle.set()


class IntervalJobs:
    """One task per interval job on the clock's monotonic time; :meth:`update` applies new
    intervals (a reload) without interrupting a run."""

    def __init__(self, clock: Clock, runner: JobRunner) -> None:
        self.clock = clock
        self.runner = runner
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def update(self, jobs: tuple[Job, ...]) -> None:
        wanted = {job.name: job for job in jobs}
        for name in list(self._tasks):
            if name not in wanted:
                self._tasks.pop(name).cancel()
                self._jobs.pop(name)
        for name, job in wanted.items():
            known = self._jobs.get(name)
            self._jobs[name] = job
            if known is None:
                self._changed[name] = asyncio.Event()
                self._tasks[name] = asyncio.create_task(self._every(name), name=f"job-{name}")
            elif known.interval_s != job.interval_s or known.run is not job.run:
                self._changed[name].set()

    async def _every(self, name: str) -> None:
        """The job's loop; should it ever fail (it runs no job code of its own), it starts again."""
        while True:
            try:
                await self._loop(name)
            except Exception:
                log.exception("the schedule of job %s failed; starting it again", name)
                await asyncio.sleep(1.0)

    async def _loop(self, name: str) -> None:
        job = self._jobs[name]
        started = self.clock.monotonic()
        next_at = started + (0.0 if job.run_at_start else job.interval_s)
        while True:
            job, changed = self._jobs[name], self._changed[name]
            wait = next_at - self.clock.monotonic()
            if wait > 0:
                changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.clock.real_seconds(wait))
                if changed.is_set():  # a new interval: the next run counts from the last one
                    next_at = started + self._jobs[name].interval_s
                continue
            started = self.clock.monotonic()
            await self.runner.run(name, job.run)
            interval = self._jobs[name].interval_s
            next_at += interval
            behind = self.clock.monotonic() - next_at
            if behind >= 0:  # overran: skip the missed runs, keep the phase
                next_at += (math.floor(behind / interval) + 1) * interval

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._jobs.clear()
