"""The application under a capacity charge, on simulated time against the emulator: it reads the
month's peak back from storage (also at the month's first instant), plans against it and holds
it on the house as measured."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.config import FLAT_TARIFF
from support.sim_harness import close_site, open_site

from controller.reports.energy import BillSource, month_bill

TZ = ZoneInfo("Europe/Warsaw")
BODY = (
    """
[site]
id = "peak"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
plan_interval_min = 15
publish_interval_s = 300
[planner]
kind = "deterministic"
"""
    + FLAT_TARIFF
)
CAPACITY = """
[settlement.capacity]
price_per_kw_month = 20.0
minimum_kw = 0.0
"""


async def evening_peak_kw(tmp_path: Path, body: str) -> tuple[float, float | None, int]:
    """December's import peak after its first afternoon and evening (the day before, the last of
    November, gives the forecaster a day of the house), the cap the last plan held, and how many
    jobs failed."""
    start = datetime(2026, 11, 30, 12, 0, tzinfo=TZ)
    site = await open_site(tmp_path, start, body, initial_soc_pct=20)
    try:
        await site.run(timedelta(hours=34))
        await site.app.parts.data.flush()
        scheme = site.config.settlement.build()
        month = await month_bill(site.app.parts.data, TZ, BillSource(scheme, site.config.prices.tariff))
        assert month is not None
        plan = site.app.plan
        return month.peak_kw, None if plan is None else plan.import_cap_w, len(site.failures)
    finally:
        await close_site(site)


@pytest.mark.slow
async def test_the_daemon_holds_the_evening_peak_under_a_capacity_charge(tmp_path: Path) -> None:
    blind, no_cap, failed = await evening_peak_kw(tmp_path / "blind", BODY)
    assert failed == 0
    assert no_cap is None
    held, cap, failed = await evening_peak_kw(tmp_path / "held", BODY + CAPACITY)
    assert failed == 0
    assert cap is not None
    # with one day of history the forecast sees about half the evening; what it sees is held
    # (self-use where the house goes above the plan), and December's peak comes out lower
    assert held < blind - 0.1, (held, blind)
