"""A whole site on simulated time for the fault, safety and DST tests.

The application (``HemsdApp``) runs its jobs at their configured cadence on a virtual clock, as
``tests/test_closed_loop.py`` does: time moves only when a job is due, so a simulated day takes
seconds and every run is deterministic. The inverter is a ``GoodWeEmulator`` in this process,
reached over loopback through the real goodwe driver (``[inverter] type = "goodwe"``), on a clock
of its own: the daemon's clock may jump (NTP, a wrong RTC) while the inverter's keeps going, as
on a real site.

Everything else the application talks to is real too: SQLite in ``tmp_path``, and whatever
servers a test starts (InfluxDB, mosquitto, a price API on a loopback port).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from controller.clock import VirtualClock
from controller.config.loading import load_config_text
from controller.config.models import EmulatedInverterConfig, HemsdConfig
from controller.daemon.app import HemsdApp
from controller.daemon.parts import start_emulator
from controller.daemon.schedule import Job
from controller.daemon.wiring import create_application
from controller.sim.emulator.server import GoodWeEmulator


class ShiftedClock:
    """The daemon's clock: the site's true (virtual) time plus an offset that a test can change.

    Sleeping moves the true time, so the inverter's clock and the daemon's stay in step until
    ``jump`` moves the daemon's clock alone, forward or back.
    """

    speed = float("inf")

    def __init__(self, true_clock: VirtualClock) -> None:
        self.true = true_clock
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return self.true.now() + self.offset

    def jump(self, by: timedelta) -> None:
        self.offset += by

    async def sleep(self, seconds: float) -> None:
        await self.true.sleep(seconds)

    def real_seconds(self, seconds: float) -> float:
        return 0.0

    def monotonic(self) -> float:
        return self.true.monotonic()


@dataclass
class Site:
    """One simulated site: the emulator, the application, their clocks, and the job schedule."""

    config: HemsdConfig
    true_clock: VirtualClock
    clock: ShiftedClock
    emulator: GoodWeEmulator
    app: HemsdApp
    due: dict[str, datetime] = field(default_factory=dict)
    failures: list[tuple[datetime, str, BaseException]] = field(default_factory=list)
    runs: dict[str, int] = field(default_factory=dict)

    def _interval_job(self, name: str) -> Job:
        """The application's own interval job (the table the daemon runs)."""
        return next(j for j in self.app.jobs() if isinstance(j, Job) and j.name == name)

    def period(self, job: str) -> timedelta:
        return timedelta(seconds=self._interval_job(job).interval_s)

    def job(self, name: str) -> Callable[[], Awaitable[None]]:
        return self._interval_job(name).run

    async def run(
        self,
        duration: timedelta,
        during: Callable[[Site], Awaitable[None]] | None = None,
        jobs: tuple[str, ...] | None = None,
    ) -> None:
        """Run the jobs for ``duration`` of true time; a failing job is recorded, as the daemon logs it."""
        if jobs is None:  # every interval job of the application
            jobs = tuple(j.name for j in self.app.jobs() if isinstance(j, Job))
        now = self.true_clock.now()
        for name in jobs:
            self.due.setdefault(name, now + self.period(name))
        end = now + duration
        while True:
            name = min((n for n in jobs), key=lambda n: self.due[n])
            if self.due[name] > end:
                break
            await self.true_clock.sleep((self.due[name] - self.true_clock.now()).total_seconds())
            try:
                await self.job(name)()
            except Exception as exc:  # the daemon isolates job failures the same way
                self.failures.append((self.true_clock.now(), name, exc))
            self.runs[name] = self.runs.get(name, 0) + 1
            self.due[name] += self.period(name)
            if during is not None:
                await during(self)
        await self.true_clock.sleep(max(0.0, (end - self.true_clock.now()).total_seconds()))

    async def settle(self, seconds: float = 0.0) -> None:
        """Let the real-time background tasks (storage commits, the Influx flusher, MQTT) run."""
        await asyncio.sleep(seconds)


def site_config(state: Path, port: int, body: str, inverter: str = "") -> HemsdConfig:
    """A configuration with the inverter at the in-process emulator's port (``inverter``: more keys
    of its section) and ``body`` appended."""
    text = f"""
[logging]
level = "WARNING"
[inverter]
type = "goodwe"
host = "127.0.0.1"
port = {port}
protocol = "tcp"
timeout_s = 0.2
retries = 0
failures_before_stale = 2
{inverter}
[storage]
state_dir = "{state}"
commit_interval_s = 0.2
{body}
"""
    return load_config_text(text)


async def open_site(
    tmp_path: Path,
    start: datetime,
    body: str,
    *,
    app_class: type[HemsdApp] = HemsdApp,
    initial_soc_pct: float = 50.0,
    start_app: bool = True,
    inverter: str = "",
) -> Site:
    """The emulator (serving Modbus TCP on a free port) and the application, started at ``start``."""
    true_clock = VirtualClock(start.astimezone(UTC))
    probe = load_config_text(body)  # the site's battery and time zone for the emulator
    emulator = start_emulator(
        probe, EmulatedInverterConfig(protocol="tcp", initial_soc_pct=initial_soc_pct), true_clock
    )
    await emulator.start()
    config = site_config(tmp_path / "state", emulator.tcp_port, body, inverter)
    clock = ShiftedClock(true_clock)
    app = create_application(config, clock, app_class=app_class)
    site = Site(config, true_clock, clock, emulator, app)
    if start_app:
        try:
            await app.start()
        except BaseException:
            await emulator.stop()
            raise
    return site


async def close_site(site: Site) -> None:
    try:
        await site.app.stop()
    finally:
        await site.emulator.stop()
