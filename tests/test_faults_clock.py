"""The system clock jumps forward and back (NTP correcting a Raspberry Pi without an RTC, a manual
date change).

Two levels:

- the daemon's scheduler: interval jobs run on the monotonic clock, so a step of the wall clock
  (shifted here by patching the ``datetime`` that APScheduler, which runs the calendar jobs,
  reads) neither stops nor bunches the polls;
- the application on simulated time (``sim_harness``): the daemon's clock jumps while the
  inverter's keeps going. The jobs keep running, the command follows the plan and the overrides
  by the daemon's clock, and every reading is recorded once.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import apscheduler.executors.base
import apscheduler.schedulers.base
import apscheduler.triggers.cron
import pytest
from support.config import FLAT_TARIFF
from support.sim_harness import Site, close_site, open_site
from support.waiting import eventually

from controller.clock import Clock, SystemClock
from controller.config.loading import load_config_text
from controller.config.models import HemsdConfig
from controller.control.overrides import OverrideRequest
from controller.daemon.runner import Daemon
from controller.daemon.schedule import Job
from controller.daemon.systemd import Notifier
from drivers.inverter.types import CommandKind

TZ = ZoneInfo("Europe/Warsaw")


# --- the scheduler ------------------------------------------------------------------------------------


class WallClock:
    """A wall clock that a test can step: real time plus ``offset``."""

    offset = timedelta(0)


class SteppedDatetime(datetime):
    @classmethod
    def now(cls, tz: tzinfo | None = None) -> SteppedDatetime:  # type: ignore[override]
        real = datetime.now(tz)
        shifted = real + WallClock.offset
        return (
            cls.fromtimestamp(shifted.timestamp(), tz)
            if tz is not None
            else cls.fromtimestamp(shifted.timestamp())
        )


@dataclass
class PollingApp:
    config: HemsdConfig
    clock: Clock
    polls: list[float] = field(default_factory=list)  # monotonic times

    def jobs(self) -> tuple[Job, ...]:
        return (Job("poll", 0.2, self.poll, run_at_start=False),)

    async def poll(self) -> None:
        self.polls.append(time.monotonic())

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def reconfigure(self, config: HemsdConfig) -> None:
        self.config = config

    def config_rejected(self, problems: list[str]) -> None:
        return None

    def task_restarted(self, task: str, error: str) -> None:
        return None

    def status_line(self) -> str:
        return f"{len(self.polls)} polls"


@pytest.mark.parametrize("step", [timedelta(hours=-1), timedelta(hours=2)], ids=["back", "forward"])
async def test_the_jobs_go_on_when_the_system_clock_steps(
    monkeypatch: pytest.MonkeyPatch, step: timedelta
) -> None:
    wall_clock_readers = (
        apscheduler.schedulers.base,
        apscheduler.executors.base,
        apscheduler.triggers.cron,
    )
    for module in wall_clock_readers:
        monkeypatch.setattr(module, "datetime", SteppedDatetime)
    monkeypatch.setattr(WallClock, "offset", timedelta(0))
    apps: list[PollingApp] = []

    def factory(config: HemsdConfig, clock: Clock) -> PollingApp:
        apps.append(PollingApp(config, clock))
        return apps[-1]

    config = load_config_text('[inverter]\ntype = "emulator"\n')
    daemon = Daemon(config=config, app_factory=factory, clock=SystemClock(), notifier=Notifier(""))
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 60)
        app = apps[0]
        await eventually(lambda: len(app.polls) >= 2, 30, "polling every 0.2 s before the step")
        WallClock.offset = step
        stepped = time.monotonic()
        # a step that stopped the polls would wait out the step (an hour or two), far past this deadline
        await eventually(lambda: len([t for t in app.polls if t > stepped]) >= 5, 30, "polls after the step")
        elapsed = time.monotonic() - stepped
        after = [t for t in app.polls if stepped < t <= stepped + elapsed]
        # not bunched: at most one poll per 0.2 s interval begun since the step, however slow the machine
        assert len(after) <= elapsed / 0.2 + 1, (
            f"{len(after)} polls in the {elapsed:.2f} s after a step of {step}"
        )
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(runner, 10) == 0


# --- the application ----------------------------------------------------------------------------------

BODY = (
    """
[site]
id = "clockjump"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
plan_interval_min = 15
publish_interval_s = 300
[executor]
min_dwell_s = 300
"""
    + FLAT_TARIFF
)


async def test_the_application_follows_its_clock_forward_and_back(tmp_path: Path) -> None:
    start = datetime(2026, 6, 15, 10, 0, tzinfo=TZ)
    site = await open_site(tmp_path, start, BODY, initial_soc_pct=30)
    app, data = site.app, site.app.parts.data
    readings = [app.snapshot] if app.snapshot else []  # every reading the daemon got, once each
    log: list[tuple[datetime, CommandKind | None, str]] = []

    async def watch(s: Site) -> None:
        s.emulator.advance()
        command = s.app.parts.control.state.command
        log.append((s.clock.now(), command.kind if command else None, s.emulator.behaviour.mode))
        if s.app.snapshot is not None and not s.app.snapshot.stale and s.app.snapshot is not readings[-1]:
            readings.append(s.app.snapshot)

    try:
        charge = OverrideRequest("force_charge", "test", timedelta(minutes=90), power_w=2000, soc_pct=95)
        await data.save_override(charge.record(site.clock.now()))
        await site.run(timedelta(minutes=30), during=watch)
        assert site.emulator.behaviour.mode == "charge"

        site.clock.jump(timedelta(hours=2))  # forward, past the override's end
        await site.run(timedelta(minutes=30), during=watch)
        forward = [entry for entry in log if entry[0] >= start + timedelta(hours=2, minutes=35)]
        assert forward
        assert all(kind is not CommandKind.CHARGE for _, kind, _ in forward)  # the override has ended

        site.clock.jump(timedelta(hours=-2, minutes=-45))  # back, to before the override's end
        mark = len(log)
        await site.run(timedelta(minutes=30), during=watch)
        assert not site.failures, [(t, job, repr(e)) for t, job, e in site.failures[:3]]
        back = log[mark:]
        assert [kind for _, kind, _ in back] == [kind for _, kind, _ in back if kind is not None]
        # by the daemon's clock the override runs again (until its end, 10:00 + 90 min); it was
        # not held back by the dwell measured from the future
        assert back[1][1] is CommandKind.CHARGE
        assert back[1][2] == "charge"

        await data.flush()
        every = await data.history(
            ["soc_pct"], start - timedelta(hours=1), start + timedelta(hours=4), resolution="1min"
        )
        assert every.data is not None
        assert int(every.data.fields["soc_pct"].count.sum()) == len(readings)  # each reading once
        # the readings after the step back share their minutes with those before it: both are kept
    finally:
        await close_site(site)
