"""Home Assistant discovery payload, state payloads and client settings, checked without a broker."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from controller.config.loading import load_config_text
from controller.control.applier import control_limits
from controller.control.commands import COMMAND_TOPICS, ControlLimits, ControlMode, NumberSetting
from controller.frontends.homeassistant.client import HomeAssistantClient
from controller.frontends.homeassistant.discovery import (
    ENTITIES,
    PAYLOAD_FIELDS,
    SNAPSHOT_FIELDS,
    DeviceInfo,
    EnergyState,
    StateKey,
    discovery_payload,
    discovery_topic,
    prices_state,
    snapshot_state,
)
from drivers.inverter.types import Snapshot
from drivers.mqtt import MqttError, MqttSettings, TlsSettings, encode_payload
from drivers.prices.types import PriceSlot

BASE = "hemsd/home"
DEVICE = DeviceInfo(site_id="home", name="Home", sw_version="1.2.3", currency="PLN", phases=1)
T0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SensorRule:
    """A Home Assistant sensor combination that is valid (unit and state classes allowed per device class)."""

    units: frozenset[str]
    state_classes: frozenset[str | None]


SENSOR_RULES = {
    "power": SensorRule(frozenset({"W"}), frozenset({"measurement"})),
    "energy": SensorRule(frozenset({"kWh"}), frozenset({"total_increasing", "total", None})),
    "battery": SensorRule(frozenset({"%"}), frozenset({"measurement"})),
    "voltage": SensorRule(frozenset({"V"}), frozenset({"measurement"})),
    "frequency": SensorRule(frozenset({"Hz"}), frozenset({"measurement"})),
    "monetary": SensorRule(frozenset({"PLN"}), frozenset({"total"})),
    "timestamp": SensorRule(frozenset(), frozenset({None})),
}


def components(phases: int = 1) -> dict[str, dict[str, object]]:
    device = DeviceInfo(site_id="home", name="Home", sw_version="1.2.3", phases=phases)
    payload = discovery_payload(device, BASE, ControlLimits())
    cmps = payload["cmps"]
    assert isinstance(cmps, dict)
    return cmps


def test_root_blocks() -> None:
    payload = discovery_payload(
        DeviceInfo("home", "Home", "1.2.3", support_url="https://example.invalid/hemsd"),
        BASE,
        ControlLimits(),
    )
    assert payload["dev"] == {
        "identifiers": ["hemsd_home"],
        "name": "hemsd Home",
        "manufacturer": "hemsd",
        "model": "Home energy controller",
        "sw_version": "1.2.3",
    }
    assert payload["o"] == {
        "name": "hemsd",
        "sw_version": "1.2.3",
        "support_url": "https://example.invalid/hemsd",
    }
    assert payload["avty_t"] == f"{BASE}/status"
    assert discovery_topic("homeassistant", DEVICE) == "homeassistant/device/hemsd_home/config"
    json.dumps(payload, allow_nan=False)


def test_sensor_combinations_are_valid_for_home_assistant() -> None:
    checked = 0
    for key, config in components().items():
        if config["p"] != "sensor":
            continue
        device_class = config.get("device_class")
        unit = config.get("unit_of_measurement")
        state_class = config.get("state_class")
        if device_class is None:
            # W, kWh and V always have a device class; a plain ratio in % (autarky) has none
            assert not (isinstance(unit, str) and unit in {"W", "kWh", "V"}), (
                f"{key}: physical unit needs a class"
            )
            continue
        rule = SENSOR_RULES[str(device_class)]
        assert (unit in rule.units) if rule.units else unit is None, f"{key}: unit {unit} for {device_class}"
        assert state_class in rule.state_classes, f"{key}: state_class {state_class} for {device_class}"
        if device_class == "monetary" and key.endswith("_today"):
            assert config["last_reset_value_template"] == "{{ value_json.day_start }}"
        checked += 1
    assert checked >= 20


def test_prices_have_no_device_class_and_a_per_kwh_unit() -> None:
    cmps = components()
    for key in ("import_price", "export_price", "price_cap"):
        assert "device_class" not in cmps[key]
        assert cmps[key]["unit_of_measurement"] == "PLN/kWh"
    assert cmps["import_price"]["state_class"] == "measurement"


def test_one_component_key_by_key() -> None:
    assert components()["pv_power"] == {
        "p": "sensor",
        "unique_id": "hemsd_home_pv_power",
        "default_entity_id": "sensor.hemsd_home_pv_power",
        "name": "PV power",
        "state_topic": f"{BASE}/snapshot",
        "value_template": "{{ value_json.pv_w }}",
        "device_class": "power",
        "state_class": "measurement",
        "unit_of_measurement": "W",
        "suggested_display_precision": 0,
        "icon": "mdi:solar-power",
    }
    assert components()["mode"] == {
        "p": "select",
        "unique_id": "hemsd_home_mode",
        "default_entity_id": "select.hemsd_home_mode",
        "name": "Mode",
        "state_topic": f"{BASE}/mode",
        "command_topic": f"{BASE}/mode/set",
        "icon": "mdi:tune-variant",
        "options": [m.value for m in ControlMode],
    }


def test_numbers_take_their_range_from_the_limits() -> None:
    limits = ControlLimits(soc_min_pct=10, soc_max_pct=95, min_soc_ceiling_pct=94, max_grid_charge_w=4200)
    cmps = discovery_payload(DEVICE, BASE, limits)["cmps"]
    assert isinstance(cmps, dict)
    assert (cmps["min_soc"]["min"], cmps["min_soc"]["max"]) == (10, 94)
    assert (cmps["max_grid_charge_power"]["min"], cmps["max_grid_charge_power"]["max"]) == (0, 4200)
    assert cmps["replan"]["payload_press"] == "PRESS"
    assert cmps["override"]["max"] == 255


def test_the_minimum_soc_number_offers_what_the_site_accepts() -> None:
    """The ET family keeps at least 11 %, and the minimum stays below the configured maximum."""
    config = load_config_text("[battery]\nmin_soc_pct = 20\nmax_soc_pct = 90\n")
    cmps = discovery_payload(DEVICE, BASE, control_limits(config))["cmps"]
    assert isinstance(cmps, dict)
    assert (cmps["min_soc"]["min"], cmps["min_soc"]["max"]) == (11, 89)


def test_identity_fields() -> None:
    cmps = components(phases=3)
    unique_ids = [c["unique_id"] for c in cmps.values()]
    assert len(unique_ids) == len(set(unique_ids)) == len(ENTITIES)
    for config in cmps.values():
        assert "object_id" not in config  # removed from Home Assistant in 2026.4
        assert re.fullmatch(r"[a-z_]+\.hemsd_home_[a-z0-9_]+", str(config["default_entity_id"]))
        assert str(config["default_entity_id"]).startswith(f"{config['p']}.")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@pytest.mark.parametrize("name", ["Home", "hemsd garage", "Dom"])
def test_entity_ids_are_hemsd_s_also_where_default_entity_id_is_unknown(name: str) -> None:
    """Older Home Assistant versions name an entity <platform>.<device name>_<entity name>."""
    device = DeviceInfo(site_id="home", name=name, sw_version="1.2.3", phases=3)
    payload = discovery_payload(device, BASE, ControlLimits())
    dev, cmps = payload["dev"], payload["cmps"]
    assert isinstance(dev, dict)
    assert isinstance(cmps, dict)
    generated = [f"{c['p']}.{_slug(str(dev['name']) + ' ' + str(c['name']))}" for c in cmps.values()]
    print("\n".join(generated[:3]))
    assert all(entity_id.split(".", 1)[1].startswith("hemsd_") for entity_id in generated)
    assert len(set(generated)) == len(generated)


def test_missing_phases_are_removed_with_only_the_platform() -> None:
    single, three = components(phases=1), components(phases=3)
    assert single["grid_voltage_l2"] == {"p": "sensor"}
    assert single["grid_voltage_l3"] == {"p": "sensor"}
    assert single["grid_voltage_l1"]["device_class"] == "voltage"
    assert three["grid_voltage_l3"]["value_template"] == "{{ value_json.grid_v3 }}"


def test_templates_read_only_fields_that_the_payloads_have() -> None:
    for entity in ENTITIES:
        for template in (entity.template, entity.attributes_template, entity.last_reset_template):
            if template is None or entity.state is None or entity.state not in PAYLOAD_FIELDS:
                continue
            for groups in re.findall(r"value_json\.(\w+)|\(value_json or \{\}\)\.get\('(\w+)'\)", template):
                field = next(part for part in groups if part)
                assert field in PAYLOAD_FIELDS[entity.state], (
                    f"{entity.key} reads {field} from {entity.state}"
                )


def test_every_command_topic_has_an_entity_and_back() -> None:
    entity_commands = {e.command for e in ENTITIES if e.command}
    # a load's goal has its own entities, on its own topics (load/<name>_goal, tests/test_load_goals.py)
    per_load = {"load_goal", "load_goal_cancel"}
    assert entity_commands == {topic.key for topic in COMMAND_TOPICS} - per_load
    assert {e.number for e in ENTITIES if e.number} == set(NumberSetting)


def test_snapshot_payload_has_every_field() -> None:
    snap = Snapshot(time=T0, pv_w=4100.0, load_w=900.0, grid_w=-2000.0, battery_w=-1200.0, soc_pct=55.0,
                    grid_v=(231.2,), counters_kwh={"import": 12.5}, mode="general")  # fmt: skip
    payload = json.loads(encode_payload(snapshot_state(snap)))
    assert set(SNAPSHOT_FIELDS) <= payload.keys()
    assert payload["pv_w"] == 4100.0
    assert payload["grid_v1"] == 231.2
    assert payload["grid_v2"] is None
    assert payload["grid_hz"] is None
    assert payload["import_kwh"] == 12.5
    assert payload["time"] == "2026-07-01T10:00:00+00:00"


def test_prices_payload_picks_the_current_slot() -> None:
    slots = [
        PriceSlot(
            T0 + timedelta(minutes=15 * i), T0 + timedelta(minutes=15 * (i + 1)), 0.5 + i, 0.1, "PLN", "pse"
        )
        for i in range(4)
    ]
    state = prices_state(slots, T0 + timedelta(minutes=20), "PLN")
    assert (state.import_now, state.export_now, state.source) == (1.5, 0.1, "pse")
    assert len(state.slots) == 4
    assert prices_state(slots, T0 - timedelta(minutes=1), "PLN").import_now is None


def test_encode_payload() -> None:
    warsaw = timezone(timedelta(hours=2))
    energy = EnergyState(T0.astimezone(warsaw), "PLN", 1.0, 2.0, 3.0, 4.0, 0.5, 0.25, 0.8, 0.3, math.nan)
    decoded = json.loads(encode_payload(energy))
    assert decoded["day_start"] == "2026-07-01T10:00:00+00:00"
    assert decoded["net_cost"] is None
    assert encode_payload(ControlMode.HOLD) == "hold"
    assert encode_payload(None) == "None"
    assert encode_payload(42.5) == "42.5"
    assert encode_payload("auto") == "auto"
    with pytest.raises(ValueError, match="naive"):
        encode_payload({"t": datetime(2026, 1, 1)})  # noqa: DTZ001 - the point of the test
    with pytest.raises(TypeError, match="object"):
        encode_payload(object())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"base_topic": "hemsd/#"}, "base_topic"),
        ({"base_topic": "/hemsd"}, "base_topic"),
        ({"discovery_prefix": "ha//x"}, "discovery_prefix"),
        ({"port": 0}, "port"),
        ({"keepalive_s": 1}, "keepalive_s"),
        ({"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}, "reconnect"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_settings_validation(change: dict[str, object], message: str) -> None:
    options: dict[str, object] = {
        "host": "127.0.0.1",
        "base_topic": BASE,
        "client_id": "hemsd-home",
        **change,
    }
    with pytest.raises(ValueError, match=message):
        MqttSettings(**options)  # type: ignore[arg-type]


def test_settings_defaults_for_a_site() -> None:
    settings = MqttSettings.for_site("garage", "broker.lan", password="pw")
    assert (settings.base_topic, settings.client_id) == ("hemsd/garage", "hemsd-garage")
    assert "pw" not in repr(settings)


def test_device_validation() -> None:
    with pytest.raises(ValueError, match="site_id"):
        DeviceInfo("a/b", "x", "1")
    with pytest.raises(ValueError, match="phases"):
        DeviceInfo("a", "x", "1", phases=2)
    with pytest.raises(ValueError, match="currency"):
        DeviceInfo("a", "x", "1", currency="zł")


async def ignore(command: object) -> None:
    return None


def test_unreadable_tls_files_are_a_clear_error(tmp_path: Path) -> None:
    settings = MqttSettings.for_site(
        "home", "127.0.0.1", tls=TlsSettings(ca_file=tmp_path / "missing-ca.crt")
    )
    with pytest.raises(MqttError, match=r"missing-ca\.crt"):
        HomeAssistantClient(settings, DEVICE, ignore)


async def test_state_is_kept_per_topic_and_bounded_before_any_connection() -> None:
    client = HomeAssistantClient(
        MqttSettings.for_site("home", "127.0.0.1", max_retained_topics=3), DEVICE, ignore
    )
    client.publish_state(StateKey.MODE, "auto")
    client.publish_state(StateKey.MODE, "hold")  # supersedes "auto", which never left
    client.publish_state(StateKey.MIN_SOC, 10)
    client.publish_state(StateKey.PRICE_CAP, None)
    client.publish_state(StateKey.HEALTH, {"spool_depth": 1})  # a fourth topic: over the bound
    client.publish_state("event", "x", retain=False)  # not retained and not connected: dropped
    stats = client.stats
    assert (stats.retained_topics, stats.unsent_topics, stats.dropped) == (3, 3, 3)
    assert not client.connected
    with pytest.raises(ValueError, match="reserved"):
        client.publish_state("status", "online")
    with pytest.raises(ValueError, match="reserved"):
        client.publish_state("mode/set", "auto")
    with pytest.raises(ValueError, match="state key"):
        client.publish_state("a/+/b", 1)
