"""Daylight-saving transitions (Europe/Warsaw, spring 02:00 -> 03:00 and autumn 03:00 -> 02:00) on
the prices, the plan and the rollups, with the whole site on simulated time across the night.

Everything is kept in UTC inside; what must hold in local time: the transition day has 92 or 100
quarter-hours of prices, the plan's slots are contiguous quarter-hours through the change, the
hourly rollups of the local night have one bucket per real hour (5 or 7 between 00:00 and 06:00
local), the daily quality report expects a 23- or 25-hour day, and the daily write count and
the self-expiring eco window (on the inverter's local clock, which jumps too) carry on.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.config import FLAT_TARIFF
from support.sim_harness import Site, close_site, open_site

from controller.control.overrides import OverrideRequest
from drivers.days import day_window

TZ = ZoneInfo("Europe/Warsaw")
QUARTER = timedelta(minutes=15)
BODY = (
    """
[site]
id = "dst"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 300
plan_interval_min = 30
publish_interval_s = 600
[executor]
min_dwell_s = 0
"""
    + FLAT_TARIFF
)


@pytest.mark.parametrize(
    ("day", "hours", "night_hours"),
    [(date(2026, 3, 29), 23, 5), (date(2026, 10, 25), 25, 7)],
    ids=["spring", "autumn"],
)
async def test_a_night_with_a_clock_change(tmp_path: Path, day: date, hours: int, night_hours: int) -> None:
    midnight, next_midnight = (t.astimezone(UTC) for t in day_window(day, TZ))  # differences in real time
    assert next_midnight - midnight == timedelta(hours=hours)
    start = midnight - timedelta(hours=2)
    site = await open_site(tmp_path, start, BODY, initial_soc_pct=30, inverter="eco_window_min = 30")
    plans: list[tuple[datetime, list[tuple[datetime, datetime]]]] = []
    modes: list[tuple[datetime, str]] = []

    async def watch(s: Site) -> None:
        s.emulator.advance()
        modes.append((s.clock.now(), s.emulator.behaviour.mode))
        plan = s.app.plan
        if plan is not None and (not plans or plans[-1][0] != plan.created_at):
            plans.append((plan.created_at, [(slot.start, slot.end) for slot in plan.slots]))

    try:
        # a forced charge through the change: its eco window is on the inverter's local clock
        charge = OverrideRequest("force_charge", "test", timedelta(hours=5), power_w=1500, soc_pct=95)
        await site.app.parts.data.save_override(charge.record(site.clock.now()))
        dawn = datetime.combine(day, datetime.min.time(), TZ).replace(hour=6).astimezone(UTC)
        assert dawn - midnight == timedelta(hours=night_hours)
        await site.run(dawn - start.astimezone(UTC) + timedelta(minutes=5), during=watch)
        assert not site.failures, [(t, job, repr(e)) for t, job, e in site.failures[:3]]

        # prices: the transition day in quarter-hours, contiguous in UTC
        quarters = [p for p in site.app.prices if midnight <= p.start < next_midnight]
        assert len(quarters) == hours * 4
        assert all(p.end - p.start == QUARTER for p in site.app.prices)
        assert all(a.end == b.start for a, b in itertools.pairwise(site.app.prices))

        # every plan made through the night: contiguous slots, none longer than a quarter-hour
        assert len(plans) >= 16
        for created, slots in plans:
            assert slots[0][0] == created
            assert all(end - begin <= QUARTER for begin, end in slots)
            assert all(a[1] == b[0] for a, b in itertools.pairwise(slots)), created
            assert all(end.astimezone(UTC).minute % 15 == 0 for _, end in slots)

        # the forced charge ran through the change (the window was renewed on the inverter's clock)
        charging = [
            mode for t, mode in modes if t < start.astimezone(UTC) + timedelta(hours=5) - timedelta(minutes=5)
        ]
        lapses = sum(1 for mode in charging if mode != "charge")
        assert lapses <= 1, modes  # at most the poll at the jump of the inverter's clock

        # rollups: one hourly bucket per real hour of the local night, each with its 12 readings
        data = site.app.parts.data
        await data.flush()
        hourly = await data.history(["soc_pct"], midnight, dawn, resolution="1h")
        assert hourly.data is not None
        counts = hourly.data.fields["soc_pct"].count
        assert len(counts) == night_hours
        assert np.all(counts == 12), counts
        quality = await data.quality(day, TZ, ["soc_pct"])
        assert quality.data is not None
        (soc,) = quality.data
        assert soc.samples == soc.expected == night_hours * 12 + 1  # the day so far, in real hours
    finally:
        await close_site(site)
