"""Polish net-billing on the monthly RCEm, which PSE publishes after its month: the month in
progress (and the plan's next days) have no price of their own yet. The plan is made and the
month's bill settled at the latest month's price given (the estimate until its own is given);
a month before any price given is valued at its export prices."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager
from test_loads_plan import START, day_inputs

from controller.config.loading import load_config_text
from controller.planner.inputs import make_plan
from controller.reports.energy import BillSource, month_bill
from controller.settlement.engine import Metered, settle
from storage.sqlite import DB_FILENAME

WARSAW = ZoneInfo("Europe/Warsaw")


def rcem(prices: str) -> str:
    return f'[settlement]\nscheme = "pl_net_billing_rcem"\n[settlement.export]\nmonthly_prices = {{ {prices} }}\n'


def test_a_plan_is_made_before_the_month_s_price_is_published() -> None:
    slots, pv, load = day_inputs()  # 10-12 April 2026
    unpublished = make_plan(
        load_config_text(rcem('"2026-02" = 0.2, "2026-03" = 0.25')), 50.0, slots, pv, load, START, None
    )
    given = make_plan(
        load_config_text(rcem('"2026-03" = 0.9, "2026-04" = 0.25')), 50.0, slots, pv, load, START, None
    )
    assert unpublished.objective == given.objective  # April at March's 0.25
    assert [s.action for s in unpublished.slots] == [s.action for s in given.slots]


def quarter_hours(first: datetime, months: int) -> Metered:
    """A quarter-hour exporting 1 kWh at the first instant of each of ``months`` local months."""
    starts = []
    for k in range(months):
        year, month = first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1
        starts.append(int(datetime(year, month, 1, tzinfo=WARSAW).timestamp()))
    n = len(starts)
    return Metered(
        np.array(starts, dtype=np.int64),
        900,
        np.zeros(n),
        np.ones(n),
        np.full(n, 0.8),
        np.full(n, 0.05),
    )


def test_the_bill_of_a_month_not_yet_published_is_at_the_latest_price_given() -> None:
    config = load_config_text(
        rcem('"2025-12" = 0.4, "2026-01" = 0.3') + "[settlement.deposit]\nenabled = false\n"
    )
    bill = settle(quarter_hours(datetime(2025, 11, 1, tzinfo=UTC), 4), config.settlement.build(), WARSAW)
    values = {m.month: m.export_value for m in bill.months}
    assert values == {
        "2025-11": pytest.approx(0.05),  # before any price given: the export price
        "2025-12": pytest.approx(0.4),
        "2026-01": pytest.approx(0.3),
        "2026-02": pytest.approx(0.3),  # not published yet: January's
    }


async def test_the_month_bill_reads_past_damaged_rows_of_its_storage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows of the 15-minute rollups holding text or bytes where numbers belong (a damaged disk,
    an edit by hand): the month's bill is settled without them, one ERROR line says so, and the
    capacity peak is still the month's."""
    clock = SettableClock(datetime(2026, 4, 3, 12, tzinfo=UTC))
    scheme = load_config_text('[settlement]\nscheme = "be_flanders_capacity"\n')
    source = BillSource(scheme.settlement.build(), scheme.prices.tariff)
    times = np.arange(
        datetime(2026, 4, 1, tzinfo=UTC).timestamp(), datetime(2026, 4, 3, 11, tzinfo=UTC).timestamp(), 60.0
    )
    grid = np.where((times // 3600) % 24 == 18, 4000.0, 800.0)  # 4 kW an hour a day: the peak
    async with data_manager(tmp_path, clock) as data:
        await data.ingest(
            times,
            {
                "pv_w": np.zeros(times.size),
                "load_w": grid,
                "grid_w": grid,
                "soc_pct": np.full(times.size, 50.0),
            },
        )
        whole = await month_bill(data, WARSAW, source)
    assert whole is not None
    assert whole.peak_kw == pytest.approx(4.0)
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        damaged = db.execute(
            "UPDATE rollup_15min SET pos_wh = 'x', total = X'00ff' WHERE bucket IN "
            "(SELECT DISTINCT bucket FROM rollup_15min ORDER BY bucket LIMIT 3)"
        ).rowcount
    assert damaged > 0
    caplog.set_level(logging.ERROR, "storage.sqlite")
    async with data_manager(tmp_path, clock) as data:
        read = await month_bill(data, WARSAW, source)
        again = await month_bill(data, WARSAW, source)
    assert read is not None
    assert read == again
    assert read.peak_kw == pytest.approx(4.0)
    assert (
        whole.import_kwh - 0.2 * 3 - 1e-9 <= read.import_kwh < whole.import_kwh
    )  # three quarter-hours of 0.2 kWh
    errors = [r.getMessage() for r in caplog.records if "not numbers" in r.getMessage()]
    assert len(errors) == 1
