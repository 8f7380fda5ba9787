"""``[[loads]]`` and ``[settlement]`` at their edges: ``hemsd check-config`` (and ``hemsd run``,
which reads the file the same way before anything starts) refuses each with exit 78 and one line
naming the key and the value, rather than a daemon that starts and fails later."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main

HEAD = '[site]\nid = "home"\ntimezone = "Europe/Warsaw"\n[mqtt]\nhost = "127.0.0.1"\n'
RUN = '[[loads]]\nname = "{name}"\ntype = "appliance"\npower_w = 1000\nduration_min = 60\n'


def appliance(name: str, switch: str = "") -> str:
    return RUN.format(name=name) + (f"[loads.switch]\n{switch}\n" if switch else "")


CASES = [
    # a load's topics that are hemsd's own, or another load's
    (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "hemsd/home/mode/set"'),
        "loads.pool.switch.command_topic: 'hemsd/home/mode/set' is under hemsd's own 'hemsd/home'",
    ),
    (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "hemsd/home/load/pool_enabled/set"'),
        "loads.pool.switch.command_topic: 'hemsd/home/load/pool_enabled/set' is under hemsd's own",
    ),
    (
        appliance("pool", 'power_topic = "homeassistant/sensor/x/state"'),
        "loads.pool.switch.power_topic: 'homeassistant/sensor/x/state' is under hemsd's own 'homeassistant'",
    ),
    (
        '[[loads]]\nname = "boiler"\ntype = "water_heater"\ntemperature_topic = "hemsd/home/snapshot"\n',
        "loads.boiler.temperature_topic: 'hemsd/home/snapshot' is under hemsd's own 'hemsd/home'",
    ),
    (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "cmnd/x/POWER"')
        + appliance("pump", 'via = "mqtt"\ncommand_topic = "cmnd/x/POWER"'),
        "loads.pump.switch.command_topic: 'cmnd/x/POWER' already switches 'pool'",
    ),
    (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "x/POWER"\npower_topic = "x/POWER"'),
        "loads.pool: 'x/POWER' is read as a reading and is 'pool''s command_topic",
    ),
    (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "cmnd/x/POWER"')
        + '[[loads]]\nname = "boiler"\ntype = "water_heater"\ntemperature_topic = "cmnd/x/POWER"\n',
        "loads.boiler: 'cmnd/x/POWER' is read as a reading and is 'pool''s command_topic",
    ),
    (
        appliance("pool", 'power_topic = "tele/x/SENSOR"')
        + appliance("pump", 'power_topic = "tele/x/SENSOR"'),
        "loads.pump.switch.power_topic: 'tele/x/SENSOR' already measures 'pool'",
    ),
    # what held before: each named with its value
    (appliance("pool") + appliance("pool"), "loads: the name 'pool' is used twice"),
    (
        RUN.format(name="pool").replace("1000", "0"),
        "loads.0.appliance.power_w: Input should be greater than 0 (got 0)",
    ),
    (RUN.format(name="pool").replace("1000", "-1"), "power_w: Input should be greater than 0 (got -1)"),
    (
        RUN.format(name="pool").replace("1000", "nan"),
        "power_w: Input should be less than or equal to 50000 (got nan)",
    ),
    (
        RUN.format(name="pool").replace("1000", "1e308"),
        "power_w: Input should be less than or equal to 50000",
    ),
    (
        '[[loads]]\nname = "boiler"\ntype = "water_heater"\nmin_c = 70\nmax_c = 70\n',
        "min_c (70.0) must be below max_c (70.0)",
    ),
    (
        '[[loads]]\nname = "boiler"\ntype = "water_heater"\nvolume_l = inf\n',
        "loads.0.water_heater.volume_l: Input should be less than or equal to 5000 (got inf)",
    ),
    (
        '[[loads]]\nname = "hp"\ntype = "heat_pump"\nmin_c = 23\nmax_c = 21\n',
        "setpoint_c: 21.0 - hysteresis_k 0.5 must stay within min_c 23.0 and max_c 21.0",
    ),
    ('[[loads]]\nname = "car"\ntype = "car"\n', "loads.0: Input tag 'car' found using 'type'"),
    (
        RUN.format(name="pool") + 'earliest_start = "23:30"\nlatest_end = "00:00"\n',
        "latest_end: the run (60 min) does not fit between 23:30 and 00:00",
    ),
    ('[settlement]\nscheme = "nl_salderen"\n', "settlement.scheme: Input should be 'per_slot'"),
    ("[settlement.capacity]\nminimum_kw = 2.5\n", "settlement.capacity needs price_per_kw_month"),
    (
        '[settlement]\nscheme = "be_flanders_capacity"\n[settlement.capacity]\nprevious_peaks_kw = [nan]\n',
        "settlement.capacity.previous_peaks_kw.0: Input should be less than or equal to 10000 (got nan)",
    ),
    (
        "[settlement.export]\nyearly_cap_kwh = -1\n",
        "settlement.export.yearly_cap_kwh: Input should be greater",
    ),
    ('[settlement.grid_fees]\noperator = "nope"\nyear = 2025\n', "no time-variable grid fees for nope/2025"),
    (
        '[[settlement.standing]]\nname = "meter"\nper_month = inf\n',
        "per_month: Input should be a finite number",
    ),
]


@pytest.mark.parametrize(("body", "said"), CASES)
def test_a_bad_load_or_settlement_is_refused_naming_key_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, said: str
) -> None:
    path = tmp_path / "hemsd.toml"
    path.write_text(HEAD + f'[storage]\nstate_dir = "{tmp_path / "state"}"\n' + body)
    assert main(["check-config", str(path)]) == 78
    err = capsys.readouterr().err
    assert said in err, err
    assert "Traceback" not in err
    assert main(["run", "--config", str(path)]) == 78  # the daemon refuses to start, the same way
    assert said in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # nothing was started


def test_loads_on_their_own_topics_are_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hemsd.toml"
    body = (
        appliance("pool", 'via = "mqtt"\ncommand_topic = "cmnd/pool/POWER"\npower_topic = "tele/x/SENSOR"')
        + appliance("pump", 'power_topic = "tele/x/SENSOR"\npower_json_path = "ENERGY.Power"')
        + '[[loads]]\nname = "boiler"\ntype = "water_heater"\ntemperature_topic = "tele/x/SENSOR"\n'
        + 'temperature_json_path = "DS18B20.Temperature"\n'
    )
    path.write_text(HEAD + body)
    assert main(["check-config", str(path)]) == 0, capsys.readouterr().err
