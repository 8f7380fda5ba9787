"""Today's energy and money from stored history, and the savings total across days and restarts."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.reports.accounting import SAVINGS_KEY, DayAccount, SavingsLedger, TodayAccount, day_account
from drivers.days import day_window
from storage.datamanager import DataManager, StorageOptions
from storage.records import price_point

TZ = ZoneInfo("Europe/Warsaw")
MAX_GAP_S = 60.0
STEP_S = 10.0
UNPRICED_QUARTER = 5  # no price stored for this quarter-hour of each day


@dataclass
class Clock:
    now: datetime


def import_price(quarter: int) -> float:
    return 0.4 + 0.05 * (quarter % 5)


def export_price(quarter: int) -> float:
    return 0.1 + 0.02 * (quarter % 3)


@dataclass(frozen=True)
class Samples:
    times: np.ndarray
    columns: dict[str, np.ndarray]


def make_samples(start: datetime, hours: float, seed: int, gap: tuple[float, float] | None = None) -> Samples:
    """Samples every STEP_S seconds with imports, exports, charging and discharging; NaN inside ``gap`` (h)."""
    rng = np.random.default_rng(seed)
    offsets = np.arange(STEP_S, hours * 3600.0 + 1, STEP_S)
    times = start.timestamp() + offsets
    pv = np.clip(rng.normal(1500, 1200, times.size), 0, None)
    load = rng.uniform(200, 2500, times.size)
    battery = rng.uniform(-3000, 3000, times.size)
    grid = load - pv - battery
    columns = {"pv_w": pv, "load_w": load, "battery_w": battery, "grid_w": grid}
    if gap is not None:
        inside = (offsets >= gap[0] * 3600) & (offsets < gap[1] * 3600)
        for values in columns.values():
            values[inside] = np.nan
    return Samples(times, columns)


def expected(samples: Samples, day_start: datetime) -> dict[str, float]:
    """The account computed straight from the samples (energy per sample, netting per minute)."""
    present = np.isfinite(samples.columns["grid_w"])
    t = samples.times[present]
    dt = np.clip(np.diff(t, prepend=t[0]), 0, MAX_GAP_S)
    wh = {name: values[present] * dt / 3600.0 for name, values in samples.columns.items()}
    quarter = ((np.floor(t / 60) * 60 - day_start.timestamp()) // 900).astype(int)
    priced = quarter != UNPRICED_QUARTER
    ip = np.array([import_price(q) for q in quarter])
    ep = np.array([export_price(q) for q in quarter])
    grid_in, grid_out = np.maximum(wh["grid_w"], 0), np.maximum(-wh["grid_w"], 0)
    out = {
        "import_kwh": grid_in.sum() / 1000,
        "export_kwh": grid_out.sum() / 1000,
        "discharge_kwh": np.maximum(wh["battery_w"], 0).sum() / 1000,
        "charge_kwh": np.maximum(-wh["battery_w"], 0).sum() / 1000,
        "pv_kwh": wh["pv_w"].sum() / 1000,
        "load_kwh": wh["load_w"].sum() / 1000,
        "import_cost": (grid_in * ip)[priced].sum() / 1000,
        "export_revenue": (grid_out * ep)[priced].sum() / 1000,
    }
    baseline = 0.0
    minutes = np.floor(t / 60)
    for minute in np.unique(minutes[priced]):
        rows = (minutes == minute) & priced
        house = wh["load_w"][rows].sum() - wh["pv_w"][rows].sum()
        q = int(quarter[rows][0])
        baseline += max(house, 0) * import_price(q) - max(-house, 0) * export_price(q)
    out["baseline_cost"] = baseline / 1000
    return {key: float(value) for key, value in out.items()}


@pytest.fixture
async def clock_and_data(tmp_path: Path) -> AsyncIterator[tuple[Clock, DataManager]]:
    clock = Clock(datetime(2026, 5, 4, 3, 0, tzinfo=TZ))
    options = StorageOptions(state_dir=tmp_path / "state", max_gap_s=MAX_GAP_S, sample_interval_s=STEP_S)
    async with DataManager(options, now=lambda: clock.now) as data:
        yield clock, data


async def store_day(data: DataManager, day: date, samples: Samples) -> None:
    start, end = day_window(day, TZ)
    quarters = int((end - start) / timedelta(minutes=15))
    await data.record_points(
        price_point(start + timedelta(minutes=15 * q), import_price(q), export_price(q), "home", "inverter")
        for q in range(quarters)
        if q != UNPRICED_QUARTER
    )
    await data.flush()
    await data.ingest(samples.times, samples.columns, max_gap_s=MAX_GAP_S)


async def test_the_day_account_matches_the_samples(clock_and_data: tuple[Clock, DataManager]) -> None:
    _clock, data = clock_and_data
    day = date(2026, 5, 4)
    day_start = day_window(day, TZ)[0]
    samples = make_samples(day_start, hours=2.5, seed=7, gap=(1.0, 1.3))
    await store_day(data, day, samples)

    result = await day_account(data, day, TZ)
    assert result is not None
    want = expected(samples, day_start)
    for key, value in want.items():
        assert getattr(result, key) == pytest.approx(value, rel=1e-9, abs=1e-9), key
    assert result.net_cost == pytest.approx(want["import_cost"] - want["export_revenue"])
    assert result.savings == pytest.approx(want["baseline_cost"] - result.net_cost)
    assert result.import_kwh > 0
    assert result.export_kwh > 0
    assert result.charge_kwh > 0


def same(a: DayAccount, b: DayAccount) -> bool:
    return a.day == b.day and all(
        getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9, abs=1e-9)
        for name in ("import_kwh", "export_kwh", "pv_kwh", "load_kwh", "charge_kwh", "discharge_kwh",
                     "import_cost", "export_revenue", "baseline_cost")
    )  # fmt: skip


async def test_today_read_incrementally_equals_the_whole_read(
    clock_and_data: tuple[Clock, DataManager],
) -> None:
    clock, data = clock_and_data
    day = date(2026, 5, 4)
    day_start = day_window(day, TZ)[0]
    samples = make_samples(day_start, hours=2.9, seed=3)
    await store_day(data, day, samples)
    today = TodayAccount(data, TZ)
    for minutes in (7, 8, 61, 62, 95, 131, 171):  # inside and across price slots, settled and recent minutes
        clock.now = day_start + timedelta(minutes=minutes, seconds=25)
        incremental, whole = await today.read(), await day_account(data, day, TZ)
        assert incremental is not None
        assert whole is not None
        assert same(incremental, whole), minutes
    clock.now = day_start + timedelta(days=1, minutes=3)  # the next day starts from zero
    tomorrow = await today.read()
    assert tomorrow is not None
    assert (tomorrow.day, tomorrow.import_kwh) == (day + timedelta(days=1), 0.0)


async def test_a_day_that_has_not_started_is_empty(clock_and_data: tuple[Clock, DataManager]) -> None:
    _, data = clock_and_data
    result = await day_account(data, date(2026, 5, 5), TZ)
    assert result is not None
    assert (result.import_kwh, result.net_cost, result.savings) == (0.0, 0.0, 0.0)


async def test_the_savings_total_counts_each_day_once_across_restarts(
    clock_and_data: tuple[Clock, DataManager],
) -> None:
    clock, data = clock_and_data
    days = [date(2026, 5, 2), date(2026, 5, 3), date(2026, 5, 4)]
    for i, day in enumerate(days):
        await store_day(data, day, make_samples(day_window(day, TZ)[0], hours=2.0, seed=i))

    clock.now = datetime(2026, 5, 2, 1, 0, tzinfo=TZ)  # installed during the first day
    ledger = SavingsLedger(data, TZ)
    first = await day_account(data, days[0], TZ)
    assert first is not None
    assert await ledger.total(first) == pytest.approx(first.savings)
    assert await data.get_state(SAVINGS_KEY) == {"day": "2026-05-02", "before": 0.0}

    clock.now = datetime(2026, 5, 4, 3, 0, tzinfo=TZ)  # two days later (the daemon was down in between)
    whole = [await day_account(data, day, TZ) for day in days]
    assert all(a is not None for a in whole)
    savings = [a.savings for a in whole if a is not None]
    assert not math.isclose(savings[0], first.savings)  # the first day was not over at the first look
    today = whole[2]
    assert today is not None
    total = await ledger.total(today)
    assert total == pytest.approx(sum(savings))
    assert await ledger.total(today) == pytest.approx(total)  # asking again adds nothing

    restarted = SavingsLedger(data, TZ)
    assert await restarted.total(today) == pytest.approx(total)
    state = await data.get_state(SAVINGS_KEY)
    assert isinstance(state, dict)
    assert state["day"] == "2026-05-04"
    assert state["before"] == pytest.approx(savings[0] + savings[1])
