"""Fuzzing the MQTT command handler.

1. ``parse_command`` for every command topic and for unknown ones, with random bytes, random
   text and JSON built to look like each command (numbers of every size, wrong types, extra and
   missing fields, far and near expiries): a command within the limits, or CommandRejectedError.
2. The whole path in the running application (``MqttClient`` parsing the topic and payload,
   ``controller.control.commands`` applying it to a site on simulated time): a rejected command changes
   nothing (overrides, runtime settings, configuration), an accepted one only what it says.

``tests/test_mqtt_broker.py`` and ``tests/test_daemon_mqtt.py`` send a thousand generated invalid
payloads through a real broker; this goes wider and checks the state behind each one.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.config import FLAT_TARIFF
from support.frontends import publisher_of
from support.sim_harness import close_site, open_site

from controller.config.models import WEEKDAYS
from controller.control.applier import control_limits
from controller.control.commands import (
    COMMAND_TOPICS,
    CancelGoalCommand,
    CancelLoadGoalCommand,
    CancelOverrideCommand,
    CommandRejectedError,
    ControlLimits,
    ControlMode,
    GoalReserveCommand,
    GoalTargetCommand,
    LoadGoalCommand,
    ModeCommand,
    NumberCommand,
    OverrideCommand,
    ReplanCommand,
    parse_command,
)
from controller.frontends.homeassistant.client import CommandInbox, HomeAssistantClient
from controller.frontends.homeassistant.publisher import client_spec
from drivers.mqtt import MessageRejectedError

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
LIMITS = ControlLimits(max_grid_charge_w=11_000, max_discharge_w=5000, price_cap_min=-10, price_cap_max=100)
KEYS = [topic.key for topic in COMMAND_TOPICS]

numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.sampled_from([10**400, -(10**400), 2**63, 0, -0, 1, 100, 101, 24 * 60, 24 * 60 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
any_json = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=5,
)
expiries = st.one_of(
    st.integers(-2 * 86400, 3 * 86400).map(lambda s: (NOW + timedelta(seconds=s)).isoformat()),
    st.sampled_from(
        ["", "tomorrow", "2026-06-15T12:00:00", "9999-12-31T23:59:59+14:00", "0001-01-01T00:00:00-14:00"]
    ),
    any_json,
)


@st.composite
def override_bodies(draw: st.DrawFn) -> bytes:
    """Mostly near misses: the fields a valid override has, each usually present, some value off."""
    fields = {
        "mode": st.one_of(st.sampled_from([m.value for m in ControlMode]), any_json),
        "power_w": st.one_of(numbers, numbers, any_json),
        "target_soc": st.one_of(numbers, numbers, any_json),
        "minutes": st.one_of(numbers, numbers, any_json),
        "expires": expiries,
        "extra": any_json,
    }
    present = {"mode": 0.95, "power_w": 0.8, "target_soc": 0.8, "minutes": 0.6, "expires": 0.3, "extra": 0.05}
    body = {name: draw(value) for name, value in fields.items() if draw(st.floats(0, 1)) < present[name]}
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def goal_bodies(draw: st.DrawFn) -> bytes:
    """Near misses of a goal: a target's or a reserve's fields, each usually present, some value off."""
    fields = {
        "soc_pct": numbers,
        "at": expiries,
        "by": st.one_of(st.sampled_from(["07:00", "7:00", "24:00", "23:59", "00:00", "noon"]), any_json),
        "days": st.one_of(st.lists(st.sampled_from([*WEEKDAYS, "Mon", "x"]), max_size=8), any_json),
        "until": expiries,
        "hours": numbers,
        "extra": any_json,
    }
    present = {"soc_pct": 0.9, "at": 0.3, "by": 0.4, "days": 0.3, "until": 0.4, "hours": 0.4, "extra": 0.05}
    body = {name: draw(value) for name, value in fields.items() if draw(st.floats(0, 1)) < present[name]}
    return json.dumps(body, allow_nan=True).encode()


payloads = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=40).map(str.encode),
    numbers.map(lambda n: str(n).encode()),
    st.sampled_from([m.value.encode() for m in ControlMode] + [b"PRESS", b"None", b"none", b"press"]),
    override_bodies(),
    override_bodies(),
    goal_bodies(),
    goal_bodies(),
    st.sampled_from([b"target", b"reserve", b"both", b""]),
    any_json.map(lambda v: json.dumps(v, allow_nan=True).encode()),
)


def within_limits(command: object, limits: ControlLimits, now: datetime) -> None:
    """What an accepted command may ask for."""
    if isinstance(command, OverrideCommand):
        assert now < command.expires <= now + limits.max_override
        if command.mode in (ControlMode.FORCE_CHARGE, ControlMode.FORCE_DISCHARGE):
            assert command.power_w is not None
            assert command.target_soc is not None
            cap = (
                limits.max_grid_charge_w
                if command.mode is ControlMode.FORCE_CHARGE
                else limits.max_discharge_w
            )
            assert 0 < command.power_w <= cap
            assert limits.soc_min_pct <= command.target_soc <= limits.soc_max_pct
        else:
            assert command.power_w is None
            assert command.target_soc is None
    elif isinstance(command, NumberCommand):
        if command.value is not None:
            low, high = limits.number_range(command.setting)
            assert low <= command.value <= high
    elif isinstance(command, GoalTargetCommand):
        assert limits.soc_min_pct <= command.soc_pct <= limits.soc_max_pct
        assert (command.at is None) != (command.by is None)
        if command.at is not None:
            assert now < command.at <= now + limits.max_goal_ahead
        assert set(command.days) <= set(WEEKDAYS)
    elif isinstance(command, GoalReserveCommand):
        assert limits.soc_min_pct <= command.soc_pct <= limits.soc_max_pct
        assert now < command.until <= now + limits.max_goal_ahead
    elif isinstance(command, CancelGoalCommand):
        assert command.kind in ("target", "reserve")
    elif isinstance(command, LoadGoalCommand):
        assert re.fullmatch(r"[a-z0-9][a-z0-9_]{0,31}", command.load)
        assert (command.at is None) != (command.by is None)
        if command.at is not None:
            assert now < command.at <= now + limits.max_goal_ahead
        assert command.temperature_c is None or 0 <= command.temperature_c <= 100
    elif isinstance(command, CancelLoadGoalCommand):
        assert re.fullmatch(r"[a-z0-9][a-z0-9_]{0,31}", command.load)
    else:
        assert isinstance(command, ModeCommand | ReplanCommand | CancelOverrideCommand)


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.one_of(st.sampled_from(KEYS), st.text(max_size=12)), payload=payloads)
def test_any_command_is_within_the_limits_or_rejected(key: str, payload: bytes) -> None:
    try:
        command = parse_command(key, payload, LIMITS, NOW)
    except CommandRejectedError as error:
        report = error.report(f"hemsd/site/{key}/set", NOW)
        json.dumps(report, allow_nan=False)  # what goes out on <base>/error is valid JSON
        return
    within_limits(command, LIMITS, NOW)


# --- the whole path in a running application ----------------------------------------------------------

BODY = (
    """
[site]
id = "fuzz"
timezone = "Europe/Warsaw"
[daemon]
poll_interval_s = 60
"""
    + FLAT_TARIFF
    + """[mqtt]
host = "127.0.0.1"
port = 1
"""
)


def generated(rng: random.Random) -> tuple[str, bytes]:
    """One (command key, payload): mostly near misses of valid commands, some valid, some garbage."""
    key = rng.choice([*KEYS, *KEYS, "unknown", "min-soc", "", "mode/x"])
    kind = rng.randrange(6)
    if kind == 0:
        return key, bytes(rng.randrange(256) for _ in range(rng.randrange(30)))
    if kind == 1:
        return key, rng.choice(
            [b"auto", b"self_use", b"force_charge", b"hold", b"PRESS", b"None", b"50", b"-1"]
        )
    if kind == 2:
        return key, str(rng.choice([0, 12, 15.5, 99, 100, 101, -5, 1e6, 10**400, "nan", "1e999"])).encode()
    body: dict[str, Any] = {
        "mode": rng.choice(["force_charge", "force_discharge", "hold", "self_use", "auto", "x"])
    }
    for name, choices in (
        ("power_w", [0, 1, 2500, 5000, 5001, 11_000, 11_001, -1, 10**400, "3000", None, True]),
        ("target_soc", [0, 15, 80, 100, 100.5, -1, None, "80"]),
        ("minutes", [0, 1, 30, 24 * 60, 24 * 60 + 1, 1.5, 10**400, None]),
        (
            "expires",
            [(NOW + timedelta(hours=h)).isoformat() for h in (-1, 1, 23, 25)] + ["2026-06-15T12:00:00"],
        ),
    ):
        if rng.random() < 0.6:
            body[name] = rng.choice(choices)
    return "override" if kind < 5 else key, json.dumps(body).encode()


async def test_a_rejected_command_changes_nothing_in_the_running_daemon(tmp_path: Path) -> None:
    site = await open_site(tmp_path, datetime(2026, 6, 15, 12, 0, tzinfo=ZoneInfo("Europe/Warsaw")), BODY)
    app = site.app
    spec = client_spec(app.config, phases=3)
    assert spec is not None
    client = HomeAssistantClient(
        spec.settings, spec.device, publisher_of(app).handle, limits=spec.limits, now=app.clock.now
    )
    inbox = CommandInbox(spec.limits, publisher_of(app).handle, app.clock.now)
    base = spec.settings.base_topic
    rng = random.Random(61522)

    async def state() -> tuple[object, ...]:
        overrides = tuple(
            (o.id, o.mode, o.expires_at, o.cancelled_at) for o in await app.parts.data.overrides(limit=500)
        )
        return overrides, dict(app.settings.entries), app.config

    try:
        accepted = rejected = 0
        for _ in range(300):
            key, payload = generated(rng)
            before = await state()
            try:
                command = inbox.parse(f"{base}/{key}/set", key, payload)
                within_limits(command, control_limits(app.config), app.clock.now())
                await app.commands.apply(command, "mqtt")
            except (MessageRejectedError, CommandRejectedError):
                rejected += 1
                assert await state() == before, (key, payload)
                continue
            accepted += 1
            after = await state()
            if isinstance(command, OverrideCommand | ModeCommand) and command.mode is not ControlMode.AUTO:
                assert len(after[0]) == len(before[0]) + 1  # exactly the one override
            elif isinstance(command, ReplanCommand):
                assert after == before
            await site.true_clock.sleep(60)
        assert rejected > 180
        assert accepted > 5
        # retained commands are never applied: they would replay on every connect
        before = await state()
        client._on_message(f"{base}/mode/set", b"force_charge", True)
        assert client.stats.rejected_commands == 1
        await asyncio.sleep(0)  # the dispatcher would have run an accepted command by now
        assert await state() == before
        # every override the handler stored expires within 24 h of its creation
        for record in await app.parts.data.overrides(limit=500):
            assert record.expires_at is not None
            assert record.expires_at - record.created_at <= timedelta(hours=24)
    finally:
        await close_site(site)
