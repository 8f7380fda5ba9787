"""Energy and money reports from stored history: totals, periods over DST, baselines, gaps, the MQTT summary."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.physics import BatteryParams
from controller.reports.energy import (
    BillSource,
    MonthBillReader,
    analytics_summary,
    energy_report,
    exported_before_month,
    read_site_history,
)
from controller.settlement.config import SettlementConfig
from controller.sim.baselines import self_consumption
from storage.datamanager import DataManager, StorageOptions
from storage.records import DataStatus, price_point

WARSAW = ZoneInfo("Europe/Warsaw")
START = datetime(2026, 3, 28, tzinfo=WARSAW)  # summer time begins on the 29th: a 23-hour day
DAYS = 3
BATTERY = BatteryParams(capacity_kwh=8.0, min_soc_pct=10.0, max_charge_w=3000.0, max_discharge_w=3000.0)
UNPRICED = 40  # this quarter-hour has no price


@dataclass
class Recorded:
    times: np.ndarray  # one sample per minute, at :30
    columns: dict[str, np.ndarray]


def record_days(seed: int = 4) -> Recorded:
    """PV, load, a battery that charges from the grid at night and follows the house by day."""
    rng = np.random.default_rng(seed)
    end = START + timedelta(days=DAYS)
    minutes = round((end.timestamp() - START.timestamp()) / 60)  # aware arithmetic in one zone is wall-clock
    times = START.timestamp() + 30.0 + 60.0 * np.arange(minutes)
    hour = np.array([datetime.fromtimestamp(t, WARSAW).hour for t in times[::60]]).repeat(60)[:minutes]
    pv = (
        np.clip(np.sin((hour + (times % 3600) / 3600 - 6) / 12 * np.pi), 0, None)
        * 4000
        * rng.uniform(0.5, 1, minutes)
    )
    load = 300 + 500 * rng.random(minutes) + 1200 * ((hour >= 18) & (hour < 21))
    battery = np.where((hour >= 1) & (hour < 3), -2000.0, np.clip(load - pv, -3000, 3000))
    soc = np.clip(40 + np.cumsum(-battery) / 60 / 8000 * 100, 10, 100)
    return Recorded(
        times,
        {
            "pv_w": pv,
            "load_w": load,
            "battery_w": battery,
            "grid_w": load - pv - battery,
            "soc_pct": soc,
            "grid_v1": 232 + pv / 2000,
        },
    )


def quarter_prices(q: int) -> tuple[float, float]:
    return 0.5 + 0.4 * ((q // 4) % 24 >= 17) + 0.01 * (q % 7), 0.2 + 0.001 * (q % 5)


@asynccontextmanager
async def stored(
    tmp: Path, recorded: Recorded, drop: slice | None = None, clock: list[datetime] | None = None
) -> AsyncIterator[DataManager]:
    """The recorded days and their prices in a data manager whose time is ``clock[0]`` (ten
    minutes after the last sample unless given)."""
    now = clock or [datetime.fromtimestamp(float(recorded.times[-1]) + 600, WARSAW)]
    data = DataManager(
        StorageOptions(tmp / "state", sample_interval_s=60.0, max_gap_s=120.0), now=lambda: now[0]
    )
    await data.store.open()
    try:
        quarters = round((recorded.times[-1] + 30 - START.timestamp()) / 900)
        await data.record_points(
            price_point(
                START.astimezone(UTC) + timedelta(minutes=15 * q), *quarter_prices(q), "home", "inverter"
            )
            for q in range(quarters)
            if q != UNPRICED
        )
        await data.flush()
        keep = np.ones(recorded.times.size, dtype=bool)
        if drop is not None:
            keep[drop] = False
        await data.ingest(recorded.times[keep], {k: v[keep] for k, v in recorded.columns.items()})
        yield data
    finally:
        await data.close()


def expected_by_quarter(recorded: Recorded) -> dict[str, np.ndarray]:
    """kWh per quarter-hour as the rollups integrate it: each sample over the minute before it."""
    q = ((recorded.times - START.timestamp()) // 900).astype(int)
    dt_h = np.diff(recorded.times, prepend=recorded.times[0]) / 3600  # the first sample integrates nothing
    out = {}
    for name, part in (("pv", "pv_w"), ("load", "load_w")):
        out[name] = np.bincount(q, recorded.columns[part] * dt_h) / 1000
    grid, battery = recorded.columns["grid_w"], recorded.columns["battery_w"]
    out["import"] = np.bincount(q, np.maximum(grid, 0) * dt_h) / 1000
    out["export"] = np.bincount(q, np.maximum(-grid, 0) * dt_h) / 1000
    out["discharge"] = np.bincount(q, np.maximum(battery, 0) * dt_h) / 1000
    out["charge"] = np.bincount(q, np.maximum(-battery, 0) * dt_h) / 1000
    prices = np.array([quarter_prices(i) for i in range(out["pv"].size)])
    priced = np.arange(out["pv"].size) != UNPRICED
    out["ip"], out["ep"] = np.where(priced, prices[:, 0], 0), np.where(priced, prices[:, 1], 0)
    return out


async def test_the_daily_account_matches_the_recorded_samples(tmp_path: Path) -> None:
    recorded = record_days()
    async with stored(tmp_path, recorded) as data:
        history = await read_site_history(data, START, START + timedelta(days=DAYS))
    report = energy_report(history, BATTERY, WARSAW, "day", "PLN")
    assert report.status is DataStatus.REAL, report.message
    assert [p.label for p in report.periods] == ["2026-03-28", "2026-03-29", "2026-03-30"]
    assert [p.intervals for p in report.periods] == [96, 92, 96]  # the spring-forward day is 23 h
    x = expected_by_quarter(recorded)
    total = report.total
    assert total is not None
    for field, key in (
        ("pv_kwh", "pv"),
        ("load_kwh", "load"),
        ("import_kwh", "import"),
        ("export_kwh", "export"),
        ("charge_kwh", "charge"),
        ("discharge_kwh", "discharge"),
    ):
        assert getattr(total, field) == pytest.approx(float(x[key].sum()), rel=1e-9), field
    assert total.self_consumed_kwh == pytest.approx(
        float(np.maximum(x["pv"] - x["export"], 0).sum()), rel=1e-9
    )
    assert total.cost_paid == pytest.approx(
        float((x["import"] * x["ip"] - x["export"] * x["ep"]).sum()), rel=1e-9
    )
    house = x["load"] - x["pv"]
    no_battery = np.maximum(house, 0) * x["ip"] - np.maximum(-house, 0) * x["ep"]
    assert total.cost_no_battery == pytest.approx(float(no_battery.sum()), rel=1e-9)
    assert total.unpriced == 1
    assert total.missing == 0
    assert total.cycles == pytest.approx(total.discharge_kwh / (7.2 * 0.95))
    assert total.self_consumption_ratio == pytest.approx(total.self_consumed_kwh / total.pv_kwh)
    assert total.autarky_ratio == pytest.approx(1 - total.import_kwh / total.load_kwh)
    assert sum(p.cost_paid for p in report.periods) == pytest.approx(total.cost_paid, rel=1e-12)


async def test_the_self_consumption_baseline_is_the_backtest_replay_of_the_recorded_house(
    tmp_path: Path,
) -> None:
    recorded = record_days()
    async with stored(tmp_path, recorded) as data:
        history = await read_site_history(data, START, START + timedelta(days=DAYS))
    report = energy_report(history, BATTERY, WARSAW, "week", "PLN")
    assert [p.label for p in report.periods] == ["2026-W13", "2026-W14"]  # Sat + Sun, then Monday
    assert history.first_soc_pct is not None
    replay = self_consumption(history.scenario("PLN"), BATTERY, history.first_soc_pct)
    total = report.total
    assert total is not None
    assert total.cost_self_consumption == pytest.approx(replay.cost, rel=1e-9)
    assert total.savings_battery == pytest.approx(total.cost_no_battery - replay.cost)
    assert total.savings_planning == pytest.approx(replay.cost - total.cost_paid)
    assert total.cost_self_consumption < total.cost_no_battery
    month = energy_report(history, BATTERY, WARSAW, "month", "PLN")
    assert [p.label for p in month.periods] == ["2026-03"]
    assert month.periods[0].cost_paid == pytest.approx(total.cost_paid)


async def test_a_gap_is_counted_as_missing_and_marks_the_report_partial(tmp_path: Path) -> None:
    recorded = record_days()
    gap = slice(1440 + 600, 1440 + 720)  # two hours of the second day
    async with stored(tmp_path, recorded, drop=gap) as data:
        history = await read_site_history(data, START, START + timedelta(days=DAYS))
    report = energy_report(history, BATTERY, WARSAW, "day", "PLN")
    assert report.status is DataStatus.PARTIAL
    assert "completeness" in report.message
    assert [p.missing for p in report.periods] == [0, 8, 0]
    assert history.scenario("PLN").pv_w[history.present == 0].sum() == 0.0


async def test_the_summary_for_mqtt_is_plain_json(tmp_path: Path) -> None:
    recorded = record_days()
    day = date(2026, 3, 29)
    async with stored(tmp_path, recorded) as data:
        summary = await analytics_summary(data, day, WARSAW, BATTERY, "PLN")
        history = await read_site_history(
            data, *[datetime.combine(day + timedelta(days=d), datetime.min.time(), WARSAW) for d in (0, 1)]
        )
    decoded = json.loads(json.dumps(summary))
    assert decoded == summary
    assert decoded["day"] == "2026-03-29"
    assert decoded["voltage"]["status"] == "REAL"
    phase = decoded["voltage"]["phases"]["grid_v1"]
    assert phase["intervals"] == 23 * 6
    assert phase["events"] == {"over_10min": 0, "under_10min": 0, "over_trip": 0, "under_trip": 0}
    day_report = energy_report(history, BATTERY, WARSAW, "day", "PLN")
    assert day_report.total is not None
    assert decoded["energy"]["totals"]["cost_paid"] == round(day_report.total.cost_paid, 4)
    assert decoded["energy"]["status"] == "REAL"


def test_a_period_must_be_known() -> None:
    from controller.reports.energy import PricedHistory  # noqa: PLC0415

    empty = np.empty(0)
    history = PricedHistory(DataStatus.REAL, "", empty, *(empty,) * 8, np.empty(0, bool), None)
    with pytest.raises(ValueError, match="period must be one of day, week, month, got 'year'"):
        energy_report(history, BATTERY, WARSAW, "year")


async def test_the_month_bill_is_read_once_a_minute_for_every_reader_and_again_on_a_change(
    tmp_path: Path,
) -> None:
    recorded = record_days()
    clock = [datetime.fromtimestamp(float(recorded.times[-1]) + 600, WARSAW)]
    async with stored(tmp_path, recorded, clock=clock) as data:
        reader, source = MonthBillReader(), BillSource()
        first = await reader.read(data, WARSAW, source)
        assert first is not None
        assert first.import_kwh > 0
        clock[0] += timedelta(seconds=59)
        assert await reader.read(data, WARSAW, source) is first
        capacity = BillSource(SettlementConfig(scheme="be_flanders_capacity").build())
        with_capacity = await reader.read(data, WARSAW, capacity)
        assert with_capacity is not first
        assert with_capacity is not None
        assert with_capacity.peak_kw > 0
        clock[0] += timedelta(seconds=61)
        again = await reader.read(data, WARSAW, capacity)
        assert again is not with_capacity
        assert again == with_capacity
        clock[0] = datetime(2026, 4, 1, 0, 5, tzinfo=WARSAW)  # the next month has nothing recorded
        april = await reader.read(data, WARSAW, capacity)
        assert april is not None
        assert (april.month, april.import_kwh) == ("2026-04", 0.0)


async def test_the_years_export_before_this_month_is_the_settled_months_before(tmp_path: Path) -> None:
    recorded = record_days()
    clock = [datetime.fromtimestamp(float(recorded.times[-1]) + 600, WARSAW)]
    async with stored(tmp_path, recorded, clock=clock) as data:
        source = BillSource(SettlementConfig.model_validate({"period": "hour", "net": True}).build())
        march = await MonthBillReader().read(data, WARSAW, source)
        assert march is not None
        assert march.export_kwh > 0.1
        assert await exported_before_month(data, WARSAW, source) == 0.0  # nothing before March
        clock[0] = datetime(2026, 4, 1, 0, 5, tzinfo=WARSAW)
        assert await exported_before_month(data, WARSAW, source) == pytest.approx(march.export_kwh)
        clock[0] = datetime(2027, 1, 1, 0, 5, tzinfo=WARSAW)  # a new year: none of it before January
        assert await exported_before_month(data, WARSAW, source) == 0.0
