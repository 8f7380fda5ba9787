"""The [[loads]] tables: the example's keys are every key, and mistakes name the load's key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.config.loading import load_config_text
from controller.config.loads import LOAD_TYPES, ApplianceConfig, SwitchConfig, WaterHeaterConfig
from controller.config.models import ConfigError

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "hemsd.example.toml"
MQTT = '[mqtt]\nhost = "localhost"\n'


def example_loads() -> str:
    """The example's commented [[loads]] tables, uncommented (the comment lines dropped)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("# [[loads]]") :]
    lines = [line[2:] for line in block.splitlines() if re.match(r"^# ([a-z_]+ = |\[)", line)]
    return "\n".join(lines) + "\n"


def test_the_examples_loads_are_valid_and_name_every_key() -> None:
    config = load_config_text(MQTT + example_loads())
    assert [load.type for load in config.loads] == ["appliance", "water_heater", "heat_pump"]
    text = example_loads()
    for model in (*LOAD_TYPES, SwitchConfig):
        for key in model.model_fields:
            if key != "switch":
                assert re.search(rf"^{key} = ", text, re.MULTILINE), (
                    f"{model.__name__}.{key} not in the example"
                )


@pytest.mark.parametrize(
    ("snippet", "fragments"),
    [
        ('name = "x"\ntype = "car"', ["loads.0", "'appliance', 'water_heater', 'heat_pump'"]),
        ('name = "x"\ntype = "appliance"\npower_w = 100', ["loads.0.appliance", "duration_min"]),
        (
            'name = "x"\ntype = "appliance"\npower_w = 100\nduration_min = 120\nearliest_start = "10:00"\n'
            'latest_end = "11:00"',
            ["latest_end", "120 min", "10:00", "11:00"],
        ),
        (
            'name = "x"\ntype = "appliance"\npower_w = 100\nduration_min = 30\noptional = true',
            ["optional", "price_cap"],
        ),
        ('name = "x"\ntype = "water_heater"\nmin_c = 80', ["loads.0.water_heater", "min_c (80.0)"]),
        ('name = "x"\ntype = "water_heater"\nvolume_l = -5', ["loads.0.water_heater.volume_l", "-5"]),
        ('name = "Boiler"\ntype = "water_heater"', ["loads.0.water_heater.name", "Boiler"]),
        ('name = "x"\ntype = "heat_pump"\nheat_demand_w = [9000]', ["heat_demand_w", "9000"]),
        ('name = "x"\ntype = "water_heater"\n[loads.switch]\nvia = "mqtt"', ["switch", "command_topic"]),
        ('name = "x"\ntype = "water_heater"\n[loads.switch]\npower_topic = "a/#"', ["power_topic"]),
        ('name = "x"\ntype = "water_heater"\ntemperature_topic = "t/+"', ["temperature_topic", "t/+"]),
        (
            'name = "x"\ntype = "heat_pump"\ntemperature_json_path = "temperature"',
            ["temperature_json_path", "temperature_topic"],
        ),
        (
            'name = "x"\ntype = "heat_pump"\ntemperature_topic = "t"\ntemperature_max_age_min = 0',
            ["temperature_max_age_min", "0"],
        ),
        (
            'name = "x"\ntype = "appliance"\npower_w = 100\nduration_min = 30\ntemperature_topic = "t"',
            ["loads.0.appliance.temperature_topic"],
        ),
    ],
)
def test_a_bad_load_names_its_key_and_value(snippet: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(MQTT + "[[loads]]\n" + snippet + "\n")
    text = "; ".join(info.value.problems)
    for fragment in fragments:
        assert fragment in text


def test_names_are_unique_and_loads_need_a_broker() -> None:
    two = '[[loads]]\nname = "x"\ntype = "water_heater"\n[[loads]]\nname = "x"\ntype = "heat_pump"\n'
    with pytest.raises(ConfigError, match="'x' is used twice"):
        load_config_text(MQTT + two)
    with pytest.raises(ConfigError, match=r"needs an \[mqtt\] broker"):
        load_config_text('[[loads]]\nname = "x"\ntype = "water_heater"\n')


def test_an_appliances_run_as_a_quarter_hour_profile() -> None:
    config = load_config_text(
        MQTT + '[[loads]]\nname = "wm"\ntype = "appliance"\npower_w = 1200\nduration_min = 40\n'
    )
    load = config.loads[0]
    assert isinstance(load, ApplianceConfig)
    assert load.profile() == (1200.0, 1200.0, 800.0)  # 10 of its last 15 minutes
    assert load.window_min() == 24 * 60


def test_a_tank_of_200_litres_holds_about_a_quarter_kwh_per_kelvin() -> None:
    config = load_config_text(MQTT + '[[loads]]\nname = "b"\ntype = "water_heater"\n')
    load = config.loads[0]
    assert isinstance(load, WaterHeaterConfig)
    assert load.capacity_kwh_per_k() == pytest.approx(0.2326, abs=1e-4)
