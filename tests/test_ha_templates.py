"""Every discovery template rendered as Home Assistant renders it: no undefined access, small attributes.

Home Assistant renders ``value_template`` and ``json_attributes_template`` in a sandboxed Jinja
environment whose undefined values log "Template variable warning/error" (on a fresh install:
``'dict object' has no attribute 'grid_v1'``). Here the same templates are rendered with an
undefined that records every use, against the payloads hemsd publishes on a fresh site (nothing
measured yet, no override) and on a busy one (three phases, two days of 15-min slots), and the
attributes are measured against the recorder's 16 KB limit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from controller.control.commands import ControlMode
from controller.frontends.homeassistant.discovery import (
    ENTITIES,
    EnergyState,
    ForecastSlotState,
    ForecastState,
    GoalsState,
    OverrideState,
    PlanSlotState,
    PlanState,
    PriceSlotState,
    PricesState,
    SavingsState,
    StateKey,
    snapshot_state,
)
from controller.status.report import ActionState, HealthState
from drivers.inverter.types import Snapshot
from drivers.mqtt import encode_payload

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
ATTRIBUTES_LIMIT = 16384  # bytes of JSON attributes the recorder stores per state
SLOTS = 192  # two days of 15-min slots
used_undefined: list[str] = []


class RecordingUndefined(jinja2.Undefined):
    """Records what Home Assistant's LoggingUndefined logs: any use of an undefined value."""

    def _record(self) -> None:
        used_undefined.append(str(self._undefined_message))

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> Any:
        self._record()
        return super()._fail_with_undefined_error(*args, **kwargs)

    def __str__(self) -> str:
        self._record()
        return super().__str__()

    def __iter__(self) -> Any:
        self._record()
        return super().__iter__()

    def __bool__(self) -> bool:
        self._record()
        return super().__bool__()


ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=RecordingUndefined)
ENVIRONMENT.policies["json.dumps_function"] = lambda value, **_: json.dumps(value, separators=(",", ":"))


def render(template: str, payload: str) -> str:
    try:
        value_json: Any = json.loads(payload)
    except ValueError:
        value_json = RecordingUndefined(name="value_json")
    return ENVIRONMENT.from_string(template).render(value_json=value_json, value=payload)


def _slots(count: int) -> list[datetime]:
    return [T0 + timedelta(minutes=15 * i) for i in range(count)]


def fresh_payloads() -> dict[StateKey, object]:
    """What a site publishes before anything is measured: unknown values, empty analytics."""
    return {
        StateKey.SNAPSHOT: snapshot_state(Snapshot(T0, 0.0, 0.0, 0.0, 0.0, 50.0)),
        StateKey.ANALYTICS: {
            "day": "2026-12-07",
            "voltage": {"status": "no_data", "message": "no voltage recorded", "phases": {}},
            "energy": {"status": "no_data", "message": "", "currency": "PLN", "totals": None},
        },
        StateKey.ACTION: ActionState("self_use", "-", "fallback", 0.0, None, None, None),
        StateKey.HEALTH: HealthState((), 0, 0, None, None),
        StateKey.OVERRIDE: OverrideState(False, "auto", None, None, None, None, False, ""),
        StateKey.MODE: ControlMode.AUTO.value,
        StateKey.PRICE_CAP: None,
        StateKey.GOALS: GoalsState("none", "", "", None, None, True, ()),
        StateKey.ERROR: {
            "topic": "hemsd/home/min_soc/set",
            "field": "min_soc",
            "value": 5,
            "error": "too low",
            "time": T0.isoformat(),
        },
    }


def busy_payloads() -> dict[StateKey, object]:
    """A three-phase site two days into a plan, with the biggest payloads hemsd publishes."""
    starts = _slots(SLOTS)
    phase = {
        "max_v": 247.3,
        "share_in_band": 0.998,
        "slope_v_per_kw": 1.2,
        "r": 0.8,
        "impedance_ohm": 0.4,
        "likely_over_voltage_export_kw": 6.1,
    }
    return {
        StateKey.SNAPSHOT: snapshot_state(
            Snapshot(
                time=T0,
                pv_w=5123.4,
                load_w=812.0,
                grid_w=-3100.5,
                battery_w=-1200.25,
                soc_pct=55.5,
                grid_v=(231.2, 232.4, 229.9),
                grid_hz=50.01,
                mode="general",
            )
        ),
        StateKey.ANALYTICS: {
            "day": "2026-12-07",
            "voltage": {"status": "ok", "message": "", "phases": {f"grid_v{i}": phase for i in (1, 2, 3)}},
            "energy": {
                "status": "ok",
                "message": "",
                "currency": "PLN",
                "totals": {"self_consumption_ratio": 0.71234, "autarky_ratio": 0.55321},
            },
        },
        StateKey.PLAN: PlanState(
            T0,
            "PLN",
            12.3456789,
            "charge from the grid at 0.312 PLN/kWh for the evening peak " * 40,
            tuple(
                PlanSlotState(
                    t,
                    "force_charge",
                    55.123456,
                    3123.456789,
                    -3000.123456,
                    3000.123456,
                    0.612345678,
                    0.212345678,
                    0.523456789,
                )
                for t in starts
            ),
        ),
        StateKey.PRICES: PricesState(
            "PLN",
            "pse",
            0.61234567,
            0.2123456,
            tuple(PriceSlotState(t, 0.612345678912, 0.212345678912) for t in starts),
        ),
        StateKey.FORECAST: ForecastState(
            T0, 12.3, 18.4, tuple(ForecastSlotState(t, 4123.456789, 812.3456789) for t in starts)
        ),
        StateKey.ENERGY: EnergyState(T0, "PLN", 1.5, 2.5, 10.25, 9.75, 4.0, 3.5, 0.9, 0.5, 0.4),
        StateKey.SAVINGS: SavingsState(T0, "PLN", "self_use", 1.25, 312.5),
        StateKey.ACTION: ActionState("charge", "cheap hour " * 20, "override", 3000.0, 80.0, T0, T0),
        StateKey.HEALTH: HealthState(
            ("prices", "forecast"),
            12,
            14,
            200,
            "storage: busy",
            "commanded charge 3000 W, the battery does +400 W (+ discharge) for 12 readings",
        ),
        StateKey.GOALS: GoalsState(
            "target 80 % by 07:00 (mon, tue, wed, thu, fri); reserve 50 % until 2026-12-08 18:00",
            '{"soc_pct":80.0,"by":"07:00","days":["mon","tue","wed","thu","fri"]}',
            '{"soc_pct":50.0,"until":"2026-12-08T17:00:00+00:00"}',
            50.0,
            T0 + timedelta(hours=32),
            False,
            ("target 80 % by 07:00: not reachable, the plan reaches 64 % (battery or grid limits)",),
        ),
        StateKey.OVERRIDE: OverrideState(
            True,
            "force_charge",
            T0,
            3000.0,
            80.0,
            "mqtt",
            True,
            '{"mode":"force_charge","expires":"2026-12-07T10:00:00+00:00"}',
        ),
        StateKey.MODE: ControlMode.FORCE_CHARGE.value,
        StateKey.PRICE_CAP: 0.45,
    }


@pytest.mark.parametrize("site", ["fresh", "busy"])
def test_templates_use_no_undefined_value(site: str) -> None:
    payloads = fresh_payloads() if site == "fresh" else busy_payloads()
    rendered = 0
    for entity in ENTITIES:
        if entity.state is None or entity.state not in payloads:
            continue
        payload = encode_payload(payloads[entity.state])
        for template in (entity.template, entity.attributes_template, entity.last_reset_template):
            if template is None:
                continue
            used_undefined.clear()
            text = render(template, payload)
            assert not used_undefined, f"{entity.key} on a {site} site: {used_undefined} in {template}"
            rendered += 1
            if entity.key == "grid_voltage_in_band_today":
                print(f"{site}: {entity.key} = {text!r}")
    assert rendered >= 25


def test_a_fresh_site_reads_unknown_not_zero() -> None:
    """Home Assistant reads the text None as unknown: a ratio with no data is not 0 %."""
    payloads = fresh_payloads()
    by_key = {entity.key: entity for entity in ENTITIES}
    for key in ("grid_voltage_max_today", "grid_voltage_in_band_today", "self_consumption_today"):
        template = by_key[key].template
        assert template is not None
        assert render(template, encode_payload(payloads[StateKey.ANALYTICS])) == "None"
    assert render("{{ value_json.command }}", encode_payload(payloads[StateKey.OVERRIDE])) == ""
    by_key = {entity.key: entity for entity in ENTITIES}
    goals = encode_payload(payloads[StateKey.GOALS])
    rendered = {
        key: render(by_key[key].template or "", goals) for key in ("backup_reserve", "goal_unreachable")
    }
    assert rendered == {"backup_reserve": "None", "goal_unreachable": "OFF"}
    health = encode_payload(payloads[StateKey.HEALTH])
    assert render(by_key["inverter_unresponsive"].template or "", health) == "OFF"


def test_attributes_stay_under_the_recorders_limit() -> None:
    payloads = busy_payloads()
    sizes: dict[str, int] = {}
    for entity in ENTITIES:
        if entity.attributes_template is None or entity.state is None or entity.state not in payloads:
            continue
        attributes = json.loads(render(entity.attributes_template, encode_payload(payloads[entity.state])))
        assert isinstance(attributes, dict)
        sizes[entity.key] = len(json.dumps(attributes).encode())
    print(sizes)
    assert {"plan_updated", "import_price", "pv_forecast_today"} <= sizes.keys()
    assert all(size < ATTRIBUTES_LIMIT for size in sizes.values()), sizes
    assert max(sizes.values()) < ATTRIBUTES_LIMIT * 0.75  # room for longer numbers and names
