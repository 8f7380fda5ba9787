"""``hemsd load`` and ``hemsd goal`` tried as a careless user would: every bad argument refused
naming the option (or the command's field) and the value, exit 2, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main

LOADS = """
[mqtt]
host = "localhost"
[[loads]]
name = "dishwasher"
type = "appliance"
power_w = 2000
duration_min = 90
earliest_start = "19:00"
latest_end = "07:00"
[[loads]]
name = "boiler"
type = "water_heater"
"""
CASES = [
    ("load goal boiler --by 06:00 --temperature nan", "argument --temperature: not a finite number: 'nan'"),
    ("load goal boiler --by 06:00 --temperature inf", "argument --temperature: not a finite number: 'inf'"),
    ("load goal boiler --by 06:00 --temperature hot", "argument --temperature: not a number: 'hot'"),
    ("goal target 1e999 --by 07:00", "argument soc: not a finite number: '1e999'"),
    ("goal reserve 50 --hours NaN", "argument --hours: not a finite number: 'NaN'"),
    ("override force_charge --power-w=-inf --soc 80", "argument --power-w: not a finite number: '-inf'"),
    # what held before: the command's own field and value
    ("load goal garage --by 06:00", "load=\"'garage'\": no such load (loads: dishwasher, boiler)"),
    ("load goal boiler --by 06:00 --temperature 1e308", "temperature_c='1e+308': must be between 0 and 100"),
    (
        "load goal boiler --by 06:00 --temperature -0",
        "temperature_c='-0.0': must be within boiler's min_c 45",
    ),
    ("load goal dishwasher --by 25:00", "by=\"'25:00'\": must be a local time HH:MM"),
    ("load goal dishwasher --at 2026-12-09T07:00:00", "must carry a UTC offset"),
    ("load goal dishwasher --at 2099-01-01T07:00:00+00:00", "at most 7 days, 0:00:00 ahead"),
    ("load goal dishwasher --by 06:00 --days mon,mon", "days=\"['mon', 'mon']\": names a day more than once"),
    ("load goal dishwasher --by 06:00 --days ,", "days=\"''\": must be one of mon, tue"),
    ("load goal " + "x" * 300 + " --by 06:00", "must be a load's name (a-z, 0-9, _; at most 32)"),
    ("load cancel boiler --by 99:00", "by=\"'99:00'\": must be a local time HH:MM"),
    ("goal reserve 50 --hours 1e308", "hours='1e+308': must be > 0 and at most 168"),
]


@pytest.mark.parametrize(("args", "said"), CASES)
def test_a_bad_argument_is_refused_naming_it_and_nothing_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: str, said: str
) -> None:
    config = tmp_path / "hemsd.toml"
    config.write_text(f'[storage]\nstate_dir = "{tmp_path / "state"}"\n' + LOADS)
    where = ["--config", str(config)]
    try:
        code = main([*args.split(), *where])
    except SystemExit as exit_:  # argparse refuses an option's value before the command runs
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert said in err, err
    assert "Traceback" not in err
    assert main(["load", "list", *where]) == 0
    listed = capsys.readouterr().out
    assert "goal" not in listed.replace("no goal", "")
