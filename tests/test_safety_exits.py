"""Every way out of hemsd leaves the inverter in self-use, or returns it there at the next start.

Covered elsewhere: kill -9 and the start after it (``tests/test_restart.py``,
``tests/test_safety_restart.py``), a start that fails or hangs, storage that cannot be opened
(``tests/test_safety_damaged_db.py``), a long-lived task that fails (``tests/test_daemon_jobs.py``).
Here:

- SIGTERM while an override forces a charge, a discharge or a hold: the process exits 0 and the
  inverter, read afterwards by a driver of its own, is in self-use (real processes);
- a power cut: the Pi goes down in a forced discharge or hold and comes back hours later, after
  the override that asked for it has expired; the start (which ends with the first tick) leaves
  the inverter in self-use (in process, simulated time).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF, goodwe_process_config
from support.processes import cli, emulator_process, inverter_command, start_daemon
from support.sim_harness import close_site, open_site
from support.waiting import wait_until

from controller.clock import VirtualClock
from controller.config.loading import load_config
from controller.control.overrides import OverrideRequest
from controller.daemon.app import StartupError
from controller.daemon.runner import SELF_USE_REQUESTS, stop_budget_s
from controller.daemon.wiring import create_application
from controller.sim.emulator.server import GoodWeEmulator
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Command, CommandKind

TZ = ZoneInfo("Europe/Warsaw")
CONFIG = goodwe_process_config("exits")
FORCED = {
    "force_charge": (("--power-w", "3000", "--soc", "95"), CommandKind.CHARGE),
    "force_discharge": (("--power-w", "3000", "--soc", "20"), CommandKind.DISCHARGE),
    "hold": ((), CommandKind.HOLD),
}


@pytest.fixture
def emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "60")


@pytest.mark.parametrize("mode", list(FORCED))
def test_sigterm_in_a_forced_mode_leaves_the_inverter_in_self_use(
    tmp_path: Path, emulator_port: int, mode: str
) -> None:
    config = tmp_path / "hemsd.toml"
    config.write_text(CONFIG.format(port=emulator_port, state=tmp_path / "state"), encoding="utf-8")
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
        options, kind = FORCED[mode]
        cli(config, mode, *options, "--minutes", "30")
        wait_until(lambda: inverter_command(emulator_port) is kind, 15, f"the inverter in {kind.value}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=15)
    assert code == 0
    assert inverter_command(emulator_port) is CommandKind.SELF_USE
    assert "Traceback" not in log.read_text()


BODY = (
    """
[site]
id = "power-cut"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 30
[executor]
min_dwell_s = 0
"""
    + FLAT_TARIFF
)


@pytest.mark.parametrize(
    ("mode", "behaviour"),
    [("force_discharge", "discharge"), ("hold", "hold")],
)
async def test_after_a_power_cut_the_expired_forced_mode_ends_at_start(
    tmp_path: Path, mode: str, behaviour: str
) -> None:
    start = datetime(2026, 6, 15, 22, 0, tzinfo=TZ)  # night: the plan wants no forced mode
    site = await open_site(tmp_path, start, BODY, initial_soc_pct=80)
    override = OverrideRequest(mode, "test", timedelta(hours=1), power_w=2000, soc_pct=20)
    await site.app.parts.data.save_override(override.record(site.clock.now()))
    await site.run(timedelta(minutes=10), jobs=("poll",))
    site.emulator.advance()
    assert site.emulator.behaviour.mode == behaviour
    # the power cut: the daemon's resources go away and nothing tells the inverter anything; the
    # inverter (on its own supply) keeps the mode for the three hours the Pi is down
    await site.app._stack.aclose()
    await site.true_clock.sleep(3 * 3600)
    site.emulator.advance()
    assert site.emulator.behaviour.mode == behaviour
    again = create_application(site.config, site.clock)
    await again.start()  # restores the state, reconciles with the inverter, ticks once
    try:
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "self_use"
        decision = again.parts.control.last_decision
        assert decision is not None
        assert decision.guarded.intent.source != "override"  # the override expired while the Pi was down
    finally:
        await again.stop()
        await site.emulator.stop()


@pytest.fixture
def slow_emulator_port(tmp_path: Path) -> Iterator[int]:
    # every reply 0.4 s late (the driver waits 0.5 s): a read takes longer than the daemon's poll
    # interval, returning to self-use (15 requests) three times the stop time configured below
    yield from emulator_process(tmp_path, "--soc", "60", "--late-ratio", "1", "--late-s", "0.4")


def test_sigterm_with_an_inverter_slower_than_the_poll_leaves_it_in_self_use(
    tmp_path: Path, slow_emulator_port: int
) -> None:
    config = tmp_path / "hemsd.toml"
    body = CONFIG.replace("poll_interval_s = 1\n", "poll_interval_s = 1\nstop_timeout_s = 2\n")
    config.write_text(body.format(port=slow_emulator_port, state=tmp_path / "state"), encoding="utf-8")
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 60, "daemon ready")
        cli(config, "force_charge", "--power-w", "3000", "--soc", "95", "--minutes", "30")
        wait_until(
            lambda: inverter_command(slow_emulator_port) is CommandKind.CHARGE, 60, "the inverter charging"
        )
    finally:
        stopping = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
        stopped_s = time.monotonic() - stopping
    assert code == 0
    assert stopped_s < stop_budget_s(load_config(config)) + 5.0
    assert inverter_command(slow_emulator_port) is CommandKind.SELF_USE, log.read_text()[-3000:]


@pytest.mark.parametrize("window", [None, 30], ids=["all-day", "expiring"])
@pytest.mark.parametrize(
    "left",
    [
        Command(CommandKind.CHARGE, 3000, 95),
        Command(CommandKind.DISCHARGE, 3000, 20, export_limit_w=0),
        Command(CommandKind.HOLD),
        Command(CommandKind.IDLE),
    ],
    ids=["charge", "discharge", "hold", "idle"],
)
async def test_the_stop_budget_covers_the_requests_of_a_return_to_self_use(
    window: int | None, left: Command
) -> None:
    clock = VirtualClock(datetime(2026, 6, 15, 10, 0, tzinfo=TZ))
    async with GoodWeEmulator(clock=clock, tcp_port=0) as emulator:
        config = GoodWeConfig(host="127.0.0.1", port=emulator.tcp_port, protocol="tcp", eco_window_min=window)
        assert (await GoodWeDriver(config, now=clock.now).apply(left)).ok  # the daemon before
        stopping = GoodWeDriver(config, now=clock.now)  # a new connection, the clock unknown
        await stopping.read()
        before = emulator.requests
        assert (await stopping.apply(Command(CommandKind.SELF_USE, min_soc=10))).ok
        assert emulator.requests - before <= SELF_USE_REQUESTS


async def test_a_second_daemon_on_the_same_state_leaves_the_first_ones_inverter_alone(tmp_path: Path) -> None:
    site = await open_site(tmp_path, datetime(2026, 6, 15, 22, 0, tzinfo=TZ), BODY, initial_soc_pct=40)
    try:
        override = OverrideRequest("force_charge", "test", timedelta(hours=2), power_w=2000, soc_pct=95)
        await site.app.parts.data.save_override(override.record(site.clock.now()))
        await site.run(timedelta(minutes=2), jobs=("poll",))
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "charge"
        writes = site.emulator.writes_total
        second = create_application(site.config, site.clock)  # e.g. `hemsd run` by hand beside the service
        with pytest.raises(StartupError, match=r"in use by another process.*left to it"):
            await second.start()
        await second.stop()
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "charge"  # the running daemon's charge goes on
        assert site.emulator.writes_total == writes
        await site.run(timedelta(minutes=2), jobs=("poll",))  # and the first daemon runs on
        assert not site.failures
    finally:
        await close_site(site)
