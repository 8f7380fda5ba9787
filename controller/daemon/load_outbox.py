"""What the loads' MQTT connection sends: each load's command and its state.

``<base>/load/<name>/command`` holds the output hemsd wants as the configured payload
(:func:`payload_of`), retained, sent when it changes and again every ``RESEND``; with
``via = "mqtt"`` it also goes to the device's own ``command_topic``, which is not retained (a
command due while the broker is away is sent on the first tick after it is back).
``<base>/load/<name>/state`` holds :class:`controller.control.load_state.LoadStatePayload`, retained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

from controller.config.loads import HeatPumpConfig, LoadConfig
from controller.control.load_state import LoadStatePayload
from controller.control.loads import LoadSwitcher
from drivers.mqtt import MqttClient

RESEND = timedelta(minutes=5)  # a device's own command topic is not retained: the command is repeated


def payload_of(config: LoadConfig, output: str) -> str:
    """The configured payload for an output."""
    sw = config.switch
    if isinstance(config, HeatPumpConfig):
        return {"boost": sw.payload_boost, "block": sw.payload_block}.get(output, sw.payload_normal)
    return sw.payload_on if output == "on" else sw.payload_off


class LoadOutbox:
    """The loads' commands and states, published on their connection."""

    def __init__(self, client: MqttClient, switcher: LoadSwitcher, now: Callable[[], datetime]) -> None:
        self.client, self.switcher, self.now = client, switcher, now
        self._sent: dict[str, tuple[str, datetime]] = {}

    def send(self, name: str, *, force: bool) -> None:
        """Load ``name``'s command, when it changed, is forced, or is due again."""
        load = self.switcher.loads[name]
        payload = payload_of(load.config, load.output)
        now = self.now()
        last = self._sent.get(name)
        if not force and last is not None and last[0] == payload and now - last[1] < RESEND:
            return
        if self.client.connected:  # else it is not sent: the first tick back sends it at once
            self._sent[name] = (payload, now)
        self.client.publish_state(f"{name}/command", payload)
        if load.config.switch.via == "mqtt":
            self.client.publish_to(load.config.switch.command_topic, payload)

    def publish(self, state: LoadStatePayload) -> None:
        self.client.publish_state(f"{state.name}/state", asdict(state))
