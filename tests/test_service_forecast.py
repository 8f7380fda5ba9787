"""A forecast service's columns in a scenario: read, validated and blended in realistic backtests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.scenario import ScenarioError, load_scenario
from controller.sim.service_forecast import ServiceForecast
from controller.sim.settings import PlannerSettings

DAYS = 21
START = datetime(2025, 5, 5, tzinfo=UTC)


def write(path: Path, forecast: str = "exact") -> Path:
    """Hourly days whose PV varies from day to day (clouds), with the service's forecast columns."""
    rng = np.random.default_rng(7)
    clearness = rng.uniform(0.15, 1.0, DAYS)
    lines = ["time,import_price,export_price,pv_w,load_w,pv_forecast_w,load_forecast_w"]
    for i in range(DAYS * 24):
        hour, day = i % 24, i // 24
        pv = max(0.0, np.sin((hour - 6) / 12 * np.pi)) * 6000.0 * clearness[day]
        load = 400.0 + 1800.0 * (17 <= hour < 21)
        spot = 0.08 + 0.14 * (17 <= hour < 21) - 0.05 * (11 <= hour < 15)
        t = (START + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        pv_forecast = "" if forecast == "gaps" and hour == 12 else f"{pv:.1f}"
        lines.append(f"{t},{spot + 0.25:.4f},{spot:.4f},{pv:.1f},{load:.1f},{pv_forecast},{load:.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_the_columns_are_read_with_empty_cells_as_unknown(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path / "house_eur.csv", forecast="gaps"))
    assert scenario.pv_forecast_w is not None
    assert scenario.load_forecast_w is not None
    assert np.isnan(scenario.pv_forecast_w[12])
    assert np.isfinite(scenario.pv_forecast_w[13])
    part = scenario.slice(24, 48)
    assert part.pv_forecast_w is not None
    assert np.isnan(part.pv_forecast_w[12])
    assert ServiceForecast.present(scenario)


def test_a_negative_forecast_names_the_row_and_column(tmp_path: Path) -> None:
    path = write(tmp_path / "house_eur.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    fields = lines[5].split(",")
    fields[5] = "-3"
    lines[5] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"row 6, column pv_forecast_w: must be >= 0"):
        load_scenario(path)


def test_a_good_service_forecast_earns_its_weight_and_saves_money(tmp_path: Path) -> None:
    """The service knows each day's clouds; the history forecast does not: once the blend has
    learned that (a week), the realistic backtest gets closer to perfect foresight."""
    scenario = load_scenario(write(tmp_path / "house_eur.csv"))
    without = replace(scenario, pv_forecast_w=None, load_forecast_w=None)
    params = BatteryParams(capacity_kwh=8.0)
    settings = PlannerSettings(forecast="realistic", planner="deterministic")
    with_service = backtest.hemsd(scenario, params, 50.0, settings=settings)
    own_only = backtest.hemsd(without, params, 50.0, settings=settings)
    perfect = backtest.hemsd(scenario, params, 50.0)
    print(
        f"perfect {perfect.cost:.3f}, with the service {with_service.cost:.3f}, history alone {own_only.cost:.3f}"
    )
    assert with_service.cost < own_only.cost
    assert perfect.cost <= with_service.cost + 1e-9

    blend = ServiceForecast(scenario)
    flat = np.zeros(48)
    pv, _ = blend.blend(15 * 24, 15 * 24 + 48, flat, flat)  # day 15: two weeks scored
    assert pv[:24] == pytest.approx(scenario.pv_w[15 * 24 : 16 * 24])  # weight 1: the service alone
