"""Command parsing: every topic's valid payloads, strict rejection naming field and value, generated input."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.mqtt_fixtures import invalid_commands

from controller.control.commands import (
    COMMAND_TOPICS,
    CancelOverrideCommand,
    CommandRejectedError,
    ControlCommand,
    ControlLimits,
    ControlMode,
    ModeCommand,
    NumberCommand,
    NumberSetting,
    OverrideCommand,
    ReplanCommand,
    parse_command,
)

NOW = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
LIMITS = ControlLimits()
KEYS = tuple(topic.key for topic in COMMAND_TOPICS)


def parse(key: str, payload: str | bytes) -> ControlCommand:
    raw = payload.encode() if isinstance(payload, str) else payload
    return parse_command(key, raw, LIMITS, NOW)


def outcome(key: str, payload: str | bytes) -> ControlCommand | CommandRejectedError:
    try:
        return parse(key, payload)
    except CommandRejectedError as error:
        return error


def rejected(key: str, payload: str | bytes) -> CommandRejectedError:
    with pytest.raises(CommandRejectedError) as info:
        parse(key, payload)
    return info.value


@pytest.mark.parametrize("mode", list(ControlMode))
def test_every_mode_is_accepted(mode: ControlMode) -> None:
    assert parse("mode", mode.value) == ModeCommand(mode=mode, received_at=NOW)


@pytest.mark.parametrize(
    ("key", "payload", "setting", "value"),
    [
        ("min_soc", "20", NumberSetting.MIN_SOC, 20.0),
        ("min_soc", "12.5", NumberSetting.MIN_SOC, 12.5),
        ("min_soc", "99.0", NumberSetting.MIN_SOC, 99.0),
        ("max_grid_charge_w", "3000.0", NumberSetting.MAX_GRID_CHARGE_W, 3000.0),
        ("max_grid_charge_w", "0", NumberSetting.MAX_GRID_CHARGE_W, 0.0),
        ("price_cap", "0.45", NumberSetting.PRICE_CAP, 0.45),
        ("price_cap", "-0.1", NumberSetting.PRICE_CAP, -0.1),
        ("price_cap", "None", NumberSetting.PRICE_CAP, None),
    ],
)
def test_numbers(key: str, payload: str, setting: NumberSetting, value: float | None) -> None:
    assert parse(key, payload) == NumberCommand(setting=setting, value=value, received_at=NOW)


def test_buttons() -> None:
    assert parse("replan", "PRESS") == ReplanCommand(received_at=NOW)
    assert parse("override_cancel", "PRESS") == CancelOverrideCommand(received_at=NOW)


def test_override_with_minutes() -> None:
    body = {"mode": "force_charge", "power_w": 3000, "target_soc": 80, "minutes": 90}
    assert parse("override", json.dumps(body)) == OverrideCommand(
        mode=ControlMode.FORCE_CHARGE, expires=NOW + timedelta(minutes=90), power_w=3000.0, target_soc=80.0,
        received_at=NOW,
    )  # fmt: skip


def test_override_with_expiry_in_another_zone_is_stored_in_utc() -> None:
    local = (NOW + timedelta(hours=3)).astimezone(timezone(timedelta(hours=2)))
    command = parse("override", json.dumps({"mode": "hold", "expires": local.isoformat()}))
    assert isinstance(command, OverrideCommand)
    assert command.expires == NOW + timedelta(hours=3)
    assert command.expires.utcoffset() == timedelta(0)
    assert (command.power_w, command.target_soc) == (None, None)


def test_override_discharge_uses_the_discharge_limit() -> None:
    limits = ControlLimits(max_grid_charge_w=2000, max_discharge_w=5000)
    body = {"mode": "force_discharge", "power_w": 4500, "target_soc": 30, "minutes": 15}
    command = parse_command("override", json.dumps(body).encode(), limits, NOW)
    assert isinstance(command, OverrideCommand)
    assert command.power_w == 4500.0
    body["mode"] = "force_charge"
    with pytest.raises(CommandRejectedError) as info:
        parse_command("override", json.dumps(body).encode(), limits, NOW)
    assert (info.value.field, info.value.value) == ("power_w", 4500)


@pytest.mark.parametrize(
    ("key", "payload", "field", "value"),
    [
        ("mode", "force-charge", "mode", "force-charge"),
        ("mode", b"\xff", "payload", b"\xff"),
        ("min_soc", "101", "min_soc", 101.0),
        ("min_soc", "None", "min_soc", "None"),
        ("min_soc", "nan", "min_soc", "nan"),
        ("min_soc", "1e999", "min_soc", math.inf),
        ("max_grid_charge_w", "-5", "max_grid_charge_w", -5.0),
        ("price_cap", "cheap", "price_cap", "cheap"),
        ("replan", "press", "replan", "press"),
        ("nope", "PRESS", "topic", "nope"),
        ("override", "[]", "payload", []),
        ("override", '{"mode": "hold"}', "expires", None),
        ("override", '{"mode": "hold", "minutes": 5, "minutes": 6}', "minutes", 6),
        ("override", '{"mode": "hold", "minutes": 5, "power_w": 10}', "power_w", 10),
        ("override", '{"mode": "force_charge", "target_soc": 80, "minutes": 5}', "power_w", None),
        ("override", '{"mode": "force_charge", "power_w": true, "target_soc": 80, "minutes": 5}', "power_w", True),
        ("override", '{"mode": "hold", "minutes": 5.0}', "minutes", 5.0),
        ("override", '{"mode": "hold", "minutes": 5, "until": 1}', "until", 1),
        ("override", '{"mode": "hold", "expires": "2026-03-14T12:00:00"}', "expires", "2026-03-14T12:00:00"),
        ("override", '{"mode": "hold", "expires": "2026-03-14T09:00:00Z"}', "expires", "2026-03-14T09:00:00Z"),
        ("override", '{"mode": "force_charge", "power_w": Infinity, "target_soc": 80, "minutes": 5}', "payload", "Infinity"),
    ],
)  # fmt: skip
def test_rejections_name_the_field_and_value(
    key: str, payload: str | bytes, field: str, value: object
) -> None:
    error = rejected(key, payload)
    assert error.field == field
    assert error.value == value
    assert field in str(error)


def test_override_expiry_window_is_bounded() -> None:
    limits = ControlLimits(max_override=timedelta(hours=2))
    ok = {"mode": "hold", "expires": (NOW + timedelta(hours=2)).isoformat()}
    assert isinstance(parse_command("override", json.dumps(ok).encode(), limits, NOW), OverrideCommand)
    late = {"mode": "hold", "expires": (NOW + timedelta(hours=2, seconds=1)).isoformat()}
    with pytest.raises(CommandRejectedError, match="expires"):
        parse_command("override", json.dumps(late).encode(), limits, NOW)
    with pytest.raises(CommandRejectedError, match="minutes"):
        parse_command("override", b'{"mode": "hold", "minutes": 121}', limits, NOW)


@pytest.mark.parametrize("expires", ["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59"])
def test_an_expiry_at_the_edge_of_the_calendar_is_rejected_by_name(expires: str) -> None:
    body = json.dumps({"mode": "hold", "expires": expires}).encode()
    with pytest.raises(CommandRejectedError) as caught:
        parse_command("override", body, ControlLimits(), NOW)
    assert caught.value.field == "expires"
    assert caught.value.value == expires


def test_oversized_and_deeply_nested_payloads_are_rejected() -> None:
    assert rejected("override", "[" * 1000 + "]" * 1000).field == "payload"
    assert rejected("min_soc", "1" * 65).field == "payload"


def test_error_report_is_json_for_any_value() -> None:
    for value in (b"\xff\xfe", math.nan, {"a": [1]}, "x" * 500, None, 3):
        report = CommandRejectedError("power_w", value, "must be a number").report(
            "hemsd/home/override/set", NOW
        )
        text = json.dumps(report, allow_nan=False)
        assert json.loads(text)["field"] == "power_w"
        assert report["time"] == NOW.isoformat()
        assert len(text) < 600


def test_generated_invalid_commands_are_all_rejected() -> None:
    generated = invalid_commands(1000)
    assert len(generated) == 1000
    assert {key for key, _ in generated} >= set(KEYS)
    fields = set()
    for key, payload in generated:
        error = rejected(key, payload)
        assert error.field
        assert error.reason
        fields.add(error.field)
    assert fields >= {
        "mode",
        "payload",
        "power_w",
        "target_soc",
        "minutes",
        "expires",
        "topic",
        "min_soc",
        "price_cap",
    }


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(KEYS), payload=st.binary(max_size=80))
def test_arbitrary_bytes_give_a_command_or_a_rejection(key: str, payload: bytes) -> None:
    result = outcome(key, payload)
    if isinstance(result, CommandRejectedError):
        assert result.field
    else:
        assert result.received_at == NOW


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
override_bodies = st.dictionaries(
    st.sampled_from(["mode", "power_w", "target_soc", "minutes", "expires", "other"]),
    st.one_of(
        st.sampled_from([m.value for m in ControlMode]),
        st.integers(-100, 20_000),
        st.floats(-1e6, 1e6, allow_nan=False),
        st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        json_values,
    ),
)

near_valid_overrides = st.fixed_dictionaries(
    {"mode": st.sampled_from([m.value for m in ControlMode])},
    optional={
        "power_w": st.integers(-10, 12_000) | st.floats(-10, 12_000),
        "target_soc": st.floats(-5, 105),
        "minutes": st.integers(-5, 3000),
        "expires": st.timedeltas(timedelta(hours=-1), timedelta(hours=50)).map(
            lambda d: (NOW + d).isoformat()
        ),
    },
)


@settings(max_examples=400, deadline=None)
@given(body=override_bodies | near_valid_overrides)
def test_override_invariants_hold_for_anything_accepted(body: dict[str, object]) -> None:
    command = outcome("override", json.dumps(body))
    if isinstance(command, CommandRejectedError):
        assert command.field in {"payload", "mode", "power_w", "target_soc", "minutes", "expires", "other"}
        return
    assert isinstance(command, OverrideCommand)
    assert NOW < command.expires <= NOW + LIMITS.max_override
    if command.mode in (ControlMode.FORCE_CHARGE, ControlMode.FORCE_DISCHARGE):
        assert command.power_w is not None
        assert 0 < command.power_w <= 10_000
        assert command.target_soc is not None
        assert 0 <= command.target_soc <= 100
    else:
        assert command.power_w is None
        assert command.target_soc is None


@pytest.mark.parametrize(
    "bad",
    [
        {"soc_min_pct": 50, "soc_max_pct": 40},
        {"max_grid_charge_w": 0},
        {"price_cap_min": 1, "price_cap_max": 1},
        {"max_override": timedelta(0)},
    ],
)
def test_limits_validate(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="ControlLimits"):
        ControlLimits(**bad)  # type: ignore[arg-type]
