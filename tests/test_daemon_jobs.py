"""The daemon's life cycle with a small in-test application: job isolation, reload, stop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.waiting import eventually

import controller.daemon.runner
from controller.clock import AcceleratedClock, Clock, SystemClock
from controller.config.loading import load_config
from controller.config.models import HemsdConfig
from controller.daemon.runner import Daemon
from controller.daemon.schedule import Job
from controller.daemon.systemd import Notifier

BASE = '[inverter]\ntype = "emulator"\n[daemon]\nconfig_check_interval_s = 0.2\n'


@dataclass
class RecordingApp:
    config: HemsdConfig
    clock: Clock
    ticks: dict[str, int] = field(default_factory=dict)
    started: bool = False
    stopped: bool = False
    rejected: list[list[str]] = field(default_factory=list)
    applied: list[HemsdConfig] = field(default_factory=list)
    restarted: list[tuple[str, str]] = field(default_factory=list)

    def jobs(self) -> tuple[Job, ...]:
        return (
            Job("good", 0.02, self._tick("good")),
            Job("bad", 0.02, self._fail),
            Job("other", 0.03, self._tick("other")),
        )

    def _tick(self, name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            self.ticks[name] = self.ticks.get(name, 0) + 1

        return run

    async def _fail(self) -> None:
        self.ticks["bad"] = self.ticks.get("bad", 0) + 1
        raise RuntimeError("this job always fails")

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def reconfigure(self, config: HemsdConfig) -> None:
        self.applied.append(config)
        self.config = config

    def config_rejected(self, problems: list[str]) -> None:
        self.rejected.append(problems)

    def task_restarted(self, task: str, error: str) -> None:
        self.restarted.append((task, error))

    def status_line(self) -> str:
        return f"ticks={sum(self.ticks.values())}"


def make_daemon(path: Path, apps: list[RecordingApp], clock: Clock | None = None) -> Daemon:
    def factory(config: HemsdConfig, clock: Clock) -> RecordingApp:
        app = RecordingApp(config, clock)
        apps.append(app)
        return app

    return Daemon(
        config=load_config(path),
        app_factory=factory,
        clock=clock or SystemClock(),
        config_path=path,
        notifier=Notifier(""),
    )


async def test_a_failing_job_does_not_stop_the_others(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    path.write_text(BASE)
    apps: list[RecordingApp] = []
    daemon = make_daemon(path, apps)
    runner = asyncio.create_task(daemon.run())
    await eventually(
        lambda: bool(apps) and apps[0].ticks.get("good", 0) >= 5 and apps[0].ticks.get("other", 0) >= 5,
        10.0,
        "both jobs ran five times",
    )
    daemon.request_stop()
    assert await asyncio.wait_for(runner, 10) == 0
    assert daemon.stats["bad"].failures >= 3
    assert daemon.stats["bad"].last_error == "RuntimeError: this job always fails"
    assert daemon.stats["good"].failures == 0
    assert apps[0].started
    assert apps[0].stopped


async def test_config_edit_applies_valid_and_rejects_invalid(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    path.write_text(BASE)
    apps: list[RecordingApp] = []
    daemon = make_daemon(path, apps)
    runner = asyncio.create_task(daemon.run())
    await eventually(lambda: bool(apps) and apps[0].started, 10.0, "the app started")

    path.write_text(BASE + "[battery]\ncapacity_kwh = 7.5\n")
    await eventually(lambda: daemon.config.battery.capacity_kwh == 7.5, 10.0, "the edit applied")
    assert apps[0].config.battery.capacity_kwh == 7.5

    path.write_text(BASE + "[battery]\ncapacity_kwh = -2\n")
    await eventually(lambda: bool(apps[0].rejected), 10.0, "the bad edit rejected")
    assert "battery.capacity_kwh" in apps[0].rejected[0][0]
    assert daemon.config.battery.capacity_kwh == 7.5
    assert apps[0].ticks.get("good", 0) > 0

    daemon.request_stop()
    assert await asyncio.wait_for(runner, 10) == 0
    assert daemon.reloads == 1
    assert daemon.rejected_reloads == 1


async def test_accelerated_clock_scales_job_intervals(tmp_path: Path) -> None:
    path = tmp_path / "hemsd.toml"
    path.write_text(BASE)
    apps: list[RecordingApp] = []

    class SlowApp(RecordingApp):
        def jobs(self) -> tuple[Job, ...]:
            return (Job("sim", 60.0, self._tick("sim")),)  # one simulated minute

    def factory(config: HemsdConfig, clock: Clock) -> RecordingApp:
        app = SlowApp(config, clock)
        apps.append(app)
        return app

    clock = AcceleratedClock(datetime(2026, 1, 1, tzinfo=UTC), speed=1200.0)  # a minute in 50 ms
    daemon = Daemon(load_config(path), factory, clock, path, Notifier(""))
    runner = asyncio.create_task(daemon.run())
    await eventually(lambda: bool(apps) and apps[0].ticks.get("sim", 0) >= 6, 30.0, "six simulated ticks")
    daemon.request_stop()
    await asyncio.wait_for(runner, 10)


def daemon_in(directory: Path) -> tuple[Path, list[RecordingApp], Daemon]:
    path = directory / "hemsd.toml"
    path.write_text(BASE)
    apps: list[RecordingApp] = []
    return path, apps, make_daemon(path, apps)


async def a_valid_edit_applies(path: Path, daemon: Daemon) -> None:
    path.write_text(BASE + "[battery]\ncapacity_kwh = 7.5\n")
    await eventually(lambda: daemon.config.battery.capacity_kwh == 7.5, 10.0, "the valid edit applied")


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda path: path.write_text(BASE + "a = " + "[" * 100_000 + "]" * 100_000), "nested too deeply"),
        (lambda path: path.write_bytes(BASE.encode() + b"# " + b"x" * 1_100_000), "larger than"),
        (lambda path: (path.unlink(), os.mkfifo(path)), "not a regular file"),
        (lambda path: path.write_bytes(b"\xff\xfe" + BASE.encode()), "not UTF-8"),
    ],
    ids=["nested", "huge", "fifo", "binary"],
)
async def test_an_unparseable_edit_is_rejected_and_a_valid_edit_after_it_applied(
    tmp_path: Path, damage: Callable[[Path], object], problem: str
) -> None:
    path, apps, daemon = daemon_in(tmp_path)
    runner = asyncio.create_task(daemon.run())
    try:
        await eventually(lambda: bool(apps) and apps[0].started, 10.0, "the app started")
        damage(path)
        await eventually(lambda: bool(apps[0].rejected), 10.0, "the unparseable edit rejected")
        assert problem in apps[0].rejected[0][0]
        path.unlink()
        await a_valid_edit_applies(path, daemon)
        assert daemon.task_restarts == {}
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(runner, 10) == 0


async def test_a_failed_long_lived_task_is_logged_reported_and_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, apps, daemon = daemon_in(tmp_path)
    calls = 0
    watch = daemon._watch_config

    async def failing_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the watcher")
        await watch()

    monkeypatch.setattr(daemon, "_watch_config", failing_once)
    runner = asyncio.create_task(daemon.run())
    try:
        await eventually(lambda: calls >= 2, 10.0, "the watcher started again")
        assert daemon.task_restarts == {"config-watch": 1}
        assert apps[0].restarted == [("config-watch", "RuntimeError: a bug in the watcher")]
        await a_valid_edit_applies(path, daemon)  # it watches again
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(runner, 10) == 0


async def test_a_start_that_hangs_ends_with_a_reason_and_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, apps, daemon = daemon_in(tmp_path)
    monkeypatch.setattr(controller.daemon.runner, "START_TIMEOUT_S", 0.5)

    async def hang() -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(RecordingApp, "start", lambda self: hang())
    assert await asyncio.wait_for(daemon.run(), 10) == 1
    assert apps[0].stopped
    assert not daemon.started.is_set()  # no READY for a daemon that does not run


async def test_an_error_after_the_start_stops_the_application_before_it_ends_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, apps, daemon = daemon_in(tmp_path)

    def broken_jobs(self: RecordingApp) -> tuple[Job, ...]:
        raise RuntimeError("a job list that cannot be built")

    monkeypatch.setattr(RecordingApp, "jobs", broken_jobs)
    with pytest.raises(RuntimeError, match="cannot be built"):
        await asyncio.wait_for(daemon.run(), 10)
    assert apps[0].started
    assert apps[0].stopped  # the application's stop returns the inverter to self-use
    assert not daemon.started.is_set()
