"""Backtest strategies, price visibility and the ``backtest`` command on small generated scenarios."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from controller.cli import backtest as backtest_cli
from controller.forecast.combine import MeasuredHistory, history_load_w
from controller.forecast.history import forecast_load
from controller.physics import BatteryParams
from controller.sim import backtest
from controller.sim.baselines import no_battery, self_consumption
from controller.sim.forecasts import HISTORY_DAYS, Forecasts, published_stop
from controller.sim.scenario import Scenario, load_scenario
from controller.sim.settings import PlannerSettings

DAYS = 4


def make_scenario(tmp_path: Path, days: int = DAYS, name: str = "site_eur.csv") -> Path:
    """A house with PV, an evening peak and cheap nights, hourly, starting at midnight UTC."""
    hours = np.arange(days * 24)
    hod = hours % 24
    pv = np.clip(np.sin((hod - 6) / 12 * np.pi), 0, None) * 5000.0 * (1 - 0.4 * ((hours // 24) % 2))
    load = 400.0 + 1500.0 * ((hod >= 17) & (hod < 21)) + 300.0 * ((hod >= 6) & (hod < 9))
    spot = 0.08 + 0.12 * ((hod >= 17) & (hod < 21)) - 0.05 * ((hod >= 11) & (hod < 15))
    start = datetime(2024, 3, 4, tzinfo=UTC)
    lines = ["time,import_price,export_price,pv_w,load_w"]
    for i in range(days * 24):
        t = (start + timedelta(hours=int(i))).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{t},{(spot[i] + 0.2) * 1.19:.5f},{spot[i]:.5f},{pv[i]:.1f},{load[i]:.1f}")
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    return load_scenario(make_scenario(tmp_path))


def test_no_battery_is_the_house_as_is(scenario: Scenario) -> None:
    totals = no_battery(scenario)
    grid = (scenario.load_w - scenario.pv_w) / 1000.0
    expected = float(np.sum(np.where(grid > 0, grid * scenario.import_price, grid * scenario.export_price)))
    assert totals.cost == pytest.approx(expected)
    assert totals.import_kwh - totals.export_kwh == pytest.approx(float(grid.sum()))
    assert totals.cycles == 0.0


def test_strategies_rank_as_expected(scenario: Scenario) -> None:
    params = BatteryParams()
    none = no_battery(scenario)
    own = self_consumption(scenario, params, 50.0)
    planned = backtest.hemsd(scenario, params, 50.0)
    assert own.cost < none.cost
    assert planned.cost < own.cost
    assert own.cycles > 0.5
    assert len(planned.solve_ms) == len(scenario)
    # Self-consumption never imports for the battery: it imports at most the house's deficit.
    deficit = np.maximum(scenario.load_w - scenario.pv_w, 0).sum() / 1000.0
    assert own.import_kwh <= deficit + 1e-9


def test_realistic_mode_plans_from_the_past(scenario: Scenario) -> None:
    params = BatteryParams()
    realistic = backtest.hemsd(scenario, params, 50.0, settings=PlannerSettings(forecast="realistic"))
    perfect = backtest.hemsd(scenario, params, 50.0)
    assert len(realistic.solve_ms) == len(scenario) - 24  # the first day runs self-use
    assert perfect.cost <= realistic.cost + 1e-9
    assert realistic.cost < no_battery(scenario).cost


def test_realistic_load_forecast_is_the_daemons(tmp_path: Path) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    base = load_scenario(make_scenario(tmp_path, days=40))  # 4 March - 13 April 2024: DST on 31 March
    weekend = np.array([base.time(i).astimezone(berlin).weekday() >= 5 for i in range(len(base))])
    s = replace(base, load_w=base.load_w + 600.0 * weekend)
    forecasts = Forecasts(s, BatteryParams(), PlannerSettings(forecast="realistic"))
    # the first day, before the DST change, a Friday evening, past the daemon's 28 days of history
    for i in (30, 24 * 11 + 17, 24 * 25 + 3, 24 * 39 + 14):
        stop = int(forecasts.stops[i])
        day = s.time(i).replace(hour=0)
        first = max(day - timedelta(days=HISTORY_DAYS), s.start)
        k = (first - s.start) // s.step
        history = MeasuredHistory(first, s.step, s.pv_w[k:i], s.load_w[k:i])
        daemon = history_load_w(history, [s.time(j) for j in range(i, stop)], berlin)
        seen = forecasts.horizon(i)[0].load_w
        assert np.array_equal(seen, daemon)
        if i == 24 * 11 + 17:  # Friday 15 March 17:00 UTC: Saturday's load is forecast above the median's
            saturday = slice(24 - 17 + 8, 24 - 17 + 20)
            assert (seen[saturday] > forecast_load(s.load_w[:i], stop - i, 24)[saturday] + 100.0).all()


def test_day_ahead_prices_appear_at_13_local(scenario: Scenario) -> None:
    stops = published_stop(scenario, ZoneInfo("Europe/Berlin"))
    # 2024-03-04 is CET (UTC+1): 12:00 local = 11:00 UTC sees to the end of the day (23:00 UTC).
    assert stops[11] == 23
    assert stops[12] == 23 + 24  # 13:00 local: tomorrow's prices are out
    assert stops[len(scenario) - 1] == len(scenario)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hemsd backtest")
    backtest_cli.configure_parser(parser)
    return backtest_cli.run_command(parser.parse_args(argv))


def test_command_prints_the_json_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_scenario(tmp_path)
    assert run([str(path), "--json", "--battery-kwh", "8", "--charge-kw", "3", "--min-soc", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"currency", "intervals", "strategies"}
    assert out["currency"] == "EUR"
    assert out["intervals"] == DAYS * 24
    assert set(out["strategies"]) == {"no_battery", "self_consumption", "yesterday_dp", "hemsd"}
    assert set(out["strategies"]["hemsd"]) == {
        "cost",
        "import_kwh",
        "export_kwh",
        "cycles",
        "solve_ms_median",
        "solve_ms_p95",
    }
    assert set(out["strategies"]["no_battery"]) == {"cost", "import_kwh", "export_kwh", "cycles"}
    expected = backtest.run_backtest(
        load_scenario(path), BatteryParams(capacity_kwh=8, max_charge_w=3000, min_soc_pct=5), 50.0
    )
    assert out["strategies"]["hemsd"]["cost"] == pytest.approx(expected.strategies["hemsd"].cost, abs=1e-4)


def test_command_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(make_scenario(tmp_path)), "--forecast", "realistic", "--horizon-hours", "24"]) == 0
    out = capsys.readouterr().out
    assert "realistic forecasts, 24 h horizon" in out
    for name in ("no_battery", "self_consumption", "yesterday_dp", "hemsd", "planner solve time"):
        assert name in out


def test_the_yesterday_baseline_plans_on_the_day_before(scenario: Scenario) -> None:
    """A plain DP fed "same time yesterday" with the realistic prices: self-use on the first day,
    then no better than perfect foresight and better than no battery on this regular house."""
    params = BatteryParams(capacity_kwh=10.0)
    perfect = backtest.hemsd(scenario, params, 50.0)
    yesterday = backtest.hemsd(
        scenario, params, 50.0, settings=PlannerSettings(forecast="yesterday", margin_fraction=0.0)
    )
    none = no_battery(scenario)
    print(f"perfect {perfect.cost:.3f}, yesterday {yesterday.cost:.3f}, no battery {none.cost:.3f}")
    assert perfect.cost <= yesterday.cost + 1e-9
    assert yesterday.cost < none.cost
    assert yesterday.trace is not None
    assert set(yesterday.trace.actions[: scenario.steps_per_day]) == {"self_use"}


def test_command_reads_the_battery_section_of_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_scenario(tmp_path)
    config = tmp_path / "hemsd.toml"
    config.write_text(
        "[battery]\ncapacity_kwh = 5.0\nmax_charge_w = 2500.0\n[site]\nid = 'x'\n", encoding="utf-8"
    )
    assert run([str(path), "--config", str(config), "--json", "--discharge-kw", "2"]) == 0
    got = json.loads(capsys.readouterr().out)["strategies"]["hemsd"]["cost"]
    params = BatteryParams(capacity_kwh=5.0, max_charge_w=2500.0, max_discharge_w=2000.0)
    assert got == pytest.approx(
        backtest.run_backtest(load_scenario(path), params, 50.0).strategies["hemsd"].cost, abs=1e-4
    )
    config.write_text("[battery]\ncapacity = 5.0\n", encoding="utf-8")
    assert run([str(path), "--config", str(config)]) == backtest_cli.EXIT_CONFIG
    assert "unknown key(s) in [battery]: capacity" in capsys.readouterr().err


def test_command_rejects_bad_input_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_scenario(tmp_path)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[7] = lines[7].replace(",", ",oops,", 1).replace(",oops,", ",oops", 1)
    bad = tmp_path / "bad_eur.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run([str(bad)]) == backtest_cli.EXIT_DATA
    err = capsys.readouterr().err
    assert "row 8, column import_price: not a number" in err
    assert "Traceback" not in err
    assert run([str(path), "--min-soc", "120"]) == backtest_cli.EXIT_CONFIG
    assert "battery.min_soc_pct out of range" in capsys.readouterr().err
    assert run([str(path), "--initial-soc", "5"]) == backtest_cli.EXIT_CONFIG
    assert "--initial-soc 5.0 outside the SoC window" in capsys.readouterr().err
    assert run([str(path), "--soc-step-pct", "0"]) == backtest_cli.EXIT_CONFIG
    assert "--soc-step-pct 0.0 must be > 0 and <= 10" in capsys.readouterr().err
    assert (
        run([str(path), "--forecast", "realistic", "--timezone", "Mars/Olympus"]) == backtest_cli.EXIT_CONFIG
    )


def test_command_plans_on_the_soc_step_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make_scenario(tmp_path)
    assert run([str(path), "--json", "--soc-step-pct", "5"]) == 0
    printed = json.loads(capsys.readouterr().out)["strategies"]["hemsd"]["cost"]
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.5)
    expected = backtest.hemsd(load_scenario(path), BatteryParams(), 50.0, settings=settings)
    assert printed == pytest.approx(expected.cost, abs=1e-4)
    default = backtest.hemsd(
        load_scenario(path), BatteryParams(), 50.0, settings=replace(settings, soc_step_kwh=None)
    )
    assert default.cost != pytest.approx(expected.cost, abs=1e-4)  # the step reached the planner
