"""``hemsd analytics`` and ``hemsd simulate`` on a real database in a temporary state directory."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from support.analytics_fixtures import Injected, generate

from controller.cli import analytics as analytics_cli
from controller.cli import simulate as simulate_cli
from controller.cli import storage as storage_cli
from controller.sim.scenario import load_scenario
from storage.datamanager import DataManager, StorageOptions
from storage.records import price_point

DAYS = 5
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 1)
EVENT = Injected("grid_v1", START + timedelta(days=2, hours=12), (256.0,) * 20)


def run(*argv: str) -> int:
    command = argv[0]
    parser = argparse.ArgumentParser(prog=f"hemsd {command}")
    module = simulate_cli if command == "simulate" else analytics_cli
    module.configure_parser(parser)
    return module.run_command(parser.parse_args(argv[1:]))


async def fill(state_dir: Path) -> None:
    samples = generate(DAYS, impedance_ohm=0.3, injected=(EVENT,), start=START)
    minutes = samples.times.size
    samples.columns["battery_w"] = np.zeros(minutes)
    samples.columns["soc_pct"] = np.full(minutes, 60.0)
    async with DataManager(StorageOptions(state_dir, sample_interval_s=60.0)) as data:
        await data.record_points(
            price_point(
                START + timedelta(minutes=15 * q), 0.8 + 0.4 * (q % 96 >= 68), 0.1, "home", "inverter"
            )
            for q in range(DAYS * 96)
        )
        await data.flush()
        await data.ingest(samples.times, samples.columns, max_gap_s=120.0)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    asyncio.run(fill(root / "state"))
    config = root / "hemsd.toml"
    config.write_text(
        f'[site]\ntimezone = "UTC"\ncurrency = "PLN"\n\n[storage]\nstate_dir = "{root / "state"}"\n\n'
        "[battery]\ncapacity_kwh = 10.0\nmin_soc_pct = 15.0\n\n[daemon]\npoll_interval_s = 60\n",
        encoding="utf-8",
    )
    return config


def window() -> tuple[str, str, str, str]:
    return (
        "--since",
        START.date().isoformat(),
        "--until",
        (START + timedelta(days=DAYS - 1)).date().isoformat(),
    )


def test_voltage_json_and_table(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("analytics", "voltage", "--config", str(site), *window(), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "REAL"
    assert report["phases"] == ["grid_v1", "grid_v2", "grid_v3"]
    (event,) = report["events"]
    assert (event["kind"], event["start"], event["duration_s"]) == (
        "over_10min",
        EVENT.start.isoformat(),
        1200.0,
    )
    assert run("analytics", "voltage", "--config", str(site), *window()) == 0
    text = capsys.readouterr().out
    assert "Grid voltage" in text
    assert "REAL" in text
    assert "Export against voltage" in text
    assert "compliant" in text


def test_events_list_the_critical_ones_with_context(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("analytics", "events", "--config", str(site), *window()) == 0
    text = capsys.readouterr().out
    assert "1 event(s)" in text
    assert f"over_10min  grid_v1 {EVENT.start:%Y-%m-%d %H:%M}" in text
    assert run("analytics", "events", "--config", str(site), *window(), "--json", "--critical", "1") == 0
    (critical,) = json.loads(capsys.readouterr().out)["critical"]
    assert critical["export_w_mean"] > 0


def test_energy_per_week(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("analytics", "energy", "--config", str(site), *window(), "--period", "week", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "REAL"
    assert report["currency"] == "PLN"
    assert report["battery"]["capacity_kwh"] == 10.0
    assert report["total"]["intervals"] == DAYS * 96
    assert report["total"]["missing"] == 0
    assert report["total"]["cost_no_battery"] > report["total"]["cost_self_consumption"]
    assert run("analytics", "energy", "--config", str(site), *window()) == 0
    text = capsys.readouterr().out
    assert START.date().isoformat() in text
    assert "saved b." in text


def test_energy_of_a_new_site_starts_at_its_first_data(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --since the default 30 days shrink to the days since the first data, with how much there is."""
    assert run("analytics", "energy", "--config", str(site)) == 0
    text = capsys.readouterr().out
    print(text)
    assert f"Energy (PLN) {START.date().isoformat()} .." in text
    assert "recorded: 120.0 h of" in text
    assert f"the first at {START:%Y-%m-%d %H:%M}" in text
    rows = [line for line in text.splitlines() if line[:4].isdigit() and line[7:8] == "-"]
    assert len(rows) == DAYS + 2  # the days with data, the empty one after them and today
    assert "the bill by month, as settled under per_slot (PLN):" in text


def test_quality_per_day_and_field(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("analytics", "quality", "--config", str(site), *window(), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["days"]) == DAYS
    assert {q["field"] for q in out["fields"]} >= {"grid_v1", "pv_w", "load_w", "grid_w"}
    first = [q for q in out["fields"] if q["day"] == START.date().isoformat() and q["field"] == "grid_v1"]
    assert first[0]["completeness"] == pytest.approx(1.0, abs=0.002)


def test_simulate_sizes_over_the_stored_history(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = (
        "simulate",
        "--config",
        str(site),
        *window(),
        "--capacity",
        "0:10:5",
        "--battery-cost-per-kwh",
        "2000",
    )
    assert run(*argv, "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["strategy"] == "self_consumption"
    assert result["covered_days"] == pytest.approx(DAYS)
    assert [v["capacity_kwh"] for v in result["variants"]] == [0.0, 5.0, 10.0]
    assert result["reference"]["variant"] == "10 kWh 5 kW"
    assert result["variants"][2]["annual_saving"] == 0.0
    assert result["variants"][0]["annual_saving"] < 0
    assert run(*argv, "--tariff", "0.9/0.1", "--tariff", "recorded", "--strategy", "planner") == 0
    text = capsys.readouterr().out
    assert "strategy planner" in text
    assert "5 kWh 5 kW, tariff 0.9/0.1" in text


def test_simulate_a_scenario_without_a_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "tiny_eur.csv"
    rows = ["time,import_price,export_price,pv_w,load_w"]
    for h in range(96):
        t = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=h)
        pv = max(0.0, 4000 * np.sin((h % 24 - 6) / 12 * np.pi))
        rows.append(f"{t:%Y-%m-%dT%H:%M:%SZ},0.30,0.05,{pv:.1f},600")
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    missing = tmp_path / "absent.toml"
    assert (
        run("simulate", "--config", str(missing), "--scenario", str(csv), "--capacity", "0,10", "--json") == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["currency"] == "EUR"
    assert result["intervals"] == 96
    assert result["variants"][0]["annual_cost"] > result["variants"][1]["annual_cost"]
    # local days of the market's zone (Berlin for EUR): 2026-06-02 00:00 +02:00 is hour 22 of the file
    days = ("--since", "2026-06-02", "--until", "2026-06-03")
    assert run("simulate", "--config", str(missing), "--scenario", str(csv), *days, "--json") == 0
    assert json.loads(capsys.readouterr().out)["intervals"] == 48
    later = ("--since", "2027-01-01", "--until", "2027-01-05")
    assert run("simulate", "--config", str(missing), "--scenario", str(csv), *later) == 1
    assert "holds no days from 2027-01-01" in capsys.readouterr().err


def test_mistakes_are_reported(site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("analytics", "voltage", "--config", str(site), "--state-dir", str(tmp_path / "none")) == 1
    assert "no database" in capsys.readouterr().err
    assert (
        run("analytics", "energy", "--config", str(site), "--since", "2026-05-02", "--until", "2026-05-01")
        == 1
    )
    assert "--since 2026-05-02 is after --until 2026-05-01" in capsys.readouterr().err
    assert run("analytics", "voltage", "--config", str(tmp_path / "absent.toml")) == 78
    with pytest.raises(SystemExit):
        run("simulate", "--config", str(site), "--capacity", "0:x:1")
    assert "expected a list like 5,10,15 or a range like 0:20:1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run("simulate", "--config", str(site), "--tariff", "G12:peak=1")
    assert "needs a price for each of peak, offpeak" in capsys.readouterr().err


def test_the_history_becomes_a_scenario_with_a_service_forecast(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Home Assistant export of a forecast sensor is imported as pv_forecast_w, and the stored
    history is written as a scenario CSV that hemsd backtest reads with that column."""
    state = tmp_path / "state"
    shutil.copytree(site.parent / "state", state)
    config = tmp_path / "hemsd.toml"
    config.write_text(
        site.read_text(encoding="utf-8").replace(str(site.parent / "state"), str(state)), encoding="utf-8"
    )
    export = tmp_path / "history.csv"
    rows = ["entity_id,state,last_changed"]
    for q in range(DAYS * 96):
        t = START + timedelta(minutes=15 * q)
        rows.append(f"sensor.solcast_pv_forecast,{1.5 + (q % 96) / 96:.3f},{t.isoformat()}")
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="hemsd import")
    storage_cli.configure_parser(parser)
    args = parser.parse_args(
        [
            "ha-csv",
            str(export),
            "--map",
            "sensor.solcast_pv_forecast=pv_forecast_w*1000",
            "--config",
            str(config),
        ]
    )
    assert storage_cli.run_command(args) == 0
    capsys.readouterr()

    wrong = tmp_path / "site.csv"
    assert run("analytics", "scenario", "--config", str(config), *window(), "--out", str(wrong)) == 1
    assert "must end with the site's currency, e.g. site_pln.csv" in capsys.readouterr().err
    out = tmp_path / "site_pln.csv"
    assert run("analytics", "scenario", "--config", str(config), *window(), "--out", str(out)) == 0
    printed = capsys.readouterr().out
    print(printed)
    assert "forecast columns pv_forecast_w" in printed
    scenario = load_scenario(out)
    assert len(scenario) == DAYS * 96
    assert scenario.currency == "PLN"
    assert scenario.pv_forecast_w is not None
    assert scenario.load_forecast_w is None
    assert scenario.pv_forecast_w[0] == pytest.approx(1500.0, rel=0.01)
    assert float(np.nanmax(scenario.pv_forecast_w)) == pytest.approx(2490.0, rel=0.01)
    assert scenario.import_price[0] == pytest.approx(0.8)
