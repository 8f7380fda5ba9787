"""The flexible loads' link to the broker: commands out, measured power and controls in.

One MQTT connection (client id ``<id>-loads``, base topic ``<base>/load``, its own last will on
``<base>/load/status``) carries, per load:

- ``<base>/load/<name>/command``: the output hemsd wants (``ON``/``OFF``, a heat pump's
  ``BOOST``/``NORMAL``/``BLOCK``, the configured payloads), retained, and with ``via = "mqtt"``
  also to the device's ``command_topic``; ``<base>/load/<name>/state``:
  :class:`controller.control.load_state.LoadStatePayload`, retained
  (:mod:`controller.daemon.load_outbox`);
- in: the device's ``power_topic``, a store's ``temperature_topic`` and the controls from Home
  Assistant (:mod:`controller.daemon.load_inbox`).

Every tick the switcher (:class:`controller.control.loads.LoadSwitcher`) decides each load's
output from the plan the daemon gives it (:meth:`LoadLink.use_plan`) and the house's net load
(:meth:`LoadLink.observe`); what changed or is due is sent, the states published, and the plan
made again when a load is marked unreliable or tried again, a required run is done, the goals
change (:mod:`controller.daemon.load_goal_link`) or a store is measured off its planned path.
The unreliable marks and the appliances' runs outlast a restart (:mod:`controller.daemon.load_marks`,
:mod:`controller.daemon.load_runs`); each load's
measured power is recorded with every reading and a water heater's draw learned from it
(:mod:`controller.daemon.load_draws`). Events are written to storage and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime

from controller.config.loads import LoadConfig
from controller.config.models import HemsdConfig
from controller.control.load_state import LOADS_TOPIC, LoadEvent, LoadStatePayload
from controller.control.loads import LoadSwitcher
from controller.daemon.load_draws import DrawLearner
from controller.daemon.load_goal_link import LoadGoalLink
from controller.daemon.load_inbox import ApplyCommand, LoadControls, listeners
from controller.daemon.load_marks import LoadMarks
from controller.daemon.load_outbox import LoadOutbox
from controller.daemon.load_runs import LoadRuns
from controller.loads.joint import LoadPlan
from drivers.inverter.types import Snapshot
from drivers.mqtt import MqttClient, MqttError, MqttSettings, TlsSettings
from storage import write_or_log
from storage.datamanager import DataManager
from storage.records import EventRecord, Severity

log = logging.getLogger(__name__)
WARNINGS = ("load.unreliable", "load.goal_missed", "load.goal_unreachable")  # the events stored as warnings
QUIET = ("load.goal_done", "load.goal_ended", "load.retried", "load.goal_reachable")  # logged at info
REPLAN_ON = ("load.unreliable", "load.retried", "load.goal_done")  # the events the plan is made again on


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
        self.switcher = LoadSwitcher(config.loads, config.site.zone)
        self.goal_link = LoadGoalLink(config, data, self.switcher, now)
        self.draws = DrawLearner(config, data, self.switcher, now)
        self.marks = LoadMarks(data, self.switcher)
        self.runs = LoadRuns(data, self.switcher)
        self.plan: LoadPlan | None = None
        self.net_w: float | None = None
        self._events: list[LoadEvent] = []
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
        self.listen = listeners(config.loads, self.switcher, now, self._powered, self._drifted)
        self.client = MqttClient(settings, LoadControls(self), now=now, listen=self.listen)
        self.outbox = LoadOutbox(self.client, self.switcher, now)

    async def start(self, stack: AsyncExitStack) -> None:
        await self.marks.restore()
        await self.runs.restore()
        await self.client.start()
        stack.push_async_callback(self.client.stop)
        stack.push_async_callback(self.to_defaults)  # runs before the client stops

    async def to_defaults(self) -> None:
        """Leave every load to its default (hemsd stops): its thermostat, its user's time."""
        self.switcher.set_all_default(self.now())
        for name in self.switcher.loads:
            self.outbox.send(name, force=True)
            self.outbox.publish(self.state(name, self.now()))

    def _powered(self, name: str, events: list[LoadEvent]) -> None:
        """A load's power reading gave rise to ``events``: one that does not follow is commanded again."""
        for event in events:
            if event.kind == "load.unresponsive":
                self.outbox.send(name, force=True)
        self._events.extend(events)

    def configs(self) -> tuple[LoadConfig, ...]:
        """The loads as the plan takes them: as at the start, a water heater's draw as learned."""
        return tuple(load.config for load in self.switcher.loads.values())

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
        changed, expired = await self.goal_link.read()
        self._events.extend(expired)
        return changed

    def state(self, name: str, now: datetime) -> LoadStatePayload:
        """What ``<base>/load/<name>/state`` says of the load now."""
        goal, command = self.goal_link.described(name, now)
        return self.switcher.payload(name, now, goal, command, self.draws.described.get(name, ""))

    def states(self, now: datetime) -> list[LoadStatePayload]:
        return [self.state(name, now) for name in self.switcher.loads]

    async def tick(self) -> None:
        """Switch as the plan and the house say, send what changed or is due, publish the states."""
        now = self.now()
        goals_changed = await self.read_goals()
        changed = {o.name for o in self.switcher.tick(now, self.plan, self.net_w)}
        events = self._events + self.switcher.take_events() + await self.goal_link.done(now)
        self._events = []
        for name in self.switcher.loads:
            self.outbox.send(name, force=name in changed)
            self.outbox.publish(self.state(name, now))
            events += self.goal_link.reach(name, now)
        await self.marks.store()
        await self.runs.store()
        replan = [e.kind for e in events if e.kind in REPLAN_ON]
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
