"""The asyncio daemon: runs the application's jobs, talks to systemd, reloads its config, stops safely.

The daemon owns the life cycle only. What the jobs do lives in the application
(``controller.daemon.app``): the daemon runs them (``controller.daemon.schedule``: interval jobs on
the clock's monotonic time, calendar jobs on the site's wall clock), isolates their failures,
pings the systemd watchdog from the loop itself, reloads on SIGHUP or when the config file
changes, and on SIGTERM/SIGINT stops the application (inverter back to self-use, storage
flushed, MQTT offline) within the configured time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from controller.clock import Clock
from controller.config.loading import load_config, read_config_bytes
from controller.config.models import ConfigError, GoodweInverterConfig, HemsdConfig
from controller.daemon.schedule import CalendarJob, IntervalJobs, Job, JobRunner, JobStats
from controller.daemon.systemd import Notifier, watchdog_interval_s
from controller.errors import HemsdError
from drivers.backoff import Backoff

log = logging.getLogger(__name__)

ACCEPT_LOG_EVERY_S = 60.0
# the most the GoodWe driver sends to return to self-use: its clock (1), the settings (6), the
# writes (up to 5) and their read-back (6)
SELF_USE_REQUESTS = 18
START_TIMEOUT_S = 90.0  # within systemd's TimeoutStartSec (120 s): a hung start exits with a reason
EXIT_START_FAILED = 1  # systemd restarts the service (78, an invalid configuration, it does not)


class Application(Protocol):
    """What the daemon runs. One instance lives for the whole process; config changes are applied to it."""

    def jobs(self) -> tuple[Job | CalendarJob, ...]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reconfigure(self, config: HemsdConfig) -> None: ...

    def config_rejected(self, problems: list[str]) -> None: ...

    def task_restarted(self, task: str, error: str) -> None:
        """A long-lived task of the daemon failed and was started again (shown in health)."""
        ...

    def status_line(self) -> str: ...


ApplicationFactory = Callable[[HemsdConfig, Clock], Application]


def stop_budget_s(config: HemsdConfig) -> float:
    """What the application's stop may take: ``daemon.stop_timeout_s``, and on top of it what
    returning the inverter to self-use takes when every request needs its whole timeout (an
    inverter answering slowly but still answering must not be left in a forced mode)."""
    inverter = config.inverter
    per_request = inverter.timeout_s if isinstance(inverter, GoodweInverterConfig) else 0.0
    return config.daemon.stop_timeout_s + SELF_USE_REQUESTS * per_request


def configure_logging(level: str) -> None:
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        # journald stamps every line itself (and sets JOURNAL_STREAM); a terminal or a file needs the time
        stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
        handler.setFormatter(logging.Formatter(stamp + "%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "pymodbus", "goodwe", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@dataclass
class Daemon:
    config: HemsdConfig
    app_factory: ApplicationFactory
    clock: Clock
    config_path: Path | None = None
    notifier: Notifier = field(default_factory=Notifier)
    reloads: int = 0
    rejected_reloads: int = 0
    task_restarts: dict[str, int] = field(default_factory=dict)
    credentials_dir: Path | None = None  # as given at start (--credentials-dir): reloads read it too

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self.started = asyncio.Event()  # set once the application runs and READY=1 was sent
        self._runner = JobRunner(self.clock)
        self._accept_failures = 0
        self._accept_logged_at = -ACCEPT_LOG_EVERY_S
        self._intervals = IntervalJobs(self.clock, self._runner)
        self._reload = asyncio.Event()
        self._scheduler: AsyncIOScheduler | None = None
        self._app: Application | None = None
        self._config_digest = self._digest()

    def _digest(self) -> str:
        if self.config_path is None:
            return ""
        try:
            return hashlib.sha256(read_config_bytes(self.config_path)).hexdigest()
        except ConfigError as exc:  # not a regular file, too large: the reload says why
            return f"unreadable: {exc}"

    @property
    def stats(self) -> dict[str, JobStats]:
        """Runs, failures and timings per job."""
        return self._runner.stats

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        self._reload.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        loop.set_exception_handler(self._loop_exception)
        self._app = self.app_factory(self.config, self.clock)
        if not await self._start_app(self._app):
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.notifier.close()
            return EXIT_START_FAILED
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        tasks: list[asyncio.Task[None]] = []
        try:  # from here on whatever ends the run stops the application (the inverter to self-use)
            self._schedule(self._app.jobs())
            self._scheduler.start()
            tasks.append(
                asyncio.create_task(self._supervised("config-watch", self._watch_config), name="config-watch")
            )
            ping = watchdog_interval_s()
            if ping is not None:
                watchdog = functools.partial(self._watchdog, ping)
                tasks.append(asyncio.create_task(self._supervised("watchdog", watchdog), name="watchdog"))
            self.notifier.ready(self._app.status_line())
            self.started.set()
            log.info("hemsd running for site %r", self.config.site.id)
            await self._stop.wait()
        finally:
            self.notifier.stopping()
            log.info("stopping")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._runner.accepting = False  # no new runs; the running ones finish their writes first
            running = self._scheduler.running  # not when the schedule itself failed
            if running:
                self._scheduler.pause()
            try:
                await asyncio.wait_for(
                    self._runner.idle.wait(), timeout=self.config.daemon.stop_timeout_s / 2
                )
            except TimeoutError:
                log.warning("%d job(s) still running at stop", self._runner.in_flight)
            await self._intervals.close()
            if running:
                self._scheduler.shutdown(wait=False)
            budget = stop_budget_s(self.config)
            try:
                await asyncio.wait_for(self._app.stop(), timeout=budget)
            except TimeoutError:
                log.exception("application did not stop within %.1f s", budget)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self.notifier.close()
        log.info("stopped")
        return 0

    async def _start_app(self, app: Application) -> bool:
        """Start the application; on failure stop what did start (the inverter back to self-use)
        and say why in one line (with a traceback only for what no part expected)."""
        try:
            await asyncio.wait_for(app.start(), START_TIMEOUT_S)
        except TimeoutError:
            log.error(
                "hemsd cannot start: not started within %.0f s (storage or the inverter hangs)",
                START_TIMEOUT_S,
            )
        except HemsdError as exc:
            log.error("hemsd cannot start: %s", exc)
        except Exception:
            log.exception("hemsd cannot start: unexpected error")
        else:
            return True
        try:
            await asyncio.wait_for(app.stop(), timeout=self.config.daemon.stop_timeout_s)
        except Exception as exc:  # stopping a half-started application: report, exit all the same
            log.error("stopping after a failed start: %s", exc)
        return False

    def _schedule(self, jobs: tuple[Job | CalendarJob, ...]) -> None:
        assert self._scheduler is not None
        self._intervals.update(tuple(job for job in jobs if isinstance(job, Job)))
        calendar = [job for job in jobs if isinstance(job, CalendarJob)]
        for existing in self._scheduler.get_jobs():
            existing.remove()
        zone = self.config.site.zone
        for job in calendar:
            for at in job.times:
                self._scheduler.add_job(
                    self._runner.run,
                    CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
                    args=(job.name, job.run),
                    id=f"{job.name}@{at:%H:%M}",
                    name=job.name,
                    replace_existing=True,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=300,
                )

    def _reschedule(self) -> None:
        assert self._app is not None
        self._schedule(self._app.jobs())

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's report of an error no task handles; a failing accept (out of descriptors) is
        reported for every connection attempt: one line a minute says how often instead."""
        if "socket.accept() out of system resource" not in str(context.get("message", "")):
            loop.default_exception_handler(context)
            return
        self._accept_failures += 1
        now = time.monotonic()
        if now - self._accept_logged_at >= ACCEPT_LOG_EVERY_S:
            self._accept_logged_at = now
            log.error(
                "a server cannot accept connections, out of file descriptors (%d time(s) since the "
                "last report): %s",
                self._accept_failures,
                context.get("exception"),
            )
            self._accept_failures = 0

    async def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a task that should never end; when it does, log why, tell the application (health)
        and run it again after a growing pause."""
        failures = 0
        while True:
            try:
                await run()
                error = "it returned"
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.exception("task %s failed", name)
            failures += 1
            self.task_restarts[name] = self.task_restarts.get(name, 0) + 1
            if self._app is not None:
                self._app.task_restarted(name, error)
            delay = Backoff(1.0, 60.0).delay_s(failures)
            log.error("task %s ended (%s); started again in %.0f s", name, error, delay)
            await asyncio.sleep(delay)

    async def _watchdog(self, interval_s: float) -> None:
        while True:
            self.notifier.watchdog()
            if self._app is not None:
                self.notifier.status(self._app.status_line())
            await asyncio.sleep(interval_s)

    async def _watch_config(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._reload.wait(), timeout=self.config.daemon.config_check_interval_s
                )
            forced = self._reload.is_set()
            self._reload.clear()
            digest = self._digest()
            if self.config_path is None or (not forced and digest == self._config_digest):
                continue
            self._config_digest = digest
            await self.reload()

    async def reload(self) -> bool:
        """Load the config file again; apply it when valid, keep the running one otherwise."""
        assert self._app is not None
        assert self.config_path is not None
        try:
            new = load_config(self.config_path, self.credentials_dir)
        except ConfigError as exc:  # load_config turns every failure into one
            self.rejected_reloads += 1
            log.error(
                "configuration rejected, keeping the running one: %s: %s", exc.source, "; ".join(exc.problems)
            )
            self._app.config_rejected(exc.problems)
            return False
        if new == self.config:
            return True
        await self._app.reconfigure(new)
        self.config = new
        self.reloads += 1
        configure_logging(new.logging.level)
        self._reschedule()
        log.info("configuration reloaded from %s", self.config_path)
        self.notifier.status(self._app.status_line())
        return True
