"""Forecasts from the past alone."""

from __future__ import annotations

import numpy as np
import pytest

from controller.forecast.history import forecast_load, forecast_pv

SPD = 24


def daily(days: int, shape: np.ndarray) -> np.ndarray:
    return np.tile(shape, days)


SUN = np.clip(np.sin((np.arange(SPD) - 6) / 12 * np.pi), 0, None) * 4000.0
HOUSE = 400.0 + 300.0 * (np.arange(SPD) >= 17)


def test_a_repeating_day_is_forecast_exactly() -> None:
    pv = daily(10, SUN)
    load = daily(10, HOUSE)
    assert np.allclose(forecast_pv(pv, 36, SPD), np.tile(SUN, 2)[:36])
    # The load follows the profile once the latest reading has faded.
    ahead = forecast_load(load, 36, SPD)
    assert np.allclose(ahead[12:], np.tile(HOUSE, 2)[12:36], rtol=1e-3)


def test_mid_day_forecast_starts_at_the_next_interval() -> None:
    pv = daily(10, SUN)[: 9 * SPD + 10]  # up to 10:00 on day 10
    assert np.allclose(forecast_pv(pv, 5, SPD), SUN[10:15])


def test_a_dull_morning_lowers_the_rest_of_today() -> None:
    pv = daily(10, SUN)
    today = SUN[:12] * 0.3
    history = np.concatenate([pv, today])
    ahead = forecast_pv(history, SPD, SPD)
    rest_of_today = slice(0, 12)
    assert np.all(ahead[rest_of_today] <= SUN[12:] + 1e-9)
    assert ahead[rest_of_today].sum() < 0.7 * SUN[12:].sum()
    # Tomorrow morning: 0.4 x "yesterday" (this dull morning) + 0.6 x the mean of the last 4 days.
    assert ahead[12:].sum() == pytest.approx((0.4 * 0.3 + 0.6 * (0.3 + 3) / 4) * SUN[:12].sum())


def test_a_clouded_over_hour_pulls_the_next_hours_down_then_fades() -> None:
    history = np.concatenate([daily(10, SUN), SUN[:9], [0.2 * SUN[9]]])  # up to 10:00 on day 11
    ahead = forecast_pv(history, SPD, SPD)
    # the next hour: this hour's share of the recent days' best at the same time, persisted
    assert ahead[0] == pytest.approx(0.2 * SUN[10])
    so_far = (SUN[:9].sum() + 0.2 * SUN[9]) / SUN[:10].sum()
    day_forecast = SUN[10:] * (0.6 * so_far + 0.4)
    assert abs(ahead[6] - day_forecast[6]) < 0.06 * day_forecast[6]  # five hours on: the day's forecast
    assert np.all(np.diff(ahead[:4] / day_forecast[:4]) > 0)
    assert np.allclose(ahead[14:23], SUN[:9])  # tomorrow up to 09:00 as the days before: no nowcast


def test_where_spells_do_not_last_tomorrow_leans_back_towards_the_site_normal() -> None:
    sky = np.resize([1.0, 0.2, 1.0, 1.0, 0.2, 0.2, 1.0], 28)  # the sky changes every day or two
    sky[-3:] = 0.2  # ... but the last three days were grey
    ahead = forecast_pv(np.concatenate([s * SUN for s in sky]), SPD, SPD)
    fixed_blend = 0.4 * 0.2 + 0.6 * sky[-4:].mean()  # what the days before would have said
    normal = sky[-21:].mean()
    assert (fixed_blend + normal) / 2 * SUN.sum() < ahead.sum() <= normal * SUN.sum() + 1e-6


def test_where_the_sky_drifts_yesterday_is_learned_as_the_best_guess() -> None:
    sky = 1.05 ** np.arange(28)  # each day brighter than the one before (spring)
    ahead = forecast_pv(np.concatenate([s * SUN for s in sky]), SPD, SPD)
    assert np.allclose(ahead, sky[-1] * SUN)


def test_the_latest_load_reading_pulls_the_next_hours() -> None:
    load = daily(10, HOUSE)
    load[-1] = 3000.0
    ahead = forecast_load(load, 12, SPD)
    assert ahead[0] > 1500.0
    assert ahead[11] == pytest.approx(HOUSE[11], rel=0.01)
    assert np.all(np.diff(ahead[:6]) < 0)


def test_a_day_run_above_the_profile_lifts_tomorrow_by_half_of_it() -> None:
    load = daily(11, HOUSE)
    load[-SPD:] += 600.0  # a cold day: the heating ran 600 W above the days before all day
    ahead = forecast_load(load, 36, SPD)
    # the median of the 10 days (one of them the cold day) is the profile; half the day's departure on top
    assert np.allclose(ahead[12:], np.tile(HOUSE, 2)[12:36] + 300.0, rtol=1e-3)
    median_alone = forecast_load(load, 36, SPD, shift_weight=0.0)
    assert np.allclose(median_alone[12:], np.tile(HOUSE, 2)[12:36], rtol=1e-3)


def test_a_few_hours_of_car_charging_do_not_shift_tomorrow() -> None:
    load = daily(11, HOUSE)
    load[-6:-2] += 7000.0  # four hours of a car charging last evening
    ahead = forecast_load(load, 36, SPD)
    assert np.allclose(ahead[12:], np.tile(HOUSE, 2)[12:36], rtol=1e-3)


def test_only_the_history_is_used() -> None:
    rng = np.random.default_rng(7)
    series = rng.uniform(0, 3000, 20 * SPD)
    for cut in (3 * SPD, 7 * SPD + 5, 15 * SPD + 13):
        past = series[:cut].copy()
        future_changed = series.copy()
        future_changed[cut:] = 0.0
        assert np.array_equal(forecast_pv(past, 30, SPD), forecast_pv(future_changed[:cut], 30, SPD))
        assert np.array_equal(forecast_load(past, 30, SPD), forecast_load(future_changed[:cut], 30, SPD))
        assert np.all(forecast_pv(past, 30, SPD) >= 0)


def test_bad_history() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        forecast_load(np.ones(5), 3, SPD)
    with pytest.raises(ValueError, match="not finite"):
        forecast_pv(np.full(SPD, np.nan), 3, SPD)
    with pytest.raises(ValueError, match="n_ahead"):
        forecast_pv(np.ones(SPD), -1, SPD)
