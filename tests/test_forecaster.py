"""The forecaster without a weather source: the clear-sky model and its azimuths, the load's day
type, the blend weights, and the day-ahead accuracy record kept across a restart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from support.forecaster_fixtures import SettableClock, data_manager, quarters, record_quarters, utc

from controller.config.models import ForecastConfig, PvArrayConfig
from controller.forecast.accuracy import DayAccuracy, DayAhead, score_day
from controller.forecast.combine import (
    BLEND_WEIGHTS,
    MODEL_PRIOR_WEIGHT,
    WEIGHT_MIN_DAYS,
    ComponentErrors,
    MeasuredHistory,
    blend_errors,
    day_type_offset_w,
    grid_local_seconds,
    local_seconds,
    model_weight,
)
from controller.forecast.pv_model import api_plane, calibration_factor, clear_sky_pv_w
from controller.forecast.service import Forecaster

WARSAW = ZoneInfo("Europe/Warsaw")
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("compass", "api"), [(180.0, 0.0), (90.0, -90.0), (270.0, 90.0), (0.0, -180.0), (225.0, 45.0)]
)
def test_config_azimuths_become_the_apis_south_based_ones(compass: float, api: float) -> None:
    plane = api_plane(PvArrayConfig(kwp=1.0, tilt_deg=30.0, azimuth_deg=compass))
    assert (plane.tilt_deg, plane.azimuth_deg) == (30.0, api)


def test_clear_sky_east_array_peaks_before_a_west_array() -> None:
    times = [datetime(2026, 6, 20, tzinfo=UTC) + timedelta(minutes=15 * k + 7.5) for k in range(96)]

    def peak_hour(azimuth: float) -> float:
        array = PvArrayConfig(kwp=5.0, tilt_deg=40.0, azimuth_deg=azimuth)
        power = clear_sky_pv_w([array], 52.23, 21.01, times)
        return times[int(np.argmax(power))].hour + times[int(np.argmax(power))].minute / 60

    solar_noon_utc = 12.0 - 21.01 / 15.0  # about 10:36 UTC in Warsaw
    assert peak_hour(90.0) < solar_noon_utc - 1.5
    assert peak_hour(270.0) > solar_noon_utc + 1.5
    assert abs(peak_hour(180.0) - solar_noon_utc) < 0.5
    east, west = (PvArrayConfig(kwp=5.0, tilt_deg=40.0, azimuth_deg=a) for a in (90.0, 270.0))
    both = clear_sky_pv_w([east, west], 52.23, 21.01, times)
    assert both == pytest.approx(
        clear_sky_pv_w([east], 52.23, 21.01, times) + clear_sky_pv_w([west], 52.23, 21.01, times)
    )


def test_calibration_needs_enough_daylight_and_is_clipped() -> None:
    forecast = np.array([0.0, 1000.0, 4000.0, 1000.0, 0.0] * 4)
    assert calibration_factor(0.9 * forecast, forecast, kwp=5.0, step_h=1.0) == pytest.approx(0.9)
    assert calibration_factor(3.0 * forecast, forecast, kwp=5.0, step_h=1.0) == 1.5
    assert calibration_factor(0.9 * forecast, forecast, kwp=50.0, step_h=1.0) is None  # 24 kWh < 2 h x 50 kW
    gaps = 0.9 * forecast
    gaps[::2] = np.nan  # unmeasured intervals do not count
    assert calibration_factor(gaps, forecast, kwp=1.0, step_h=1.0) == pytest.approx(0.9)


def test_weekend_load_comes_from_weekends() -> None:
    # four weeks from Monday 2026-05-04 (a UTC midnight): 300 W on workdays, 800 W on weekends
    start = datetime(2026, 5, 4, tzinfo=UTC)
    days = 28
    load = np.array([800.0 if (start + HOUR * h).astimezone(WARSAW).weekday() >= 5 else 300.0
                     for h in range(24 * days)])  # fmt: skip
    history = MeasuredHistory(start, HOUR, np.zeros(load.size), load)
    saturday = [datetime(2026, 6, 6, 12, tzinfo=WARSAW)]
    monday = [datetime(2026, 6, 8, 12, tzinfo=WARSAW)]
    # weekend median 800, median of all days 300: the day type adds 500 W on a Saturday
    assert day_type_offset_w(history, saturday, WARSAW)[0] == pytest.approx(500.0)
    assert day_type_offset_w(history, monday, WARSAW)[0] == pytest.approx(0.0)


def test_blend_weight_follows_the_better_part_after_enough_days() -> None:
    model, past, measured = np.array([100.0, 500.0]), np.array([300.0, 100.0]), np.array([110.0, 480.0])
    errors = blend_errors(model, past, measured)
    assert errors[0] == pytest.approx(np.mean(np.abs(past - measured)))
    assert errors[-1] == pytest.approx(np.mean(np.abs(model - measured)))
    day = ComponentErrors("weather", errors)
    assert model_weight("weather", [day] * (WEIGHT_MIN_DAYS - 1)) == MODEL_PRIOR_WEIGHT["weather"]
    assert model_weight("weather", [day] * WEIGHT_MIN_DAYS) == BLEND_WEIGHTS[int(np.argmin(errors))]
    assert model_weight("clear_sky", [day] * WEIGHT_MIN_DAYS) == MODEL_PRIOR_WEIGHT["clear_sky"]


def test_score_day_against_measurements() -> None:
    start = datetime(2026, 6, 20, tzinfo=UTC)
    pv, load = np.array([0.0, 200.0, 400.0, 0.0]), np.array([300.0, 300.0, 500.0, 700.0])
    ahead = DayAhead(date(2026, 6, 20), start, 6 * HOUR, pv, load, pv, pv, "clear_sky")
    measured_pv, measured_load = np.array([0.0, 300.0, 200.0, 0.0]), np.array([400.0, 300.0, 500.0, 500.0])
    record = score_day(ahead, measured_pv, measured_load, measured_pv, np.array([400.0, 300.0, 500.0, 900.0]))
    assert record is not None
    assert (record.pv_mae_w, record.load_mae_w) == (75.0, 75.0)
    assert (record.pv_naive_mae_w, record.load_naive_mae_w) == (0.0, 100.0)
    assert (record.pv_kwh, record.pv_forecast_kwh) == (3.0, 3.6)  # 500 W and 600 W over 6 h slots
    again = DayAccuracy.from_json(record.to_json())
    assert (again.day, again.pv_mae_w, again.load_naive_mae_w) == (record.day, 75.0, 100.0)
    assert again.blend_mae_w == pytest.approx(record.blend_mae_w, abs=1e-3)
    assert DayAhead.from_json(ahead.to_json()).pv_w.tolist() == pv.tolist()
    measured_pv[1] = np.nan  # 75 % measured: not scored
    assert score_day(ahead, measured_pv, measured_load) is None


async def test_accuracy_record_is_kept_and_survives_a_restart(tmp_path: Path) -> None:
    config = ForecastConfig(history_days=3)
    clock = SettableClock(datetime(2026, 6, 19, 20, tzinfo=WARSAW).astimezone(UTC))
    tomorrow = datetime(2026, 6, 20, tzinfo=WARSAW).astimezone(UTC)
    async with data_manager(tmp_path, clock) as data:
        forecaster = Forecaster(config, data, WARSAW)
        kept = await forecaster.forecast(*quarters(clock.now, 96 + 16))  # covers all of 2026-06-20
        assert kept.source == "model"
        offset = (tomorrow - clock.now) // timedelta(minutes=15)
        pv_ahead, load_ahead = (
            np.array(kept.pv_w[offset : offset + 96]),
            np.array(kept.load_w[offset : offset + 96]),
        )
        # a later forecast that no longer covers the whole day does not replace the kept one
        clock.now += timedelta(hours=1)
        await forecaster.forecast(*quarters(clock.now, 8))

        def measured_pv(quarter: datetime) -> float:
            return 1500.0 if 4 <= quarter.hour < 16 else 0.0

        await record_quarters(data, utc(6, 19), utc(6, 21, 0, 30), measured_pv, 650.0)
        clock.now = utc(6, 21, 0, 30)
        after = await forecaster.forecast(*quarters(clock.now, 8))
        events = await data.events(kinds=["forecast.accuracy"])
    assert after.accuracy is not None
    record = after.accuracy.last
    assert record is not None
    assert record.day == date(2026, 6, 20)
    times = [tomorrow + timedelta(minutes=15 * k) for k in range(96)]
    expected_pv = np.mean(np.abs(pv_ahead - np.array([measured_pv(t) for t in times])))
    assert record.pv_mae_w == pytest.approx(expected_pv, abs=0.1)
    assert record.load_mae_w == pytest.approx(np.mean(np.abs(load_ahead - 650.0)), abs=0.1)
    assert record.pv_naive_mae_w == pytest.approx(0.0, abs=1e-6)  # yesterday was the same
    assert len(events) == 1
    assert "2026-06-20" in events[0].message
    async with data_manager(tmp_path, clock) as data:
        restarted = Forecaster(config, data, WARSAW)
        await restarted.forecast(*quarters(clock.now, 4))
        health = restarted.health()
    (kept_record,) = restarted.records
    assert kept_record.day == record.day
    assert kept_record.pv_mae_w == pytest.approx(record.pv_mae_w, abs=1e-3)
    assert health["accuracy"]["last_day"] == "2026-06-20"  # type: ignore[index,call-overload]
    assert health["accuracy"]["pv_mae_w"] == pytest.approx(record.pv_mae_w, abs=0.1)  # type: ignore[index,call-overload]


@pytest.mark.parametrize("first_day", [datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 10, 15, tzinfo=UTC)])
def test_local_wall_times_of_the_history_across_a_clock_change(first_day: datetime) -> None:
    size = 96 * 20  # 20 days of quarter hours, over the spring or the autumn change
    history = MeasuredHistory(first_day, timedelta(minutes=15), np.zeros(size), np.zeros(size))
    by_zone_lookup = local_seconds(history.times(), WARSAW)
    assert grid_local_seconds(history, WARSAW).tolist() == by_zone_lookup.tolist()
    wall = [datetime.fromtimestamp(int(s), UTC).replace(tzinfo=None) for s in by_zone_lookup[:200:50]]
    assert wall == [t.astimezone(WARSAW).replace(tzinfo=None) for t in history.times()[:200:50]]


async def test_the_load_forecast_of_a_site_with_loads_is_the_rest_of_the_house(tmp_path: Path) -> None:
    # three days measured: the house 400 W, and a water heater metered with it at 3 kW 02:00-04:00
    config = ForecastConfig(history_days=3)
    clock = SettableClock(utc(6, 22))
    minutes = np.arange(utc(6, 19).timestamp(), utc(6, 22).timestamp(), 60.0)
    hours = (minutes % 86400) / 3600
    heater = np.where((hours >= 2) & (hours < 4), 3000.0, 0.0)
    columns = {"pv_w": np.zeros(minutes.size), "load_w": 400.0 + heater, "flex_loads_w": heater}
    async with data_manager(tmp_path, clock) as data:
        await data.ingest(minutes, columns)
        starts, ends = quarters(clock.now, 96)
        as_measured = np.array((await Forecaster(config, data, WARSAW).forecast(starts, ends)).load_w)
        rest = np.array(
            (await Forecaster(config, data, WARSAW, net_of_loads=True).forecast(starts, ends)).load_w
        )
    night = slice(8, 16)  # 02:00-04:00 UTC
    assert as_measured[night].min() > 2000.0  # counted again on top of the planned runs
    assert rest == pytest.approx(np.full(96, 400.0), abs=1.0)
