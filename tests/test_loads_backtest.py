"""Backtests with flexible loads (controller.sim.loads_backtest, ``hemsd backtest --loads``)
against the loads at their defaults and the joint optimum (support.loads_reference)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.loads_reference import joint_optimum, on_off_overshoot
from test_backtest import make_scenario

from controller.control.loads import LoadSwitcher
from controller.physics import BatteryParams
from controller.sim.forecasts import Forecasts
from controller.sim.loads_backtest import _plan, _Site, baselines, joint, load_spec, spec_beside
from controller.sim.scenario import ScenarioError, load_scenario
from controller.sim.settings import NO_LIMITS, PlannerSettings

SPEC = """
[[loads]]
name = "boiler"
type = "water_heater"
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 120
earliest_start = "19:00"
latest_end = "07:00"
default_start = "19:00"
"""
TZ = ZoneInfo("Europe/Berlin")


def write_spec(scenario_csv: Path, text: str = SPEC) -> Path:
    path = spec_beside(scenario_csv)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_spec_names_its_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "x.loads.toml"
    path.write_text('[[loads]]\nname = "b"\ntype = "water_heater"\nmin_c = 99\n', encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"x\.loads\.toml: loads\.0\.water_heater\.min_c"):
        load_spec(path)
    path.write_text("draw_spread = 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match="loads: Field required"):
        load_spec(path)


def test_the_joint_plan_beats_the_defaults_and_comes_near_the_optimum(tmp_path: Path) -> None:
    csv = make_scenario(tmp_path, days=4)
    spec = load_spec(write_spec(csv))
    scenario = load_scenario(csv)
    params = BatteryParams()
    strategies, loads = baselines(scenario, spec, params, 50.0, TZ)
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.1)
    hemsd, hemsd_loads = joint(scenario, spec, params, 50.0, settings, NO_LIMITS, tz=TZ)
    optimum = joint_optimum(scenario, spec, params, 50.0, TZ)
    base = strategies["self_consumption"].cost
    assert optimum.cost <= hemsd.cost + 1e-6
    share = (base - hemsd.cost) / (base - optimum.cost)
    assert share >= 0.85, share
    # the same runs, the same comfort
    assert hemsd_loads["dishwasher"].energy_kwh == pytest.approx(
        loads["self_consumption"]["dishwasher"].energy_kwh
    )
    assert optimum.load_kwh["dishwasher"] == pytest.approx(hemsd_loads["dishwasher"].energy_kwh)
    lowest = hemsd_loads["boiler"].lowest_c
    assert lowest is not None
    assert lowest >= 45.0 - 0.5
    assert hemsd_loads["boiler"].cost < loads["self_consumption"]["boiler"].cost
    assert len(hemsd_loads["dishwasher"].runs) == 3  # the windows that lie within the four days
    # each interval's power and temperature, as the optimum's steps, add up to the totals
    for name, totals in hemsd_loads.items():
        assert totals.power_w is not None
        assert totals.power_w.sum() * scenario.step_h / 1000.0 == pytest.approx(totals.energy_kwh)
        assert optimum.steps[name].sum() == pytest.approx(optimum.load_kwh[name])
    boiler_c = hemsd_loads["boiler"].temp_c
    assert boiler_c is not None
    assert boiler_c.size == len(scenario)
    assert boiler_c.min() >= lowest - 1e-9
    assert optimum.steps["boiler_c"].min() >= 45.0 - 1e-6
    # run by an on/off element in its pieces, the optimum's heat loses more: a dearer reference
    over = on_off_overshoot(scenario, spec, optimum, TZ)
    assert 0.0 < over < 0.05 * (base - optimum.cost)


def test_hemsd_backtest_takes_the_spec_beside_the_scenario(tmp_path: Path) -> None:
    csv = make_scenario(tmp_path, days=2)

    def backtest(*extra: str) -> dict[str, object]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "controller.cli",
                "backtest",
                str(csv),
                "--json",
                "--soc-step-pct",
                "2",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        result: dict[str, object] = json.loads(out.stdout)
        return result

    without = backtest()
    write_spec(csv)
    with_loads = backtest()
    strategies = with_loads["strategies"]
    assert isinstance(strategies, dict)
    assert set(strategies) == {"no_battery", "self_consumption", "hemsd"}
    assert set(strategies["hemsd"]["loads"]) == {"boiler", "dishwasher"}
    assert strategies["hemsd"]["loads"]["dishwasher"]["runs"]
    assert costs(backtest("--no-loads")) == costs(without)  # without loads, the backtest as it was


def costs(result: dict[str, object]) -> dict[str, dict[str, float]]:
    """Each strategy's figures but its solve times."""
    strategies = result["strategies"]
    assert isinstance(strategies, dict)
    return {n: {k: v for k, v in t.items() if not k.startswith("solve_ms")} for n, t in strategies.items()}


METERED = """
[loads.switch]
power_topic = "tele/{name}/SENSOR"
"""


def metered(spec: str) -> str:
    """``spec`` with a power reading for each load (each ``[[loads]]`` table gets its switch)."""
    parts = spec.split("[[loads]]")
    out = [parts[0]]
    for part in parts[1:]:
        name = part.split('name = "')[1].split('"')[0]
        out.append(part.rstrip("\n") + "\n" + METERED.format(name=name))
    return "[[loads]]".join(out)


@pytest.mark.parametrize("forecast", ["realistic", "perfect"])
def test_the_load_forecast_sees_the_house_without_the_loads(tmp_path: Path, forecast: str) -> None:
    csv = make_scenario(tmp_path, days=3)
    scenario = load_scenario(csv)
    params = BatteryParams()
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.2, forecast=forecast)
    # metered loads: what they drew is taken out of the house as measured exactly
    seen = scenario.load_w.copy()
    _, drawn = joint(
        scenario, load_spec(write_spec(csv, metered(SPEC))), params, 50.0, settings, NO_LIMITS,
        tz=TZ, seen_w=seen,
    )  # fmt: skip
    assert drawn["boiler"].energy_kwh > 5.0
    assert drawn["dishwasher"].energy_kwh > 5.0
    assert seen == pytest.approx(scenario.load_w, abs=1e-6)
    # unmetered: a tank switched on counts at its element's power, more than it drew once full
    seen = scenario.load_w.copy()
    joint(scenario, load_spec(write_spec(csv)), params, 50.0, settings, NO_LIMITS, tz=TZ, seen_w=seen)
    assert (seen <= scenario.load_w + 1e-6).all()
    assert (seen >= 0.0).all()
    if forecast == "realistic":  # its first day on the thermostat, which stops within an interval
        assert (seen < scenario.load_w - 1.0).any()


WASHER = """
[[loads]]
name = "washer"
type = "appliance"
power_w = 2000
duration_min = 120
interruptible = true
min_on_min = 60
min_off_min = 60
earliest_start = "00:00"
latest_end = "06:00"
default_start = "00:00"
"""


def test_the_backtest_switches_the_loads_as_the_daemon_does(tmp_path: Path) -> None:
    """An interruptible run planned in two pieces runs in those pieces (not as one stretch from
    its first), as the daemon's switcher runs it: cheap power at 01:00 and 04:00 only."""
    start = datetime(2024, 3, 3, 23, tzinfo=UTC)  # midnight in Berlin
    lines = ["time,import_price,export_price,pv_w,load_w"]
    for i in range(2 * 24):
        t = start + timedelta(hours=i)
        price = 0.05 if t.astimezone(TZ).hour in (1, 4) else 0.6
        lines.append(f"{t:%Y-%m-%dT%H:%M:%SZ},{price},0.02,0,400")
    csv = tmp_path / "washer.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = load_spec(write_spec(csv, WASHER))
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.1)
    _, loads = joint(load_scenario(csv), spec, BatteryParams(), 50.0, settings, NO_LIMITS, tz=TZ)
    washer = loads["washer"]
    assert washer.runs[:2] == (
        ("2024-03-04T01:00:00+01:00", "2024-03-04T02:00:00+01:00"),
        ("2024-03-04T04:00:00+01:00", "2024-03-04T05:00:00+01:00"),
    )
    assert washer.energy_kwh == pytest.approx(8.0)  # two days' runs, whole
    for first, last in washer.runs:  # every piece in a cheap hour, none longer
        begin = datetime.fromisoformat(first)
        assert begin.hour in (1, 4)
        assert datetime.fromisoformat(last) - begin == timedelta(hours=1)


PUMP = """
[[loads]]
name = "heat_pump"
type = "heat_pump"
electric_w = 2500
cop = 3.0
capacity_kwh_per_k = 8.0
heat_demand_w = [2400, 2400, 2300, 2200, 2000, 1800, 1600, 1400, 1300, 1200, 1200, 1200, 1200, 1300, 1400, 1500, 1700, 1900, 2100, 2200, 2300, 2300, 2400, 2400]
"""


def test_the_backtest_switches_at_the_moments_a_reading_by_reading_daemon_does(tmp_path: Path) -> None:
    """Ticked only where an output can change (a minute's mark, the first reading after a store's
    planned share, the end of a minimum time), the switching is that of the daemon ticked on every
    reading (10 s): the same energy, cost and temperatures; ticked every minute it is not (a share,
    or a piece of it, that starts or ends between two minutes is switched at the next minute)."""
    csv = make_scenario(tmp_path, days=2)
    spec = load_spec(write_spec(csv, SPEC + PUMP))
    scenario = load_scenario(csv)
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.2)

    def run(tick: timedelta | None) -> tuple[float, dict[str, tuple[float, float | None]]]:
        totals, loads = joint(scenario, spec, BatteryParams(), 50.0, settings, NO_LIMITS, tz=TZ, tick=tick)
        return totals.cost, {n: (t.energy_kwh, t.lowest_c) for n, t in loads.items()}

    moments = run(None)
    cost, loads = run(timedelta(seconds=10))
    assert moments[0] == pytest.approx(cost, abs=1e-9)
    for name, (kwh, lowest) in loads.items():
        assert moments[1][name][0] == pytest.approx(kwh, abs=1e-9)
        assert moments[1][name][1] == pytest.approx(lowest, abs=1e-9)
    by_minute = run(timedelta(minutes=1))
    assert abs(by_minute[1]["boiler"][0] - loads["boiler"][0]) > 0.002


def test_planned_every_15_minutes_an_hourly_backtest_plans_again_within_each_hour(tmp_path: Path) -> None:
    """As the daemon plans every 15 minutes: on an hourly scenario three more plans within each
    hour, each made from where the stores then are, its first slot cut to what is left of the
    hour; the hot water and heat departing from their profiles, the stores stay warm enough."""
    csv = make_scenario(tmp_path, days=1)
    text = "draw_spread = 0.3\nseed = 5\n" + SPEC.replace("[[loads]]", "[[loads]]\ndraw_spread = 0.3", 1)
    spec = load_spec(write_spec(csv, text))
    scenario = load_scenario(csv)
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.2)
    hourly, _ = joint(scenario, spec, BatteryParams(), 50.0, settings, NO_LIMITS, 1.0, tz=TZ)
    quarter, loads = joint(scenario, spec, BatteryParams(), 50.0, settings, NO_LIMITS, 0.25, tz=TZ)
    assert len(hourly.solve_ms) == 24
    assert len(quarter.solve_ms) == 4 * 24
    lowest = loads["boiler"].lowest_c
    assert lowest is not None
    assert lowest >= 45.0 - 1e-6


def test_a_plan_made_within_an_interval_starts_from_then_with_its_first_slot_cut(tmp_path: Path) -> None:
    csv = make_scenario(tmp_path, days=2)
    spec = load_spec(write_spec(csv))
    scenario = load_scenario(csv)
    params = BatteryParams()
    settings = PlannerSettings(planner="recourse", soc_step_kwh=0.2)
    site = _Site(scenario, spec, TZ)
    site.temp["boiler"] = 47.5  # where the tank is 20 minutes into the interval
    forecasts = Forecasts(scenario, params, settings)
    plan = _plan(site, forecasts, params, NO_LIMITS, settings, 5.0, 10, TZ, 1 / 3)
    first = plan.plan.slots[0]
    assert first.start == scenario.time(10) + timedelta(minutes=20)
    assert first.end == scenario.time(11)
    assert plan.plan.slots[1].start == scenario.time(11)
    assert plan.plan.created_at == first.start
    boiler = next(s for s in plan.loads if s.name == "boiler")
    assert boiler.temperature_c[0] == pytest.approx(47.5)
    whole = _plan(site, forecasts, params, NO_LIMITS, settings, 5.0, 10, TZ)
    assert whole.plan.slots[0].start == scenario.time(10)


def test_a_heat_pump_left_normal_runs_on_its_own_thermostat_not_the_planned_power(tmp_path: Path) -> None:
    """SG-Ready ``normal`` leaves the pump to its thermostat (setpoint 21, hysteresis 0.5): below
    20.5 degC it heats at its full power on to 21 whatever the plan expected of it, within the
    band only while it was heating; ``block`` keeps it off, ``boost`` heats on to max_c. The
    daemon records it as commanded: its rated power below the band, within it what holds it."""
    csv = make_scenario(tmp_path, days=1)
    spec = load_spec(write_spec(csv, PUMP))
    site = _Site(load_scenario(csv), spec, TZ)
    load = LoadSwitcher(spec.loads, TZ).loads["heat_pump"]
    start, hour = site.starts[3], timedelta(hours=1)

    def run(output: str, temp: float, heating: bool = False) -> tuple[float, float]:
        site.temp["heat_pump"], site.heating["heat_pump"] = temp, heating
        load.output = output
        drew, recorded = site.device(3, load, start, start + hour, TZ)
        return sum(drew), sum(recorded)

    drew, recorded = run("normal", 20.2)
    assert drew == pytest.approx(2.5)  # its full power all hour, whatever the plan expected
    assert 0.0 < recorded < drew  # within its band the daemon cannot tell it runs on
    assert site.temp["heat_pump"] > 20.8
    assert site.heating["heat_pump"]
    drew, _ = run("normal", site.temp["heat_pump"], heating=True)  # on to 21, then off in its band
    assert 0.0 < drew < 2.5
    assert 20.5 < site.temp["heat_pump"] < 21.0
    assert not site.heating["heat_pump"]
    drew, recorded = run("normal", 20.8)  # within its band, not heating: the house cools
    assert drew == 0.0
    assert recorded > 0.0  # recorded as what holds it in its band
    assert site.temp["heat_pump"] < 20.8
    drew, recorded = run("block", 20.2)
    assert (drew, recorded) == (0.0, 0.0)
    assert site.lowest["heat_pump"] < 20.2
    drew, recorded = run("boost", 20.2)
    assert drew == pytest.approx(2.5)  # its full power all hour: 7.5 kWh of heat, on to max_c
    assert recorded == pytest.approx(2.5)
