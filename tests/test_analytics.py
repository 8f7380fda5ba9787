"""Grid voltage analytics: events, EN 50160 weekly shares, profile, export/voltage fit, status; real data."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.analytics_fixtures import START, Injected, generate, stored
from support.shared import SHARED, needs_shared

from storage.analytics import voltage_report
from storage.records import DataStatus
from storage.voltage_stats import (
    EventKind,
    Sums,
    VoltageLimits,
    hourly_profile,
    local_calendar,
    ten_minute_means,
    weekly_quality,
)

VOLTAGE_CSV = SHARED / "data" / "voltage" / "uci_household_sceaux_1min_2006-12-16_2006-12-31.csv"
DAY = timedelta(days=1)
INJECTED = (
    # 10-min means above 253 V for 30 minutes; peak 10-min mean 257 V
    Injected("grid_v1", START + 2 * DAY + timedelta(hours=12), (255.0,) * 10 + (257.0,) * 10 + (256.0,) * 10),
    # across the boundary of the report's weekly reads (START + 7 days)
    Injected("grid_v3", START + 7 * DAY - timedelta(minutes=20), (254.0,) * 40),
    # two minutes above the 264.5 V trip: no 10-min mean above 253 V
    Injected("grid_v2", START + 3 * DAY + timedelta(hours=1, minutes=3), (266.0, 267.5)),
    # 10-min means below 207 V for 20 minutes, above the 195.5 V trip
    Injected("grid_v1", START + 5 * DAY + timedelta(hours=3, minutes=10), (200.0,) * 20),
    # one minute below the under-voltage trip
    Injected("grid_v2", START + 4 * DAY + timedelta(hours=10), (190.0,)),
)
EXPECTED = {
    (EventKind.OVER_10MIN, "grid_v1", START + 2 * DAY + timedelta(hours=12), 1800.0, 257.0),
    (EventKind.OVER_10MIN, "grid_v3", START + 7 * DAY - timedelta(minutes=20), 2400.0, 254.0),
    (EventKind.OVER_TRIP, "grid_v2", START + 3 * DAY + timedelta(hours=1, minutes=3), 120.0, 267.5),
    (EventKind.UNDER_10MIN, "grid_v1", START + 5 * DAY + timedelta(hours=3, minutes=10), 1200.0, 200.0),
    (EventKind.UNDER_TRIP, "grid_v2", START + 4 * DAY + timedelta(hours=10), 60.0, 190.0),
}


async def test_injected_events_are_found_with_their_start_duration_and_peak(tmp_path: Path) -> None:
    samples = generate(8, injected=INJECTED)
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, START, START + 8 * DAY)
    assert report.status is DataStatus.REAL, report.message
    assert report.resolution == "10min"
    assert report.phases == ("grid_v1", "grid_v2", "grid_v3")
    found = {(e.kind, e.phase, e.start, e.duration_s, e.peak_v) for e in report.events}
    assert len(report.events) == len(EXPECTED)
    assert found == EXPECTED
    assert report.summary()["grid_v2"]["events"] == {
        "over_10min": 0,
        "under_10min": 0,
        "over_trip": 1,
        "under_trip": 1,
    }

    # every event is critical here, each with what the house did meanwhile
    assert len(report.critical) == len(EXPECTED)
    over = next(
        c for c in report.critical if c.event.kind is EventKind.OVER_10MIN and c.event.phase == "grid_v1"
    )
    first = round((over.event.start - START).total_seconds() / 60)
    minutes = slice(first, first + 30)
    before = slice(first - 30, first)
    grid, pv, load = (samples.columns[n] for n in ("grid_w", "pv_w", "load_w"))
    assert over.export_w_mean == pytest.approx(float(-grid[minutes].mean()), rel=1e-9)
    assert over.export_w_max == pytest.approx(float(-grid[minutes].min()), rel=1e-9)
    assert over.pv_w_mean == pytest.approx(float(pv[minutes].mean()), rel=1e-9)
    assert over.pv_w_max == pytest.approx(float(pv[minutes].max()), rel=1e-9)
    assert over.load_w_mean == pytest.approx(float(load[minutes].mean()), rel=1e-9)
    assert over.export_w_mean_before == pytest.approx(float(-grid[before].mean()), rel=1e-9)


async def test_weekly_shares_count_the_10_minute_means_outside_the_band(tmp_path: Path) -> None:
    async with stored(tmp_path, generate(8, injected=INJECTED)) as data:
        report = await voltage_report(data, START, START + 8 * DAY)
    weeks = {(w.phase, w.week_start.isoformat()): w for w in report.weeks}
    v1 = weeks[("grid_v1", "2026-06-01")]
    assert v1.intervals == 7 * 144
    assert v1.share_in_band == pytest.approx((1008 - 3 - 2) / 1008)
    assert v1.share_above_floor == pytest.approx((1008 - 3) / 1008)  # all within +10 % / -15 %
    assert v1.max_v == pytest.approx(257.0)
    assert v1.min_v == pytest.approx(200.0)
    assert not v1.compliant  # 95 % within +/-10 % holds, "all within +10 % / -15 %" does not
    assert weeks[("grid_v2", "2026-06-01")].compliant
    v3_next = weeks[("grid_v3", "2026-06-08")]
    assert v3_next.intervals == 144
    assert v3_next.share_in_band == pytest.approx(142 / 144)
    assert weeks[("grid_v2", "2026-06-01")].share_in_band == 1.0
    assert report.intervals == {"grid_v1": 1152, "grid_v2": 1152, "grid_v3": 1152}


def test_a_week_with_too_many_high_means_is_not_compliant() -> None:
    limits = VoltageLimits()
    times = START.timestamp() + np.arange(1008, dtype=np.float64) * 600.0
    volts = np.full(1008, 240.0)
    volts[:60] = 254.0  # 6 % of the week above +10 %
    (week,) = weekly_quality("grid_v1", times, volts, UTC, limits)
    assert week.share_in_band == pytest.approx(948 / 1008)
    assert not week.compliant
    volts[:60] = 240.0
    volts[0] = 190.0  # one mean below -15 %: fails "all within +10 / -15 %"
    (week,) = weekly_quality("grid_v1", times, volts, UTC, limits)
    assert week.share_in_band == pytest.approx(1007 / 1008)
    assert week.share_above_floor == pytest.approx(1007 / 1008)
    assert not week.compliant


def test_the_hourly_profile_is_by_local_hour() -> None:
    times = START.timestamp() + np.arange(2 * 144, dtype=np.float64) * 600.0
    utc_hour = (times % 86400) // 3600
    volts = np.asarray(220.0 + utc_hour + (times % 3600) / 600, dtype=np.float64)  # 6 per hour: +0 .. +5
    profile = hourly_profile("grid_v1", times, volts, ZoneInfo("Europe/Warsaw"))  # UTC+2 in June
    assert [p.hour for p in profile] == list(range(24))
    for p in profile:
        base = 220.0 + (p.hour - 2) % 24
        assert p.intervals == 12
        assert p.mean_v == pytest.approx(base + 2.5)
        assert p.p5_v == pytest.approx(float(np.percentile(base + np.arange(6.0).repeat(2), 5)))
        assert p.p95_v == pytest.approx(float(np.percentile(base + np.arange(6.0).repeat(2), 95)))


def test_ten_minute_means_weight_minutes_by_their_samples() -> None:
    t0 = START.timestamp()
    times = t0 + np.array([0, 60, 120, 600, 660, 1500], dtype=float)
    mean = np.array([230.0, 232.0, np.nan, 240.0, 250.0, 235.0])
    count = np.array([6, 2, 0, 1, 3, 6], dtype=float)
    t10, v10, w10 = ten_minute_means(times, mean, count, 60)
    assert t10.tolist() == [t0, t0 + 600, t0 + 1200]
    assert v10.tolist() == pytest.approx([(230 * 6 + 232 * 2) / 8, (240 + 250 * 3) / 4, 235.0])
    assert w10.tolist() == [600.0] * 3
    coarse = ten_minute_means(times, mean, count, 900)
    assert coarse[1].size == 5  # 15-min means stand as they are


def test_line_sums_fed_in_chunks_match_one_least_squares_fit() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, 5000)
    y = 231.0 + 1.7 * x + rng.normal(0, 0.5, 5000)
    sums = Sums(0.0, 230.0)
    for part in np.array_split(np.arange(5000), 7):
        sums.add(x[part], y[part])
    fit = sums.fit()
    assert fit is not None
    slope, intercept = np.polyfit(x, y, 1)
    assert fit.slope == pytest.approx(slope, rel=1e-9)
    assert fit.intercept == pytest.approx(intercept, rel=1e-12)
    assert fit.r == pytest.approx(float(np.corrcoef(x, y)[0, 1]), rel=1e-9)
    residuals = y - (slope * x + intercept)
    assert fit.residual_sd == pytest.approx(float(np.sqrt(residuals @ residuals / 4998)), rel=1e-6)
    flat = Sums()
    flat.add(np.ones(100), y[:100])
    assert flat.fit() is None  # the power never varied: no slope


async def test_the_slope_and_impedance_are_recovered_when_the_background_follows_the_sun(
    tmp_path: Path,
) -> None:
    ohm = 0.35

    def neighbours(times: np.ndarray) -> np.ndarray:  # the street's own PV lifts the voltage by day
        hour = (times % 86400) / 3600
        return 3.0 * np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None)

    samples = generate(14, impedance_ohm=ohm, phases=("grid_v1",), background=neighbours, seed=5)
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, START, START + 14 * DAY)
    (fit,) = report.correlation
    mean_v = float(samples.columns["grid_v1"].mean())
    assert fit.phases_fed == 1
    assert fit.step is not None
    assert fit.step.slope == pytest.approx(ohm / mean_v * 1000, rel=0.05)
    assert fit.impedance_ohm == pytest.approx(ohm, rel=0.05)
    assert fit.level is not None
    assert fit.level.slope > fit.step.slope * 1.1  # the level fit also takes the neighbours' rise


async def test_the_level_fit_and_the_export_where_over_voltage_becomes_likely(tmp_path: Path) -> None:
    ohm = 1.2  # a weak grid: full export lifts the voltage by about 28 V
    samples = generate(7, impedance_ohm=ohm, phases=("grid_v1",), seed=9)
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, START, START + 7 * DAY, phases_fed=1)
    (fit,) = report.correlation
    mean_v = float(samples.columns["grid_v1"].mean())
    assert fit.level is not None
    assert fit.level.slope == pytest.approx(ohm / mean_v * 1000, rel=0.05)
    assert fit.level.intercept == pytest.approx(231.0, abs=0.3)
    assert fit.level.r > 0.95
    likely = fit.likely_over_voltage_export_kw
    assert likely is not None
    export_kw = -samples.columns["grid_w"] / 1000
    volts = samples.columns["grid_v1"]
    assert np.mean(volts[export_kw > likely + 0.5] > 253) > 0.95
    assert np.mean(volts[export_kw < likely - 0.5] > 253) < 0.01
    assert any(e.kind is EventKind.OVER_10MIN for e in report.events)
    worst = max(report.critical, key=lambda c: c.event.peak_v)
    assert worst.export_w_max is not None
    assert worst.export_w_max / 1000 > likely


async def test_a_gap_in_history_shows_as_partial(tmp_path: Path) -> None:
    samples = generate(2, phases=("grid_v1",))
    keep = np.ones(samples.times.size, dtype=bool)
    keep[600:780] = False  # three hours missing
    samples.times = samples.times[keep]
    samples.columns = {k: v[keep] for k, v in samples.columns.items()}
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, START, START + 2 * DAY)
    assert report.status is DataStatus.PARTIAL
    assert "completeness" in report.message
    assert report.intervals["grid_v1"] == 288 - 18


async def test_expired_minute_rollups_fall_back_to_15_minute_means(tmp_path: Path) -> None:
    samples = generate(8, injected=INJECTED[:1], phases=("grid_v1",))
    later = START + timedelta(days=200)  # beyond the 90 days of 1-min rollups
    async with stored(tmp_path, samples, now=later) as data:
        report = await voltage_report(data, START, START + 8 * DAY)
    assert report.status is DataStatus.FALLBACK
    assert report.resolution == "15min"
    assert "15-min" in report.message
    (event,) = [e for e in report.events if e.kind is EventKind.OVER_10MIN]
    assert (event.start, event.duration_s) == (INJECTED[0].start, 1800.0)


async def test_no_voltage_recorded_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    samples = generate(1, phases=())
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, START, START + DAY)
    assert report.status is DataStatus.ERROR
    assert "grid_v" in report.message


def test_limits_name_the_bad_value() -> None:
    with pytest.raises(ValueError, match="trip_over_v"):
        VoltageLimits(trip_over_v=220.0)
    with pytest.raises(ValueError, match="band_pct"):
        VoltageLimits(band_pct=-1.0)


# --- the real per-minute voltage of a French house ----------------------------------------------------


def read_uci() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    paris = ZoneInfo("Europe/Paris")
    times, volts, power = [], [], []
    with VOLTAGE_CSV.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if not row["voltage_v"]:
                continue
            local = datetime.fromisoformat(row["timestamp_local"]).replace(tzinfo=paris)
            times.append(local.timestamp())
            volts.append(float(row["voltage_v"]))
            power.append(float(row["global_active_power_kw"]) * 1000)
    return np.array(times), np.array(volts), np.array(power)


@needs_shared(VOLTAGE_CSV)
async def test_real_minute_voltage_of_a_french_house(tmp_path: Path) -> None:
    times, volts, power = read_uci()
    from support.analytics_fixtures import SiteSamples  # noqa: PLC0415

    samples = SiteSamples(times, {"grid_v1": volts, "grid_w": power, "load_w": power, "pv_w": 0 * power})
    start = datetime.fromtimestamp(times[0], UTC)
    end = datetime.fromtimestamp(times[-1] + 60, UTC)
    async with stored(tmp_path, samples) as data:
        report = await voltage_report(data, start, end, ZoneInfo("Europe/Paris"))

    # the 10-min means, computed independently from the file
    windows = np.floor(times / 600) * 600
    keys, inverse = np.unique(windows, return_inverse=True)
    expected = np.bincount(inverse, volts) / np.bincount(inverse)
    assert report.intervals["grid_v1"] == keys.size
    assert report.status in (DataStatus.REAL, DataStatus.PARTIAL)
    # this slice stays within 228.2..251.7 V: no event, every week within EN 50160
    assert report.events == []
    summary = report.summary()["grid_v1"]
    assert summary["max_v"] == pytest.approx(float(expected.max()), abs=0.005)
    assert summary["min_v"] == pytest.approx(float(expected.min()), abs=0.005)
    assert float(expected.max()) <= 251.7
    assert all(w.compliant and w.share_in_band == 1.0 for w in report.weeks)
    assert sum(w.intervals for w in report.weeks) == keys.size
    profile = {p.hour: p for p in report.profile}
    assert sorted(profile) == list(range(24))
    paris_hour = np.array([datetime.fromtimestamp(k, ZoneInfo("Europe/Paris")).hour for k in keys])
    for hour in (3, 19):
        assert profile[hour].mean_v == pytest.approx(float(expected[paris_hour == hour].mean()), rel=1e-9)
    # a house that only imports: more load, lower voltage (the slope on "export" is positive)
    (fit,) = report.correlation
    assert fit.level is not None
    assert fit.level.slope > 0
    assert fit.max_export_kw < 0
    assert fit.impedance_ohm is not None
    assert 0.05 < fit.impedance_ohm < 1.0  # a plausible low-voltage loop impedance


@pytest.mark.parametrize(
    "zone", ["Europe/Warsaw", "America/St_Johns", "Australia/Lord_Howe", "Asia/Kathmandu"]
)
def test_local_hours_and_days_agree_with_the_zone_database(zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = np.random.default_rng(7)
    lo, hi = datetime(2025, 1, 1, tzinfo=UTC).timestamp(), datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    times = np.sort(np.floor(rng.uniform(lo, hi, 5_000) / 60) * 60)
    times = np.concatenate([times, lo + np.arange(0, 366 * 86400, 900.0)])  # every quarter-hour, DST days too
    hours, days = local_calendar(times, tz)
    local = [datetime.fromtimestamp(t, tz) for t in times.tolist()]
    assert hours.tolist() == [d.hour for d in local]
    assert days.tolist() == [d.date().toordinal() for d in local]
