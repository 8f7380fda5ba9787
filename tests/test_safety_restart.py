"""The inverter ends in self-use when the daemon crashes while it holds a forced mode.

``tests/test_restart.py`` covers kill -9 during a forced charge that an override still asks for
(continued) or that was undone meanwhile (self-use). Here:

- the charge came from the plan, and after the restart the plan no longer wants it: the first
  tick returns to self-use and the session is closed (real processes);
- after the restart the inverter's data is stale (its runtime registers fail, its settings still
  answer): self-use on the first tick, whatever the override says (in process, simulated time);
- with self-expiring modes (``eco_window_min``) the emulator returns to self-use by itself after
  kill -9, with no restart at all (real processes, the emulator's clock 120 times faster).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.emulator_fixtures import driver_for
from support.processes import cli, emulator_process, inverter_command, sessions, start_daemon
from support.sim_harness import open_site
from support.waiting import wait_until

import controller.daemon.app
from controller.control.overrides import OverrideRequest
from controller.daemon.wiring import create_application
from controller.sim.emulator.server import Faults
from drivers.inverter.types import Command, CommandKind

TZ = ZoneInfo("Europe/Warsaw")
CONFIG = """
[site]
id = "restart"
timezone = "Europe/Warsaw"
[inverter]
type = "goodwe"
host = "127.0.0.1"
port = {port}
protocol = "tcp"
timeout_s = 0.5
retries = 1
{inverter}
[daemon]
poll_interval_s = 1
[executor]
min_dwell_s = 0
[battery]
min_soc_pct = 12
[storage]
state_dir = "{state}"
commit_interval_s = 0.5
[[prices.sources]]
type = "csv"
path = "{prices}"
currency = "PLN"
timezone = "Europe/Warsaw"
"""


@pytest.fixture
def emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "30", "--tz", "Europe/Warsaw")


@pytest.fixture
def fast_emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "30", "--tz", "Europe/Warsaw", "--speed", "120")


def write_prices(path: Path, cheap_now: bool) -> None:
    """Three days of quarter-hour prices; with ``cheap_now`` the current quarter and the next are
    far below the rest: too short a window to fill the battery, so charging at full power pays
    whatever the emulator's PV does at this time of day."""
    now = datetime.now(TZ)
    now = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    first = datetime(now.year, now.month, now.day, tzinfo=TZ) - timedelta(days=1)
    lines = ["start,price"]
    t = first.astimezone(UTC)
    while t < (first + timedelta(days=4)).astimezone(UTC):
        price = -1.0 if cheap_now and now <= t < now + timedelta(minutes=30) else 0.8
        lines.append(f"{t.isoformat()},{price}")
        t += timedelta(minutes=15)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(tmp_path: Path, port: int, inverter: str = "") -> tuple[Path, Path]:
    state, prices, config = tmp_path / "state", tmp_path / "prices.csv", tmp_path / "hemsd.toml"
    config.write_text(
        CONFIG.format(port=port, state=state, prices=prices, inverter=inverter), encoding="utf-8"
    )
    return config, state


def test_a_plan_charge_that_the_new_plan_no_longer_wants_ends_on_the_first_tick(
    tmp_path: Path, emulator_port: int
) -> None:
    config, state = write_config(tmp_path, emulator_port)
    write_prices(tmp_path / "prices.csv", cheap_now=True)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: inverter_command(emulator_port) is CommandKind.CHARGE, 30, "the plan charges")
        wait_until(
            lambda: [s[1:] for s in sessions(state)] == [("charge", "open")], 10, "an open charge session"
        )
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    assert inverter_command(emulator_port) is CommandKind.CHARGE  # nothing reset it
    write_prices(tmp_path / "prices.csv", cheap_now=False)  # the market moved: no reason to charge
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: log.read_text().count("hemsd running") == 2, 30, "daemon restarted")
        wait_until(lambda: inverter_command(emulator_port) is not CommandKind.CHARGE, 3, "the charge ended")
        # what follows the charge is the new plan's choice for the wall-clock hour (self-use, hold,
        # or an idle export when the emulator's PV is up): only that the charge ended is the point
        assert inverter_command(emulator_port) is not CommandKind.CHARGE
        wait_until(
            lambda: [s[1:] for s in sessions(state)][:1] == [("charge", "closed")], 10, "session closed"
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    assert "Traceback" not in log.read_text()


def test_kill_9_during_a_charge_ends_in_self_use_by_itself_with_expiring_modes(
    tmp_path: Path, fast_emulator_port: int
) -> None:
    port = fast_emulator_port
    config, _ = write_config(tmp_path, port, inverter="eco_window_min = 10")
    write_prices(tmp_path / "prices.csv", cheap_now=False)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
        cli(config, "force_charge", "--power-w", "3000", "--soc", "95", "--minutes", "60")
        wait_until(lambda: inverter_command(port) is CommandKind.CHARGE, 15, "inverter charging")
        time.sleep(6)  # 12 simulated minutes: the 10-minute window has been renewed meanwhile
        assert inverter_command(port) is CommandKind.CHARGE
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    killed = time.monotonic()
    # no daemon any more: within one window (10 simulated minutes = 5 s) the inverter is in self-use
    wait_until(lambda: inverter_command(port) is CommandKind.SELF_USE, 20, "self-use by itself")
    assert time.monotonic() - killed < 10
    assert "Traceback" not in log.read_text()


async def test_stale_data_after_a_restart_means_self_use_whatever_the_override(tmp_path: Path) -> None:
    body = (
        """
[site]
id = "stale"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 30
[executor]
min_dwell_s = 0
"""
        + FLAT_TARIFF
    )
    start = datetime(2026, 6, 15, 11, 0, tzinfo=TZ)
    site = await open_site(tmp_path, start, body, initial_soc_pct=30)
    override = OverrideRequest("force_charge", "test", timedelta(hours=4), power_w=3000, soc_pct=95)
    await site.app.parts.data.save_override(override.record(site.clock.now()))
    await site.run(timedelta(minutes=10), jobs=("poll",))
    site.emulator.advance()
    assert site.emulator.behaviour.mode == "charge"
    # crash: the application's resources go away, nothing tells the inverter anything
    await site.app._stack.aclose()
    # the inverter's runtime registers fail from now on; its settings still answer
    site.emulator.faults = Faults(exception_ratio=1.0, addresses=(35100, 36000, 37000))
    await site.true_clock.sleep(120)
    again = create_application(site.config, site.clock)
    await again.start()  # reads nothing, reconciles with the charging inverter, ticks once
    try:
        site.emulator.advance()
        assert again.snapshot is None
        assert site.emulator.behaviour.mode == "self_use"
        decision = again.parts.control.last_decision
        assert decision is not None
        assert decision.guarded.safety_fallback
        assert decision.guarded.intent.source == "override"  # the override still asks, the guard says no
        site.emulator.faults = Faults()
        await again.poll()  # data again: the override applies again
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "charge"
    finally:
        await again.stop()
        await site.emulator.stop()


async def test_the_days_inverter_writes_survive_a_restart(tmp_path: Path) -> None:
    """The daily write cap (flash wear) counts the writes before a restart too: a restart loop
    cannot write without limit."""
    body = '[site]\nid = "writes"\ntimezone = "Europe/Warsaw"\n[executor]\nmin_dwell_s = 0\n' + FLAT_TARIFF
    site = await open_site(tmp_path, datetime(2026, 6, 15, 11, 0, tzinfo=TZ), body, initial_soc_pct=30)
    override = OverrideRequest("force_charge", "test", timedelta(hours=1), power_w=3000, soc_pct=95)
    await site.app.parts.data.save_override(override.record(site.clock.now()))
    await site.run(timedelta(minutes=5), jobs=("poll",))
    before = site.app.parts.inverter.writes_spent()[1]
    assert before > 0
    assert before == site.emulator.writes_total
    await site.app.stop()
    again = create_application(site.config, site.clock)
    await again.start()
    try:
        assert again.parts.inverter.writes_spent()[1] == site.emulator.writes_total  # before and since
        assert site.emulator.writes_total >= before
    finally:
        await again.stop()
        await site.emulator.stop()


async def test_a_start_that_fails_after_the_inverter_is_open_ends_a_forced_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '[site]\nid = "failing"\ntimezone = "Europe/Warsaw"\n' + FLAT_TARIFF
    site = await open_site(tmp_path, datetime(2026, 6, 15, 11, 0, tzinfo=TZ), body, start_app=False)
    try:
        driver = driver_for(site.emulator, "tcp")  # as the daemon before it crashed
        await driver.apply(Command(CommandKind.DISCHARGE, 3000, 20))
        await driver.close()
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "discharge"

        async def no_prices(*args: object) -> None:
            raise RuntimeError("the price cache directory is unusable")

        monkeypatch.setattr(controller.daemon.app, "open_prices", no_prices)
        with pytest.raises(RuntimeError, match="price cache"):
            await site.app.start()
        await site.app.stop()
        site.emulator.advance()
        assert site.emulator.behaviour.mode == "self_use"
    finally:
        await site.emulator.stop()
