"""The flexible loads' link to the broker: commands out, measured power and controls in.

One MQTT connection (client id ``<id>-loads``, base topic ``<base>/load``, its own last will on
``<base>/load/status``) carries, per load:

- ``<base>/load/<name>/command``: the output hemsd wants (``ON``/``OFF``, a heat pump's
  ``BOOST``/``NORMAL``/``BLOCK``, the configured payloads), retained: a Home Assistant
  automation or a device's own MQTT rule follows it; with ``via = "mqtt"`` the payload also goes
  to the device's ``command_topic``, sent again every ``RESEND`` and after each reconnect;
- ``<base>/load/<name>/state``: :class:`controller.control.load_state.LoadStatePayload`, retained;
- in: the device's ``power_topic`` (a number, or JSON with the number at ``power_json_path``),
  a store's ``temperature_topic`` (alike, at ``temperature_json_path``: where the store is,
  the model going on from it),
  and ``<base>/load/<name>_enabled/set`` (``ON``/``OFF``), ``<name>_request/set`` and
  ``<name>_reset/set`` (``PRESS``) from Home Assistant; ``<name>_goal/set`` (the ``load_goal``
  payload without ``load``) and ``<name>_goal_cancel/set`` (``PRESS``) go through the shared
  command applier, as the same commands from the HTTP API and the base topic do.

The loads' requirements (:mod:`controller.control.load_goals`) are read from storage on every
tick and before every plan; one whose run is done is removed there (event ``load.goal_done``),
as is one past its time (``load.goal_missed``: an appliance's run not done; ``load.goal_ended``);
a weekly one's occurrence ends so, the goal staying for the next. When the plan stops meeting a
load's requirement (:meth:`controller.control.loads.LoadSwitcher.unreachable`: the load
disabled or unreliable, its run not fitting before its time, its store not warm enough then),
the load's state says why (``goal_unreachable``) and a ``load.goal_unreachable`` event (a
warning) is written; ``load.goal_reachable`` when it meets it again.
A load marked unreliable is kept so in the data manager's state table (key ``load_marks``,
with when it is tried again) and marked again after a restart.
Each load's measured power is recorded with every reading (``flex_load_<name>_w``); a water
heater with ``draw_learn_days`` has its draw learned from it once a day
(:mod:`controller.loads.hot_water`), and the plans and its model take the learned profile.

The decisions are the :class:`controller.control.loads.LoadSwitcher`'s; events (a load that
does not follow) are written to storage and logged.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from controller.config.loads import ApplianceConfig, HeatPumpConfig, LoadConfig, WaterHeaterConfig
from controller.config.models import HemsdConfig
from controller.control import load_goals
from controller.control.applier import control_limits
from controller.control.commands import (
    BUTTON_PAYLOAD,
    CommandRejectedError,
    ControlCommand,
    load_goal_payload,
    parse_command,
)
from controller.control.load_model import measured_w
from controller.control.load_state import LOADS_TOPIC, LoadEvent, LoadStatePayload
from controller.control.loads import LoadSwitcher
from controller.loads.hot_water import by_local_hour, learned_draw
from controller.loads.joint import LoadPlan
from drivers.inverter.types import Snapshot
from drivers.mqtt import MessageRejectedError, MqttClient, MqttError, MqttSettings, TlsSettings
from storage import StorageError, write_or_log
from storage.datamanager import DataManager
from storage.records import EventRecord, Resolution, Severity

log = logging.getLogger(__name__)
RESEND = timedelta(minutes=5)  # a device's own command topic is not retained: the command is repeated
MARKS_KEY = "load_marks"
WARNINGS = ("load.unreliable", "load.goal_missed", "load.goal_unreachable")  # the events stored as warnings
QUIET = ("load.goal_done", "load.goal_ended", "load.retried", "load.goal_reachable")  # logged at info
CONTROLS = ("enabled", "request", "reset", "goal", "goal_cancel")
ApplyCommand = Callable[[ControlCommand, str], Awaitable[str]]


def payload_of(config: LoadConfig, output: str) -> str:
    """The configured payload for an output."""
    sw = config.switch
    if isinstance(config, HeatPumpConfig):
        return {"boost": sw.payload_boost, "block": sw.payload_block}.get(output, sw.payload_normal)
    return sw.payload_on if output == "on" else sw.payload_off


def reading_of(payload: bytes, path: str, unit: str = "W") -> float:
    """The number in a reading (a power in W, a temperature in degC): a number, or JSON with the
    number at the dotted ``path``."""
    text = payload.decode("utf-8", errors="replace").strip()
    if not path:
        value: object = float(text)
    else:
        value = json.loads(text)
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                raise ValueError(f"no {path!r} in {text[:80]!r}")
            value = value[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a number of {unit}: {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Control:
    name: str
    control: str  # one of CONTROLS
    payload: str


@dataclass(frozen=True, slots=True)
class _Command:
    """A command of the shared language from a load's own topic (its goal)."""

    command: ControlCommand


class _Controls:
    """The MQTT inbox of the loads' controls from Home Assistant."""

    def __init__(self, link: LoadLink) -> None:
        self.link = link

    def parse(self, topic: str, key: str, payload: bytes) -> object:
        found = [
            (key[: -len(c) - 1], c)
            for c in CONTROLS
            if key.endswith(f"_{c}") and key[: -len(c) - 1] in self.link.switcher.loads
        ]
        if not found:
            raise self.rejected(
                topic, "topic", key, f"no such load control (loads: {sorted(self.link.switcher.loads)})"
            )
        name, control = found[0]
        if control == "goal":
            return self._command(topic, "load_goal", lambda: load_goal_payload(name, payload))
        text = payload.decode("utf-8", errors="replace").strip()
        if control == "goal_cancel" and text == BUTTON_PAYLOAD:
            return self._command(topic, "load_goal_cancel", name.encode)
        wanted = ("ON", "OFF") if control == "enabled" else (BUTTON_PAYLOAD,)
        if text not in wanted:
            raise self.rejected(topic, control, text, f"expected one of {list(wanted)}")
        return _Control(name, control, text)

    def _command(self, topic: str, key: str, payload: Callable[[], bytes]) -> _Command:
        """The shared command ``key`` of the payload ``payload()`` makes, parsed as from any topic."""
        try:
            return _Command(parse_command(key, payload(), control_limits(self.link.config), self.link.now()))
        except CommandRejectedError as exc:
            raise self.rejected(topic, exc.field, exc.value, exc.reason) from None

    async def apply(self, topic: str, message: object) -> None:
        if isinstance(message, _Command):
            if self.link.apply is None:
                raise self.rejected(topic, "topic", topic, "load goals are not taken here")
            try:
                await self.link.apply(message.command, "mqtt")
            except CommandRejectedError as exc:
                raise self.rejected(topic, exc.field, exc.value, exc.reason) from None
            await self.link.tick()
            return
        if not isinstance(message, _Control):
            raise TypeError(f"not a load control: {message!r}")
        name, control, text = message.name, message.control, message.payload
        switcher = self.link.switcher
        if control == "enabled":
            switcher.set_enabled(name, text == "ON")
        elif control == "request":
            switcher.request(name)
        else:
            switcher.reliable_again(name)
        await self.link.tick()
        if self.link.replan is not None:  # the plan places it, or leaves it at its default, from now on
            await self.link.replan(f"load {name} {control}")

    def rejected(self, topic: str, field: str, value: object, reason: str) -> MessageRejectedError:
        document = {"topic": topic, "field": field, "value": str(value)[:100], "error": reason}
        return MessageRejectedError(f"{field}={value!r}: {reason}", document)


def _each(handlers: list[Callable[[str, bytes], None]]) -> Callable[[str, bytes], None]:
    """One topic's handlers (a device may report its power and temperature in one message)."""

    def handle(topic: str, payload: bytes) -> None:
        for handler in handlers:
            handler(topic, payload)

    return handle


class LoadLink:
    """The loads' MQTT connection and switcher for a running daemon."""

    def __init__(
        self,
        config: HemsdConfig,
        data: DataManager,
        now: Callable[[], datetime],
        replan: Callable[[str], Awaitable[None]] | None = None,
        apply: ApplyCommand | None = None,
    ) -> None:
        mqtt = config.mqtt
        if mqtt is None:
            raise MqttError("loads need an [mqtt] broker")
        self.config, self.data, self.now, self.replan, self.apply = config, data, now, replan, apply
        self.goals = load_goals.NO_LOAD_GOALS
        self.draws: dict[str, str] = {}  # a water heater's draw, in words: learned or configured
        self._learned_on: date | None = None
        self._marks: dict[str, datetime | None] = {}
        self.switcher = LoadSwitcher(config.loads, config.site.zone)
        self.plan: LoadPlan | None = None
        self.net_w: float | None = None
        self._events: list[LoadEvent] = []
        self._unreachable: dict[str, str] = {}  # why each load's requirement is not reachable ("": it is)
        self._sent: dict[str, tuple[str, datetime]] = {}
        self._drifted: set[str] = set()  # stores measured away from their planned path
        tls = None
        if mqtt.tls is not None:
            tls = TlsSettings(mqtt.tls.ca_file, mqtt.tls.cert_file, mqtt.tls.key_file, mqtt.tls.insecure)
        site = MqttSettings.for_site(
            config.site.id, mqtt.host, base_topic=mqtt.base_topic, client_id=mqtt.client_id
        )
        settings = MqttSettings(
            host=mqtt.host,
            port=mqtt.port,
            username=mqtt.username,
            password=mqtt.password.get_secret_value(),
            base_topic=f"{site.base_topic}/{LOADS_TOPIC}",
            client_id=f"{site.client_id}-loads",
            discovery_prefix=mqtt.discovery_prefix,
            keepalive_s=mqtt.keepalive_s,
            tls=tls,
        )
        handlers: dict[str, list[Callable[[str, bytes], None]]] = {}
        for load in config.loads:
            if load.switch.power_topic:
                handlers.setdefault(load.switch.power_topic, []).append(self._power_handler(load.name))
            if not isinstance(load, ApplianceConfig) and load.temperature_topic:
                handlers.setdefault(load.temperature_topic, []).append(self._temperature_handler(load.name))
        listen = {topic: _each(found) for topic, found in handlers.items()}
        self.client = MqttClient(settings, _Controls(self), now=now, listen=listen)

    async def start(self, stack: AsyncExitStack) -> None:
        await self.restore_marks()
        await self.client.start()
        stack.push_async_callback(self.client.stop)
        stack.push_async_callback(self.to_defaults)  # runs before the client stops

    async def restore_marks(self) -> None:
        """The loads marked unreliable before a restart, marked again (a mark that does not read
        is dropped, logged)."""
        try:
            stored = await self.data.get_state(MARKS_KEY)
        except StorageError as exc:
            log.warning("loads: the unreliable marks not readable: %s", exc)
            return
        for name, until in (stored or {}).items() if isinstance(stored, dict) else ():
            if name not in self.switcher.loads:
                continue
            try:
                when = None if until is None else datetime.fromisoformat(str(until))
            except ValueError:
                log.warning("load %s: its stored mark %r does not read; dropped", name, until)
                continue
            if when is not None and when.tzinfo is None:
                log.warning("load %s: its stored mark %r has no offset; dropped", name, until)
                continue
            self.switcher.mark_unreliable(name, when)
            log.warning("load %s: still marked unreliable (until %s)", name, until or "said reliable again")
        self._marks = self.switcher.marks()

    async def _store_marks(self) -> None:
        marks = self.switcher.marks()
        if marks == self._marks:
            return
        try:
            await self.data.put_state(
                MARKS_KEY, {n: None if u is None else u.isoformat() for n, u in sorted(marks.items())}
            )
        except StorageError as exc:
            log.warning("loads: the unreliable marks not stored: %s", exc)
            return
        self._marks = marks

    async def to_defaults(self) -> None:
        """Leave every load to its default (hemsd stops): its thermostat, its user's time."""
        self.switcher.set_all_default(self.now())
        for name in self.switcher.loads:
            self._send(name, force=True)
            self._publish(name, self.now())

    def _power_handler(self, name: str) -> Callable[[str, bytes], None]:
        path = self.switcher.loads[name].config.switch.power_json_path

        def handle(topic: str, payload: bytes) -> None:
            try:
                power = reading_of(payload, path)
            except ValueError as exc:
                log.warning("load %s: unreadable power on %s: %s", name, topic, exc)
                return
            events = self.switcher.power_reading(name, power, self.now())
            for event in events:
                if event.kind == "load.unresponsive":
                    self._send(name, force=True)
            self._events.extend(events)

        return handle

    def _temperature_handler(self, name: str) -> Callable[[str, bytes], None]:
        config = self.switcher.loads[name].config
        path = "" if isinstance(config, ApplianceConfig) else config.temperature_json_path

        def handle(topic: str, payload: bytes) -> None:
            try:
                drifted = self.switcher.temperature_reading(
                    name, reading_of(payload, path, "degC"), self.now()
                )
            except ValueError as exc:
                log.warning("load %s: unreadable temperature on %s: %s", name, topic, exc)
                return
            if drifted:
                self._drifted.add(name)

        return handle

    def measured_fields(self) -> dict[str, float]:
        """Each load's fresh measured power (``flex_load_<name>_w``), and whether it follows its
        own control rather than a plan (``flex_load_<name>_own``, 1 or 0), as recorded with the
        reading."""
        now = self.now()
        out = {}
        for name, load in self.switcher.loads.items():
            power = measured_w(load, now)
            if power is not None:
                out[f"flex_load_{name}_w"] = power
                on_its_own = load.schedule is None or load.unreliable or not load.enabled
                out[f"flex_load_{name}_own"] = 1.0 if on_its_own else 0.0
        return out

    def configs(self) -> tuple[LoadConfig, ...]:
        """The loads as the plan takes them: as at the start, a water heater's draw as learned."""
        return tuple(load.config for load in self.switcher.loads.values())

    async def learn_draws(self) -> None:
        """Once a local day: each learning water heater's draw from its recorded power."""
        tz = self.config.site.zone
        today = self.now().astimezone(tz).date()
        if self._learned_on == today:
            return
        for config in self.config.loads:
            if not isinstance(config, WaterHeaterConfig) or not config.draw_learn_days:
                continue
            first = today - timedelta(days=config.draw_learn_days)
            field, own = f"flex_load_{config.name}_w", f"flex_load_{config.name}_own"
            start = datetime.combine(first, time(0), tz).astimezone(UTC)
            result = await self.data.history(
                [field, own], start, datetime.combine(today, time(0), tz).astimezone(UTC), Resolution.HOUR1
            )
            if result.data is None:
                log.warning(
                    "load %s: its draw not learned, history unreadable: %s", config.name, result.message
                )
                return  # tried again at the next plan
            history = result.data
            days = config.draw_learn_days
            kwh = by_local_hour(history.times, history.fields[field].mean, first, days, tz)
            on_own = by_local_hour(history.times, history.fields[own].mean, first, days, tz, share=True)
            learned = learned_draw(kwh, on_own, config)
            runtime = self.switcher.loads[config.name]
            if learned is None:
                runtime.config = config
                whole = int(np.all(np.isfinite(kwh), axis=1).sum())
                self.draws[config.name] = (
                    f"as configured ({whole} of {config.draw_learn_min_days} days recorded)"
                )
            else:
                runtime.config = config.model_copy(update={"draw_profile_kwh": learned.profile_kwh})
                hours = (
                    f"its hours from {learned.shape_days} days on its thermostat"
                    if learned.shape_days
                    else "its hours as configured (too few days on its thermostat)"
                )
                self.draws[config.name] = (
                    f"learned from {learned.days} days: {learned.per_day_kwh:.1f} kWh a day, {hours}"
                )
            log.info("load %s: hot-water draw %s", config.name, self.draws[config.name])
        self._learned_on = today

    def use_plan(self, plan: LoadPlan | None) -> None:
        self.plan = plan

    def drawn_w(self) -> float:
        """What the loads draw now, in all (measured, else as commanded)."""
        return self.switcher.drawn_w(self.now())

    def observe(self, snapshot: Snapshot | None) -> None:
        """The house's net load (load - PV) from a fresh reading; None when there is none."""
        self.net_w = None if snapshot is None or snapshot.stale else snapshot.load_w - snapshot.pv_w

    async def read_goals(self) -> bool:
        """The loads' requirements as stored (those read before when storage fails) given to the
        switcher; whether they changed."""
        now, tz = self.now(), self.config.site.zone
        try:
            everything = await load_goals.load(self.data)
            stored = everything.current(now, tz)
            if stored != everything:  # those past their time end, and are said to have
                await load_goals.store(self.data, stored)
                self._events.extend(self._expired(everything.passed(now, tz)))
        except StorageError as exc:
            log.warning("loads: goals not readable, using those read before: %s", exc)
            stored = self.goals.current(now, tz)
        changed = stored != self.goals
        self.goals = stored
        self.switcher.set_requirements(stored.requirements(now, tz))
        return changed

    def _expired(self, passed: list[load_goals.Occurrence]) -> list[LoadEvent]:
        tz = self.config.site.zone
        out = []
        for occurrence in passed:
            name, text = occurrence.goal.load, occurrence.describe(tz)
            if occurrence.goal.temperature_c is None:
                out.append(LoadEvent(name, "load.goal_missed", f"{text}: its run was not done in time"))
            else:
                out.append(LoadEvent(name, "load.goal_ended", f"{text}: its time has come"))
        return out

    async def _goals_done(self, now: datetime) -> list[LoadEvent]:
        """The requirements whose run is done, ended in storage (a weekly one's occurrence)."""
        tz = self.config.site.zone
        events = []
        for name in self.switcher.take_done():
            found = self.goals.done(name, now, tz)
            if found is None:
                continue
            self.goals, occurrence = found
            try:
                stored = (await load_goals.load(self.data)).current(now, tz)
                after = stored.ended(occurrence.goal, occurrence.by)
                if after != stored:
                    await load_goals.store(self.data, after)
            except StorageError as exc:
                log.warning("load %s: its done goal not ended: %s", name, exc)
            text = occurrence.describe(tz)
            events.append(LoadEvent(name, "load.goal_done", f"{text}: done at {now:%H:%M} UTC"))
        self.switcher.set_requirements(self.goals.requirements(now, tz))
        return events

    def _reach(self, name: str, now: datetime) -> list[LoadEvent]:
        """An event when the plan stops (or starts again) meeting the load's requirement."""
        why = self.switcher.unreachable(name, now)
        before = self._unreachable.get(name, "")
        self._unreachable[name] = why
        if why and not before:
            return [LoadEvent(name, "load.goal_unreachable", f"{why} (not reachable)")]
        if before and not why and self.switcher.loads[name].requirement is not None:
            return [LoadEvent(name, "load.goal_reachable", f"{name}: its requirement is reachable again")]
        return []

    def state(self, name: str, now: datetime) -> LoadStatePayload:
        """What ``<base>/load/<name>/state`` says of the load now."""
        tz = self.config.site.zone
        goals = self.goals.of(name)
        text = "; ".join(g.describe(tz) for g in goals)
        upcoming = self.goals.next_goal(name, now, tz) or (goals[0] if goals else None)
        command = "" if upcoming is None else json.dumps(upcoming.command())
        return self.switcher.payload(name, now, text, command, self.draws.get(name, ""))

    def states(self, now: datetime) -> list[LoadStatePayload]:
        return [self.state(name, now) for name in self.switcher.loads]

    def _publish(self, name: str, now: datetime) -> None:
        self.client.publish_state(f"{name}/state", asdict(self.state(name, now)))

    async def tick(self) -> None:
        """Switch as the plan and the house say, send what changed or is due, publish the states."""
        now = self.now()
        goals_changed = await self.read_goals()
        changed = {o.name for o in self.switcher.tick(now, self.plan, self.net_w)}
        events = self._events + self.switcher.take_events() + await self._goals_done(now)
        self._events = []
        for name in self.switcher.loads:
            self._send(name, force=name in changed)
            self._publish(name, now)
            events += self._reach(name, now)
        await self._store_marks()
        replan = [e.kind for e in events if e.kind in ("load.unreliable", "load.retried", "load.goal_done")]
        if goals_changed:
            replan.append("load goals changed")
        if self._drifted:
            replan.append(f"{', '.join(sorted(self._drifted))} measured off its planned temperature")
            self._drifted.clear()
        if self.replan is not None and replan:
            await self.replan(replan[0].replace(".", " "))
        for event in events:
            severity = Severity.WARNING if event.kind in WARNINGS else Severity.INFO
            log.log(logging.INFO if event.kind in QUIET else logging.WARNING, "%s", event.message)
            await write_or_log(
                "load event",
                self.data.log_event(
                    EventRecord(now, event.kind, event.message, severity, {"load": event.name})
                ),
                log,
            )

    def _send(self, name: str, *, force: bool) -> None:
        load = self.switcher.loads[name]
        payload = payload_of(load.config, load.output)
        now = self.now()
        last = self._sent.get(name)
        if not force and last is not None and last[0] == payload and now - last[1] < RESEND:
            return
        self._sent[name] = (payload, now)
        self.client.publish_state(f"{name}/command", payload)
        if load.config.switch.via == "mqtt":
            self.client.publish_to(load.config.switch.command_topic, payload)
