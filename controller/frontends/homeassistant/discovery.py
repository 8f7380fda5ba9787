"""What hemsd publishes over MQTT, and how Home Assistant is told about it.

State is published retained under ``<base>/<key>`` (:class:`StateKey`); JSON payloads are the
frozen dataclasses below, so the fields that the discovery templates read (``value_json.pv_w``)
are fixed in one place. :data:`ENTITIES` is the Home Assistant entity list as data;
:func:`discovery_payload` turns it into one device-based discovery message
(``<prefix>/device/<device id>/config``) with the device and origin blocks, the shared
availability topic at the root and one component per entity under ``cmps``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from controller.control.commands import (
    BUTTON_PAYLOAD,
    NO_VALUE_PAYLOAD,
    ControlLimits,
    ControlMode,
    NumberSetting,
)
from controller.control.load_state import load_command_key, load_state_topic
from controller.reports.energy import BILL_STATE_FIELDS
from controller.status.report import ActionState, HealthState
from drivers.inverter.types import Snapshot
from drivers.prices.types import PriceSlot

TEXT_MAX_LENGTH = 255


class StateKey(enum.StrEnum):
    """Sub-topics of the base topic that hemsd publishes."""

    STATUS = "status"  # online / offline (last will)
    ERROR = "error"  # rejected commands, not retained
    SNAPSHOT = "snapshot"
    ACTION = "action"
    PLAN = "plan"
    PRICES = "prices"
    FORECAST = "forecast"
    ENERGY = "energy"
    SAVINGS = "savings"
    HEALTH = "health"
    MODE = "mode"
    MIN_SOC = "min_soc"
    MAX_GRID_CHARGE_W = "max_grid_charge_w"
    PRICE_CAP = "price_cap"
    OVERRIDE = "override"
    GOALS = "goals"
    ANALYTICS = "analytics"  # today's grid-voltage quality and energy ratios (controller.reports.energy)
    BILL = "bill"  # this month's bill so far and its peak, as settled (controller.settlement)


MAX_PHASES = 3
SNAPSHOT_FIELDS = (
    "time", "stale", "mode", "pv_w", "load_w", "grid_w", "battery_w", "soc_pct", "grid_hz",
    *(f"grid_v{i}" for i in range(1, MAX_PHASES + 1)),
)  # fmt: skip


def snapshot_state(snapshot: Snapshot) -> dict[str, object]:
    """The ``snapshot`` payload: every field of SNAPSHOT_FIELDS (None when unknown) plus extras."""
    payload: dict[str, object] = dict.fromkeys(SNAPSHOT_FIELDS)
    payload.update(snapshot.fields())
    payload.update(time=snapshot.time, stale=snapshot.stale, mode=snapshot.mode)
    return payload


@dataclass(frozen=True, slots=True)
class PlanSlotState:
    start: datetime
    action: str
    soc_pct: float
    grid_w: float
    battery_w: float
    grid_charge_w: float
    import_price: float
    export_price: float
    cost: float


@dataclass(frozen=True, slots=True)
class PlanState:
    created_at: datetime
    currency: str
    total_cost: float
    explanation: str
    slots: tuple[PlanSlotState, ...]


@dataclass(frozen=True, slots=True)
class PriceSlotState:
    start: datetime
    import_price: float
    export_price: float


@dataclass(frozen=True, slots=True)
class PricesState:
    currency: str
    source: str
    import_now: float | None
    export_now: float | None
    slots: tuple[PriceSlotState, ...]


def prices_state(slots: Sequence[PriceSlot], now: datetime, currency: str) -> PricesState:
    """The ``prices`` payload from final price slots; the current prices are those of the slot holding now."""
    current = next((slot for slot in slots if slot.start <= now < slot.end), None)
    return PricesState(
        currency=currency,
        source=current.source if current else (slots[0].source if slots else ""),
        import_now=current.import_price if current else None,
        export_now=current.export_price if current else None,
        slots=tuple(PriceSlotState(s.start, s.import_price, s.export_price) for s in slots),
    )


@dataclass(frozen=True, slots=True)
class ForecastSlotState:
    start: datetime
    pv_w: float
    load_w: float


@dataclass(frozen=True, slots=True)
class ForecastState:
    created_at: datetime
    pv_kwh_today: float
    load_kwh_today: float
    slots: tuple[ForecastSlotState, ...]


@dataclass(frozen=True, slots=True)
class EnergyState:
    """Today's energy (kWh, growing through the day) and money (currency); ``day_start`` is local midnight."""

    day_start: datetime
    currency: str
    import_kwh: float
    export_kwh: float
    pv_kwh: float
    load_kwh: float
    charge_kwh: float
    discharge_kwh: float
    import_cost: float
    export_revenue: float
    net_cost: float


@dataclass(frozen=True, slots=True)
class SavingsState:
    """Money saved against the baseline (e.g. self-use without a plan): today and since installation."""

    day_start: datetime
    currency: str
    baseline: str
    today: float
    total: float


@dataclass(frozen=True, slots=True)
class OverrideState:
    """The override asked for (``active``) and whether the inverter follows it (``in_force``).

    Without an override: ``active`` false, mode ``auto`` and no expiry. ``command`` is the override
    as the JSON the override text entity accepts ("" when there is none), which that entity shows.
    """

    active: bool
    mode: str
    expires: datetime | None
    power_w: float | None
    target_soc: float | None
    source: str | None
    in_force: bool
    command: str


@dataclass(frozen=True, slots=True)
class GoalsState:
    """The battery goals: every one in words (``summary``), the run-time target and reserve as the
    JSON their text entities accept ("" when there is none), the reserve in force now, and what
    the plan makes of them (``reachable`` false when one cannot be met; ``notes`` say why)."""

    summary: str
    target_command: str
    reserve_command: str
    reserve_pct: float | None
    reserve_until: datetime | None
    reachable: bool
    notes: tuple[str, ...]


PAYLOAD_FIELDS: dict[StateKey, frozenset[str]] = {
    StateKey.SNAPSHOT: frozenset(SNAPSHOT_FIELDS),
    StateKey.ERROR: frozenset({"topic", "field", "value", "error", "time"}),
    StateKey.BILL: BILL_STATE_FIELDS,
    **{
        key: frozenset(f.name for f in fields(cls))
        for key, cls in (
            (StateKey.ACTION, ActionState),
            (StateKey.PLAN, PlanState),
            (StateKey.PRICES, PricesState),
            (StateKey.FORECAST, ForecastState),
            (StateKey.ENERGY, EnergyState),
            (StateKey.SAVINGS, SavingsState),
            (StateKey.HEALTH, HealthState),
            (StateKey.OVERRIDE, OverrideState),
            (StateKey.GOALS, GoalsState),
        )
    },
}


class Component(enum.StrEnum):
    SENSOR = "sensor"
    BINARY_SENSOR = "binary_sensor"
    SELECT = "select"
    NUMBER = "number"
    BUTTON = "button"
    TEXT = "text"
    SWITCH = "switch"


@dataclass(frozen=True, slots=True)
class Entity:
    """One Home Assistant entity. ``unit`` may contain ``{currency}``; ``command`` is a command key."""

    key: str
    name: str
    component: Component
    state: StateKey | str | None = None  # a StateKey, or a load's sub-topic (load_state_topic)
    template: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    unit: str | None = None
    icon: str | None = None
    command: str | None = None
    options: tuple[str, ...] = ()
    number: NumberSetting | None = None
    step: float | None = None
    precision: int | None = None
    attributes_template: str | None = None
    last_reset_template: str | None = None
    category: str | None = None  # "diagnostic" | "config"
    min_phases: int = 1
    payload: str = BUTTON_PAYLOAD  # what a button sends


def _v(field: str) -> str:
    return f"{{{{ value_json.{field} }}}}"


def _nested(*path: str) -> str:
    """A Jinja expression for a nested field that is None (unknown) when any part is missing."""
    expression = "value_json"
    for key in path:
        expression = f"({expression} or {{}}).get('{key}')"
    return expression


def _percent(*path: str) -> str:
    """A ratio (0..1) at ``path`` in percent; None (unknown) while there is none."""
    return f"{{% set ratio = {_nested(*path)} %}}{{{{ ratio * 100 if ratio is number else None }}}}"


# Home Assistant stores at most 16 KB of attributes per state: the attributes carry the next
# slots only; the whole plan, forecast and price list stay on their topics and the HTTP API.
ATTRIBUTE_SLOTS = 96
PLAN_ATTRIBUTE_SLOTS = 16
_SLOTS_ATTRIBUTES = f"{{{{ {{'slots': value_json.slots[:{ATTRIBUTE_SLOTS}]}} | tojson }}}}"
_S = Component.SENSOR


def _power(key: str, name: str, field: str, icon: str) -> Entity:
    return Entity(
        key, name, _S, StateKey.SNAPSHOT, _v(field), "power", "measurement", "W", icon=icon, precision=0
    )


def _energy_today(key: str, name: str, field: str) -> Entity:
    """kWh since local midnight: total_increasing, so the daily drop to 0 reads as a meter reset."""
    return Entity(key, name, _S, StateKey.ENERGY, _v(field), "energy", "total_increasing", "kWh", precision=2)


def _money_today(key: str, name: str, state: StateKey, field: str) -> Entity:
    """Money since local midnight: monetary allows only state_class total, so last_reset marks the day."""
    return Entity(
        key,
        name,
        _S,
        state,
        _v(field),
        "monetary",
        "total",
        "{currency}",
        precision=2,
        last_reset_template=_v("day_start"),
    )


def _price(key: str, name: str, field: str, icon: str, attributes: str | None) -> Entity:
    """A price per kWh has no device class (monetary would demand a bare currency unit)."""
    return Entity(
        key,
        name,
        _S,
        StateKey.PRICES,
        _v(field),
        None,
        "measurement",
        "{currency}/kWh",
        icon=icon,
        precision=3,
        attributes_template=attributes,
    )


# fmt: off
ENTITIES: tuple[Entity, ...] = (
    Entity("grid_voltage_max_today", "Grid voltage L1 highest 10-min mean today", _S, StateKey.ANALYTICS,
           f"{{{{ {_nested('voltage', 'phases', 'grid_v1', 'max_v')} }}}}", "voltage", "measurement", "V", precision=1),
    Entity("grid_voltage_in_band_today", "Grid voltage L1 within 230 V +/-10 % today", _S, StateKey.ANALYTICS,
           _percent("voltage", "phases", "grid_v1", "share_in_band"), state_class="measurement",
           unit="%", icon="mdi:sine-wave", precision=1),
    Entity("self_consumption_today", "Self-consumption ratio today", _S, StateKey.ANALYTICS,
           _percent("energy", "totals", "self_consumption_ratio"), state_class="measurement",
           unit="%", icon="mdi:home-battery", precision=1),
    Entity("autarky_today", "Autarky ratio today", _S, StateKey.ANALYTICS,
           _percent("energy", "totals", "autarky_ratio"), state_class="measurement",
           unit="%", icon="mdi:home-battery-outline", precision=1),
    _power("pv_power", "PV power", "pv_w", "mdi:solar-power"),
    _power("load_power", "Load power", "load_w", "mdi:home-lightning-bolt"),
    _power("grid_power", "Grid power (import +)", "grid_w", "mdi:transmission-tower"),
    _power("battery_power", "Battery power (discharge +)", "battery_w", "mdi:battery-charging"),
    Entity("battery_soc", "Battery state of charge", _S, StateKey.SNAPSHOT, _v("soc_pct"), "battery", "measurement", "%", precision=0),
    *(
        Entity(f"grid_voltage_l{i}", f"Grid voltage L{i}", _S, StateKey.SNAPSHOT, _v(f"grid_v{i}"), "voltage", "measurement", "V",
               precision=1, min_phases=1 if i == 1 else MAX_PHASES)
        for i in range(1, MAX_PHASES + 1)
    ),
    Entity("grid_frequency", "Grid frequency", _S, StateKey.SNAPSHOT, _v("grid_hz"), "frequency", "measurement", "Hz", precision=2),
    Entity("inverter_mode", "Inverter mode", _S, StateKey.SNAPSHOT, _v("mode"), icon="mdi:state-machine", category="diagnostic"),
    Entity("data_stale", "Inverter data stale", Component.BINARY_SENSOR, StateKey.SNAPSHOT,
           "{{ 'ON' if value_json.stale else 'OFF' }}", "problem", category="diagnostic"),
    Entity("current_action", "Current action", _S, StateKey.ACTION, _v("action"), icon="mdi:battery-sync",
           attributes_template="{{ value_json | tojson }}"),
    Entity("action_reason", "Action reason", _S, StateKey.ACTION, "{{ value_json.reason[:255] }}", icon="mdi:comment-question"),
    Entity("plan_updated", "Plan updated", _S, StateKey.PLAN, _v("created_at"), "timestamp", icon="mdi:chart-timeline",
           attributes_template="{{ {'explanation': value_json.explanation[:1000], 'total_cost': value_json.total_cost, "
                               f"'next_slots': value_json.slots[:{PLAN_ATTRIBUTE_SLOTS}]}} | tojson }}}}"),
    Entity("plan_cost", "Plan expected cost", _S, StateKey.PLAN, _v("total_cost"), unit="{currency}", precision=2,
           icon="mdi:cash-clock"),
    _price("import_price", "Import price", "import_now", "mdi:cash-plus", _SLOTS_ATTRIBUTES),
    _price("export_price", "Export price", "export_now", "mdi:cash-minus", None),
    Entity("pv_forecast_today", "PV forecast today", _S, StateKey.FORECAST, _v("pv_kwh_today"), "energy", None, "kWh",
           precision=1, attributes_template=_SLOTS_ATTRIBUTES),
    Entity("load_forecast_today", "Load forecast today", _S, StateKey.FORECAST, _v("load_kwh_today"), "energy", None, "kWh",
           precision=1),
    _energy_today("grid_import_today", "Grid import today", "import_kwh"),
    _energy_today("grid_export_today", "Grid export today", "export_kwh"),
    _energy_today("pv_energy_today", "PV energy today", "pv_kwh"),
    _energy_today("load_energy_today", "Load energy today", "load_kwh"),
    _energy_today("battery_charge_today", "Battery charge today", "charge_kwh"),
    _energy_today("battery_discharge_today", "Battery discharge today", "discharge_kwh"),
    _money_today("import_cost_today", "Import cost today", StateKey.ENERGY, "import_cost"),
    _money_today("export_revenue_today", "Export revenue today", StateKey.ENERGY, "export_revenue"),
    _money_today("net_cost_today", "Net cost today", StateKey.ENERGY, "net_cost"),
    _money_today("savings_today", "Savings today", StateKey.SAVINGS, "today"),
    Entity("savings_total", "Savings total", _S, StateKey.SAVINGS, _v("total"), "monetary", "total", "{currency}", precision=2),
    Entity("bill_month", "Bill this month", _S, StateKey.BILL, _v("total"), "monetary", "total", "{currency}", precision=2,
           last_reset_template=_v("month_start"), attributes_template="{{ value_json | tojson }}"),
    Entity("peak_month", "Import peak this month", _S, StateKey.BILL, "{{ (value_json.peak_kw * 1000) | round(0) }}",
           "power", "measurement", "W", icon="mdi:chart-bell-curve", precision=0),
    Entity("stale_sources", "Stale data sources", _S, StateKey.HEALTH, "{{ value_json.stale_sources | length }}",
           icon="mdi:alert-circle-outline", attributes_template="{{ {'sources': value_json.stale_sources} | tojson }}",
           category="diagnostic"),
    Entity("spool_depth", "Spooled measurements", _S, StateKey.HEALTH, _v("spool_depth"), state_class="measurement",
           icon="mdi:database-clock", category="diagnostic"),
    Entity("inverter_writes_today", "Inverter writes today", _S, StateKey.HEALTH, _v("inverter_writes_today"),
           state_class="total_increasing", icon="mdi:content-save-edit", category="diagnostic"),
    Entity("last_command_error", "Last command error", _S, StateKey.ERROR,
           "{{ (value_json.field ~ ': ' ~ value_json.error)[:255] }}", icon="mdi:alert", category="diagnostic"),
    Entity("mode", "Mode", Component.SELECT, StateKey.MODE, command="mode", options=tuple(m.value for m in ControlMode),
           icon="mdi:tune-variant"),
    Entity("min_soc", "Minimum SoC", Component.NUMBER, StateKey.MIN_SOC, device_class="battery", unit="%",
           command="min_soc", number=NumberSetting.MIN_SOC, step=1, category="config"),
    Entity("max_grid_charge_power", "Max grid charge power", Component.NUMBER, StateKey.MAX_GRID_CHARGE_W,
           device_class="power", unit="W", command="max_grid_charge_w", number=NumberSetting.MAX_GRID_CHARGE_W, step=100,
           category="config"),
    Entity("price_cap", "Grid charge price cap", Component.NUMBER, StateKey.PRICE_CAP, unit="{currency}/kWh",
           command="price_cap", number=NumberSetting.PRICE_CAP, step=0.01, icon="mdi:cash-lock", category="config"),
    Entity("price_cap_remove", "Remove grid charge price cap", Component.BUTTON, command="price_cap",
           payload=NO_VALUE_PAYLOAD, icon="mdi:cash-remove", category="config"),
    Entity("replan", "Re-plan now", Component.BUTTON, command="replan", icon="mdi:refresh"),
    Entity("override_cancel", "Cancel override", Component.BUTTON, command="override_cancel", icon="mdi:cancel"),
    Entity("override", "Override (JSON)", Component.TEXT, StateKey.OVERRIDE, "{{ value_json.command }}", command="override",
           icon="mdi:hand-back-right"),
    Entity("override_ends", "Override ends", _S, StateKey.OVERRIDE, _v("expires"), "timestamp", icon="mdi:timer-sand",
           attributes_template="{{ {'mode': value_json.mode, 'source': value_json.source, 'in_force': value_json.in_force} | tojson }}"),
    Entity("goals", "Battery goals", _S, StateKey.GOALS, "{{ value_json.summary[:255] }}", icon="mdi:battery-clock",
           attributes_template="{{ {'notes': value_json.notes} | tojson }}"),
    Entity("goal_unreachable", "Battery goal not reachable", Component.BINARY_SENSOR, StateKey.GOALS,
           "{{ 'OFF' if value_json.reachable else 'ON' }}", "problem",
           attributes_template="{{ {'notes': value_json.notes} | tojson }}"),
    Entity("goal_target", "SoC target (JSON)", Component.TEXT, StateKey.GOALS, "{{ value_json.target_command }}",
           command="goal_target", icon="mdi:battery-arrow-up"),
    Entity("goal_target_cancel", "Cancel SoC target", Component.BUTTON, command="goal_cancel", payload="target",
           icon="mdi:battery-remove"),
    Entity("backup_reserve", "Backup reserve", _S, StateKey.GOALS, _v("reserve_pct"), "battery", "measurement", "%",
           precision=0, attributes_template="{{ {'until': value_json.reserve_until} | tojson }}"),
    Entity("goal_reserve", "Backup reserve (JSON)", Component.TEXT, StateKey.GOALS, "{{ value_json.reserve_command }}",
           command="goal_reserve", icon="mdi:battery-lock"),
    Entity("goal_reserve_cancel", "Cancel backup reserve", Component.BUTTON, command="goal_cancel", payload="reserve",
           icon="mdi:battery-lock-open"),
    Entity("inverter_unresponsive", "Inverter not following commands", Component.BINARY_SENSOR, StateKey.HEALTH,
           "{{ 'ON' if value_json.inverter_unresponsive else 'OFF' }}", "problem", category="diagnostic",
           attributes_template="{{ {'detail': value_json.inverter_unresponsive} | tojson }}"),
)
# fmt: on


def load_entities(name: str, load_type: str, on_request: bool) -> tuple[Entity, ...]:
    """A flexible load's entities: its output, next run, reason, enable switch, problem sensor,
    its requirement (a text taking the ``load_goal`` JSON without ``load``, a cancel button) and
    whether the plan meets it (a problem sensor, the reason as its attribute)."""
    topic = load_state_topic(name)
    title = name.replace("_", " ").capitalize()
    entities = [
        Entity(f"load_{name}_output", f"{title} output", _S, topic, _v("output"), icon="mdi:power-plug",
               attributes_template="{{ {'reason': value_json.reason[:1000], 'power_w': value_json.power_w, "
                                   "'planned': value_json.planned[:16]} | tojson }}"),
        Entity(f"load_{name}_next_run", f"{title} next run", _S, topic, _v("next_run"), "timestamp",
               icon="mdi:calendar-clock"),
        Entity(f"load_{name}_reason", f"{title} reason", _S, topic, "{{ value_json.reason[:255] }}",
               icon="mdi:comment-question"),
        Entity(f"load_{name}_enabled", f"{title} planned by hemsd", Component.SWITCH, topic,
               "{{ 'ON' if value_json.enabled else 'OFF' }}", command=load_command_key(name, "enabled"),
               icon="mdi:robot", category="config"),
        Entity(f"load_{name}_problem", f"{title} does not follow", Component.BINARY_SENSOR, topic,
               "{{ 'OFF' if value_json.reliable else 'ON' }}", "problem", category="diagnostic",
               attributes_template="{{ {'tried_again_at': value_json.unreliable_until} | tojson }}"),
        Entity(f"load_{name}_power", f"{title} power", _S, topic, _v("power_w"), "power", "measurement", "W",
               precision=0),
        Entity(f"load_{name}_goal_summary", f"{title} goal", _S, topic, "{{ (value_json.goal or 'none')[:255] }}",
               icon="mdi:flag-checkered"),
        Entity(f"load_{name}_goal", f"{title} {'done by' if load_type == 'appliance' else 'warm by'} (JSON)",
               Component.TEXT, topic, _v("goal_command"), command=load_command_key(name, "goal"),
               icon="mdi:clock-check"),
        Entity(f"load_{name}_goal_cancel", f"Cancel {name.replace('_', ' ')} goal", Component.BUTTON,
               command=load_command_key(name, "goal_cancel"), icon="mdi:flag-remove"),
        Entity(f"load_{name}_goal_unreachable", f"{title} goal not reachable", Component.BINARY_SENSOR, topic,
               "{{ 'ON' if value_json.goal_unreachable else 'OFF' }}", "problem",
               attributes_template="{{ {'reason': value_json.goal_unreachable[:255]} | tojson }}"),
    ]  # fmt: skip
    if load_type != "appliance":
        entities.append(
            Entity(
                f"load_{name}_temperature",
                f"{title} temperature",
                _S,
                topic,
                _v("temperature_c"),
                "temperature",
                "measurement",
                "°C",
                precision=1,
                attributes_template=(
                    "{{ {'source': value_json.temperature_source, "
                    "'reading_age_s': value_json.temperature_age_s} | tojson }}"
                ),
            )
        )
    if on_request:
        entities.append(
            Entity(
                f"load_{name}_request",
                f"{title} run",
                Component.BUTTON,
                command=load_command_key(name, "request"),
                icon="mdi:play",
            )
        )
    entities.append(
        Entity(
            f"load_{name}_reset",
            f"{title} reliable again",
            Component.BUTTON,
            command=load_command_key(name, "reset"),
            icon="mdi:restore",
            category="diagnostic",
        )
    )
    return tuple(entities)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """The Home Assistant device that groups every entity of one site."""

    site_id: str
    name: str
    sw_version: str
    currency: str = "PLN"
    phases: int = 1
    manufacturer: str = "hemsd"
    model: str = "Home energy controller"
    support_url: str | None = None

    def __post_init__(self) -> None:
        if not self.site_id or not all(c.isascii() and (c.isalnum() or c in "_-") for c in self.site_id):
            raise ValueError(f"DeviceInfo.site_id must be non-empty [A-Za-z0-9_-], got {self.site_id!r}")
        if self.phases not in (1, MAX_PHASES):
            raise ValueError(f"DeviceInfo.phases must be 1 or 3, got {self.phases!r}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"DeviceInfo.currency must be an ISO 4217 code, got {self.currency!r}")

    @property
    def device_id(self) -> str:
        return f"hemsd_{self.site_id}"

    @property
    def display_name(self) -> str:
        """The device's name in Home Assistant. Versions that ignore ``default_entity_id`` make entity
        ids from it (``sensor.<device name>_<entity name>``): it starts with hemsd so they stay hemsd's."""
        return self.name if self.name.lower().startswith("hemsd") else f"hemsd {self.name}"


def discovery_topic(prefix: str, device: DeviceInfo) -> str:
    return f"{prefix}/device/{device.device_id}/config"


def _component_config(
    entity: Entity, device: DeviceInfo, base_topic: str, limits: ControlLimits
) -> dict[str, object]:
    unique_id = f"{device.device_id}_{entity.key}"
    config: dict[str, object] = {
        "p": entity.component.value,
        "unique_id": unique_id,
        "default_entity_id": f"{entity.component.value}.{unique_id.replace('-', '_').lower()}",
        "name": entity.name,
    }
    optional: dict[str, object | None] = {
        "state_topic": f"{base_topic}/{entity.state}" if entity.state else None,
        "value_template": entity.template,
        "command_topic": f"{base_topic}/{entity.command}/set" if entity.command else None,
        "device_class": entity.device_class,
        "state_class": entity.state_class,
        "unit_of_measurement": entity.unit.format(currency=device.currency) if entity.unit else None,
        "suggested_display_precision": entity.precision,
        "icon": entity.icon,
        "entity_category": entity.category,
        "json_attributes_topic": f"{base_topic}/{entity.state}" if entity.attributes_template else None,
        "json_attributes_template": entity.attributes_template,
        "last_reset_value_template": entity.last_reset_template,
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    if entity.component is Component.SELECT:
        config["options"] = list(entity.options)
    elif entity.component is Component.NUMBER and entity.number is not None:
        config["min"], config["max"] = limits.number_range(entity.number)
        config["step"] = entity.step
        config["mode"] = "box"
    elif entity.component is Component.BUTTON:
        config["payload_press"] = entity.payload
    elif entity.component is Component.TEXT:
        config["max"] = TEXT_MAX_LENGTH
    return config


def discovery_payload(
    device: DeviceInfo, base_topic: str, limits: ControlLimits, entities: Sequence[Entity] = ENTITIES
) -> dict[str, object]:
    """The device discovery message; entities this site lacks (e.g. L2/L3 on one phase) are sent as removals."""
    components: dict[str, object] = {}
    for entity in entities:
        if entity.min_phases > device.phases:
            components[entity.key] = {"p": entity.component.value}  # only "p": Home Assistant removes it
        else:
            components[entity.key] = _component_config(entity, device, base_topic, limits)
    origin: dict[str, object] = {"name": "hemsd", "sw_version": device.sw_version}
    if device.support_url:
        origin["support_url"] = device.support_url
    return {
        "dev": {
            "identifiers": [device.device_id],
            "name": device.display_name,
            "manufacturer": device.manufacturer,
            "model": device.model,
            "sw_version": device.sw_version,
        },
        "o": origin,
        "avty_t": f"{base_topic}/{StateKey.STATUS}",
        "qos": 1,
        "cmps": components,
    }
