"""The inverter unreachable for an hour while a forced charge runs.

The emulator's Modbus server goes away (connection refused, as when the LAN dongle reboots) and
comes back on the same port an hour later; its physics runs on meanwhile. The daemon must keep
running, report the inverter stale (health), want self-use once the data is older than
``executor.stale_after_s``, and take control again when the inverter answers. With self-expiring
modes the inverter itself stops charging within the window; without them it charges on until the
daemon reaches it again, which is why they exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.config import FLAT_TARIFF
from support.sim_harness import Site, close_site, open_site

from controller.control.overrides import OverrideRequest
from drivers.inverter.goodwe import GoodWeDriver
from drivers.inverter.types import CommandKind

TZ = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 6, 15, 9, 0, tzinfo=TZ)
BODY = (
    """
[site]
id = "unreachable"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
plan_interval_min = 60
publish_interval_s = 300
[executor]
min_dwell_s = 0
stale_after_s = 120
"""
    + FLAT_TARIFF
)
JOBS = ("poll", "plan", "publish")


async def outage(site: Site, down: bool) -> None:
    emulator = site.emulator
    if down:
        emulator._requested_ports = (emulator.tcp_port, None)  # come back on the same port
        await emulator.stop()
    else:
        await emulator.start()


@pytest.mark.parametrize("window", [None, 30], ids=["all-day-groups", "expiring-groups"])
async def test_an_hour_without_the_inverter(tmp_path: Path, window: int | None) -> None:
    inverter = f"eco_window_min = {window}" if window else ""
    site = await open_site(tmp_path, START, BODY, initial_soc_pct=20, inverter=inverter)
    driver = site.app.parts.inverter
    assert isinstance(driver, GoodWeDriver)
    driver._monotonic = lambda: site.true_clock.now().timestamp()  # reconnect backoff in simulated time
    data = site.app.parts.data
    override = OverrideRequest("force_charge", "test", timedelta(hours=4), power_w=2000, soc_pct=95)
    await data.save_override(override.record(site.clock.now()))
    modes: list[tuple[datetime, str, CommandKind | None, bool]] = []
    readings = {site.app.snapshot.time} if site.app.snapshot else set()  # the readings the daemon got

    async def watch(s: Site) -> None:
        s.emulator.advance()
        command = s.app.parts.control.state.command
        stale = "inverter" in (await s.app.health(s.clock.now())).stale_sources
        modes.append(
            (s.true_clock.now(), s.emulator.behaviour.mode, command.kind if command else None, stale)
        )
        if s.app.snapshot is not None and not s.app.snapshot.stale:
            readings.add(s.app.snapshot.time)

    try:
        await site.run(timedelta(minutes=30), during=watch, jobs=JOBS)
        assert site.emulator.behaviour.mode == "charge"
        down_at = site.true_clock.now()
        await outage(site, down=True)
        await site.run(timedelta(hours=1), during=watch, jobs=JOBS)
        up_at = site.true_clock.now()
        await outage(site, down=False)
        await site.run(timedelta(minutes=30), during=watch, jobs=JOBS)
        assert not site.failures, site.failures[:3]  # the daemon kept running

        during = [m for m in modes if down_at < m[0] <= up_at]
        # the daemon wants self-use once the data is stale, and says the inverter is stale
        late = [m for m in during if m[0] >= down_at + timedelta(minutes=3)]
        assert {m[2] for m in late} == {CommandKind.SELF_USE}
        assert all(m[3] for m in late)
        # what the inverter does meanwhile depends on whether its forced mode expires by itself
        if window is None:
            assert {m[1] for m in during} == {"charge"}
        else:
            expired = [m for m in during if m[0] >= down_at + timedelta(minutes=window + 1)]
            assert {m[1] for m in expired} == {"self_use"}

        # back: within a few polls the daemon reads again and the override applies again
        after = [m for m in modes if m[0] > up_at]
        settled = [m for m in after if m[0] >= up_at + timedelta(minutes=10)]
        assert {(m[1], m[2], m[3]) for m in settled} == {("charge", CommandKind.CHARGE, False)}

        events = await data.events(kinds=["inverter.apply_failed"], limit=500)
        assert events  # each failed attempt to reach it is on record
        # nothing measured is lost: every answered poll is in the 1-min rollups, and the energy
        # counters carry the hour the daemon could not see
        await data.flush()
        end = site.clock.now() + timedelta(minutes=1)
        history = await data.history(["soc_pct"], START, end, resolution="1min")
        assert history.data is not None
        # each reading once (a failed read serves the last one again: it is not counted twice)
        assert int(history.data.fields["soc_pct"].count.sum()) == len(readings)
        assert len(readings) > 60
        assert np.nanmax(history.data.fields["soc_pct"].last) > 20
        snapshot = await driver.read()
        assert snapshot.counters_kwh["import"] == pytest.approx(site.emulator.counters.import_kwh, abs=0.15)
    finally:
        await close_site(site)
