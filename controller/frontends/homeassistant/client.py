"""The MQTT client as Home Assistant sees hemsd: discovery on connect, state out, commands in.

:class:`HomeAssistantClient` is the generic client of ``drivers.mqtt`` with hemsd's discovery
message as its announcement (sent again when Home Assistant publishes ``online`` on
``<prefix>/status``) and :class:`CommandInbox` reading ``<base>/<key>/set`` in hemsd's command
language; a command that does not fit is reported on ``<base>/error`` and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import cast

from controller.control.commands import (
    SUPERSEDING_COMMANDS,
    CommandRejectedError,
    ControlCommand,
    ControlLimits,
    parse_command,
)
from controller.frontends.homeassistant.discovery import (
    ENTITIES,
    DeviceInfo,
    Entity,
    StateKey,
    discovery_payload,
    discovery_topic,
    snapshot_state,
)
from drivers.inverter.types import Snapshot
from drivers.mqtt import Announcement, MessageRejectedError, MqttClient, MqttSettings

CommandHandler = Callable[[ControlCommand], Awaitable[None]]


class CommandInbox:
    """Commands on ``<base>/<key>/set``: parsed against ``limits`` on arrival, then handled in order."""

    def __init__(self, limits: ControlLimits, handler: CommandHandler, now: Callable[[], datetime]) -> None:
        self.limits = limits
        self._handler = handler
        self._now = now

    def parse(self, topic: str, key: str, payload: bytes) -> ControlCommand:
        try:
            return parse_command(key, payload, self.limits, self._now())
        except CommandRejectedError as error:
            raise self._translate(topic, error) from None

    async def apply(self, topic: str, message: object) -> None:
        try:
            await self._handler(cast("ControlCommand", message))
        except CommandRejectedError as error:
            raise self._translate(topic, error) from None

    def rejected(self, topic: str, field: str, value: object, reason: str) -> MessageRejectedError:
        return self._translate(topic, CommandRejectedError(field, value, reason))

    def supersedes(self, message: object) -> bool:
        return isinstance(message, SUPERSEDING_COMMANDS)

    def _translate(self, topic: str, error: CommandRejectedError) -> MessageRejectedError:
        return MessageRejectedError(str(error), error.report(topic, self._now()))


class HomeAssistantClient(MqttClient):
    """One site's connection to the broker, announced to Home Assistant as one device."""

    def __init__(
        self,
        settings: MqttSettings,
        device: DeviceInfo,
        on_command: CommandHandler,
        *,
        limits: ControlLimits | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        entities: tuple[Entity, ...] = ENTITIES,
    ) -> None:
        self.limits = limits or ControlLimits()
        prefix = settings.discovery_prefix
        discovery = discovery_payload(device, settings.base_topic, self.limits, entities)
        announcement = Announcement(
            discovery_topic(prefix, device), json.dumps(discovery, separators=(",", ":")), f"{prefix}/status"
        )
        super().__init__(
            settings, CommandInbox(self.limits, on_command, now), announcement=announcement, now=now
        )

    def publish_snapshot(self, snapshot: Snapshot) -> None:
        self.publish_state(StateKey.SNAPSHOT, snapshot_state(snapshot))
