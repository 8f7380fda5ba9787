"""MQTT-switched loads for the daemon's end-to-end tests: a paho client that follows the commands
hemsd publishes and reports the power each load draws, as a Tasmota plug or a Home Assistant
automation would.

Commands take effect at :meth:`LoadSimulator.latch` (the test calls it once per step, after the
broker has delivered them), so that what each load draws over a step does not depend on when a
message arrived. A water tank is simulated with its own thermostat (stopping at its ``max_c``) and draws hot
water by the configured profile; an appliance runs at its power while switched on; a load
listed in ``ignoring`` never switches on (a relay that does not work). A store with a
``temperature_topic`` reports its temperature there (JSON at ``temperature_json_path``, in one
message with its power when both share a topic) while ``sensing`` is set; its hot water may be
``draw_factor`` times what is configured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import paho.mqtt.client as paho

from controller.config.loads import ApplianceConfig, LoadConfig, WaterHeaterConfig
from controller.loads.thermal import DRAW_SHAPE
from support.mqtt_fixtures import Observer


@dataclass
class SimulatedLoad:
    config: LoadConfig
    command_topic: str
    on: bool = False  # as last commanded
    running: bool = False  # as latched at the last step: what it draws until the next
    temperature_c: float = 0.0
    on_minutes: list[datetime] = field(default_factory=list)  # when it drew power (each report)
    lowest_c: float = 1000.0
    sensing: bool = True  # a store's temperature sensor reports
    draw_factor: float = 1.0  # a tank's hot water: this many times its configured profile

    def power_w(self) -> float:
        c = self.config
        if not self.running:
            return 0.0
        if isinstance(c, WaterHeaterConfig):
            return c.element_w if self.temperature_c < c.max_c else 0.0
        if isinstance(c, ApplianceConfig):
            return max(c.profile())
        return 0.0


class LoadSimulator(Observer):
    """Follows ``<base>/load/<name>/command`` (or a device's own topic) and reports power."""

    def __init__(
        self, port: int, base: str, loads: tuple[LoadConfig, ...], tz: tzinfo, ignoring: tuple[str, ...] = ()
    ) -> None:
        self.tz = tz
        self.ignoring = ignoring
        self.loads: dict[str, SimulatedLoad] = {}
        for load in loads:
            sw = load.switch
            topic = sw.command_topic if sw.via == "mqtt" else f"{base}/load/{load.name}/command"
            sim = SimulatedLoad(load, topic)
            if isinstance(load, WaterHeaterConfig):
                sim.temperature_c = load.thermostat_c
            self.loads[load.name] = sim
        self.commands: list[tuple[str, str]] = []
        super().__init__(port, tuple(sim.command_topic for sim in self.loads.values()), name="loads")

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        payload = bytes(message.payload).decode()
        with self._lock:
            for name, sim in self.loads.items():
                if message.topic == sim.command_topic:
                    self.commands.append((name, payload))
                    if name not in self.ignoring:
                        sim.on = payload in (sim.config.switch.payload_on, sim.config.switch.payload_boost)

    def total_w(self) -> float:
        with self._lock:
            return sum(sim.power_w() for sim in self.loads.values())

    def advance(self, now: datetime, dt_h: float) -> None:
        """The loads' physics over ``dt_h`` hours up to ``now``: a tank heats and is drawn from."""
        with self._lock:
            for sim in self.loads.values():
                c = sim.config
                power = sim.power_w()
                if power > 0:
                    sim.on_minutes.append(now)
                if isinstance(c, WaterHeaterConfig):
                    hour = now.astimezone(self.tz).hour
                    drawn = c.draw_kwh_per_day * DRAW_SHAPE[hour] / sum(DRAW_SHAPE) * dt_h * sim.draw_factor
                    loss = c.loss_w_per_k * (sim.temperature_c - c.ambient_c) / 1000.0 * dt_h
                    sim.temperature_c += (power / 1000.0 * dt_h - drawn - loss) / c.capacity_kwh_per_k()
                    sim.temperature_c = min(sim.temperature_c, c.max_c)
                    sim.lowest_c = min(sim.lowest_c, sim.temperature_c)

    def latch(self) -> None:
        """Take the commands received so far into effect (from now to the next step)."""
        with self._lock:
            for sim in self.loads.values():
                sim.running = sim.on

    def report(self) -> None:
        """Publish each measured load's power on its power topic, and a sensed store's temperature."""
        for sim in self.loads.values():
            c = sim.config
            messages: dict[str, dict[str, object]] = {}
            if c.switch.power_topic:
                messages[c.switch.power_topic] = {"ENERGY": {"Power": round(sim.power_w())}}
            if isinstance(c, WaterHeaterConfig) and c.temperature_topic and sim.sensing:
                if c.temperature_json_path:
                    message = messages.setdefault(c.temperature_topic, {})
                    keys = c.temperature_json_path.split(".")
                    for key in keys[:-1]:
                        message = message.setdefault(key, {})  # type: ignore[assignment]
                    message[keys[-1]] = round(sim.temperature_c, 2)
                else:  # a plain number
                    self.client.publish(c.temperature_topic, f"{sim.temperature_c:.2f}", qos=1)
            for topic, body in messages.items():
                self.client.publish(topic, json.dumps(body), qos=1)
