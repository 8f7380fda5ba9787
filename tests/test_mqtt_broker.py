"""MqttClient against a real mosquitto, observed by a second, independent paho client."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.mqtt_fixtures import (
    MQTT_PASSWORD,
    MQTT_USER,
    OBSERVER_PASSWORD,
    OBSERVER_USER,
    Observer,
    invalid_commands,
    make_certificates,
    mosquitto,
    secured_broker_config,
    tls_broker_config,
)
from support.servers import ServerProcess
from support.waiting import eventually

from controller.control.commands import (
    CommandRejectedError,
    ControlCommand,
    ControlMode,
    ModeCommand,
    NumberCommand,
    NumberSetting,
    OverrideCommand,
    ReplanCommand,
)
from controller.frontends.homeassistant.client import HomeAssistantClient
from controller.frontends.homeassistant.discovery import ENTITIES, DeviceInfo, StateKey
from controller.status.report import HealthState
from drivers.inverter.types import Snapshot
from drivers.mqtt import ConnectionState, MqttClient, MqttSettings, TlsSettings

SITE = "home"
BASE = f"hemsd/{SITE}"
STATUS = f"{BASE}/status"
DISCOVERY = f"homeassistant/device/hemsd_{SITE}/config"
DEVICE = DeviceInfo(site_id=SITE, name="Home", sw_version="0.1.0")
NOW = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
TESTS = Path(__file__).resolve().parent
WAIT_S = 30.0  # a bound against a hang; a loaded machine may take seconds where an idle one takes ms


def snapshot(pv_w: float) -> Snapshot:
    return Snapshot(
        time=NOW, pv_w=pv_w, load_w=800.0, grid_w=-1200.0, battery_w=-500.0, soc_pct=61.0, grid_v=(230.4,)
    )


class Commands:
    """The command callback: records what arrives; optionally rejects like the controller would."""

    def __init__(self) -> None:
        self.received: list[ControlCommand] = []
        self.reject_min_soc_above: float | None = None
        self.gate: asyncio.Event | None = None  # while set and clear, every command waits (a slow controller)

    async def __call__(self, command: ControlCommand) -> None:
        if self.gate is not None:
            await self.gate.wait()
        limit = self.reject_min_soc_above
        if isinstance(command, NumberCommand) and limit is not None and (command.value or 0) > limit:
            raise CommandRejectedError("min_soc", command.value, f"above the battery's maximum {limit}")
        self.received.append(command)


def make_client(port: int, commands: Commands, **options: object) -> MqttClient:
    settings = MqttSettings.for_site(
        SITE, "127.0.0.1", port=port, keepalive_s=5, reconnect_min_s=0.05, reconnect_max_s=0.4,
        connect_timeout_s=3.0, **options,
    )  # fmt: skip
    return HomeAssistantClient(settings, DEVICE, commands, now=lambda: NOW)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path) as server:
        yield server


@pytest.fixture
async def running(broker: ServerProcess) -> AsyncIterator[tuple[MqttClient, Commands]]:
    commands = Commands()
    client = make_client(broker.port, commands)
    await client.start()
    assert await client.wait_connected(WAIT_S), client.stats.last_error
    try:
        yield client, commands
    finally:
        await client.stop()


def observe(broker: ServerProcess, *topics: str) -> Observer:
    return Observer(broker.port, topics or ("#",))


async def test_discovery_retained_state_and_clean_offline(broker: ServerProcess) -> None:
    commands = Commands()
    client = make_client(broker.port, commands)
    client.publish_state(StateKey.MODE, ControlMode.AUTO)  # before connecting: kept and sent on connect
    await client.start()
    assert await client.wait_connected(WAIT_S), client.stats.last_error
    client.publish_snapshot(snapshot(3500.0))
    client.publish_state(StateKey.HEALTH, HealthState(("prices",), 12, 3, 40, None))
    await eventually(lambda: client.stats.published >= 5, WAIT_S, "five acknowledged publishes")

    observer = observe(broker)  # subscribes afterwards: everything it gets now was retained
    try:
        await eventually(lambda: observer.last(f"{BASE}/health") is not None, WAIT_S, "retained health")
        retained = {m.topic: m for m in observer.messages}
        assert all(m.retain for m in retained.values())
        assert retained[STATUS].payload == b"online"
        assert retained[f"{BASE}/mode"].payload == b"auto"
        assert retained[f"{BASE}/snapshot"].json()["pv_w"] == 3500.0  # type: ignore[index]
        assert retained[f"{BASE}/health"].json() == {
            "stale_sources": ["prices"], "spool_depth": 12, "inverter_writes_today": 3, "inverter_write_cap": 40,
            "last_error": None, "inverter_unresponsive": None,
        }  # fmt: skip

        discovery = retained[DISCOVERY].json()
        assert isinstance(discovery, dict)
        assert discovery["dev"]["identifiers"] == ["hemsd_home"]
        assert discovery["o"]["name"] == "hemsd"
        assert discovery["avty_t"] == STATUS
        cmps = discovery["cmps"]
        assert set(cmps) == {e.key for e in ENTITIES}
        for entity in ENTITIES:
            config = cmps[entity.key]
            assert config["p"] == entity.component.value
            if entity.min_phases > DEVICE.phases:
                assert config == {"p": entity.component.value}
                continue
            assert config["unique_id"] == f"hemsd_home_{entity.key}"
            assert config["default_entity_id"] == f"{entity.component.value}.hemsd_home_{entity.key}"
            assert config["name"] == entity.name
            if entity.state is not None:
                assert config["state_topic"] == f"{BASE}/{entity.state}"
            if entity.command is not None:
                assert config["command_topic"] == f"{BASE}/{entity.command}/set"
        assert cmps["battery_soc"]["device_class"] == "battery"
        assert cmps["battery_soc"]["unit_of_measurement"] == "%"
        assert cmps["grid_import_today"]["state_class"] == "total_increasing"
        assert cmps["net_cost_today"]["unit_of_measurement"] == "PLN"

        await client.stop()  # a clean stop publishes offline itself (no last will on DISCONNECT)
        await eventually(lambda: observer.payload(STATUS) == b"offline", WAIT_S, "offline after stop")
        assert client.stats.state is ConnectionState.STOPPED
    finally:
        observer.close()
        await client.stop()


async def test_home_assistant_birth_resends_discovery(
    running: tuple[MqttClient, Commands], broker: ServerProcess
) -> None:
    observer = observe(broker, DISCOVERY)
    try:
        await eventually(lambda: len(observer.on(DISCOVERY)) == 1, WAIT_S, "retained discovery")
        observer.publish("homeassistant/status", "online")
        await eventually(lambda: len(observer.on(DISCOVERY)) == 2, WAIT_S, "discovery re-sent after birth")
        assert not observer.on(DISCOVERY)[1].retain  # delivered live, i.e. published again just now
        observer.publish("homeassistant/status", "offline")
        await asyncio.sleep(0.3)
        assert len(observer.on(DISCOVERY)) == 2
    finally:
        observer.close()


async def test_command_round_trip(running: tuple[MqttClient, Commands], broker: ServerProcess) -> None:
    client, commands = running
    observer = observe(broker, f"{BASE}/error")
    try:
        observer.publish(f"{BASE}/mode/set", "force_charge")
        observer.publish(f"{BASE}/min_soc/set", "15")
        observer.publish(f"{BASE}/price_cap/set", "None")
        observer.publish(f"{BASE}/replan/set", "PRESS")
        observer.publish(
            f"{BASE}/override/set",
            json.dumps({"mode": "force_discharge", "power_w": 2500, "target_soc": 30, "minutes": 45}),
        )
        await eventually(lambda: len(commands.received) == 5, WAIT_S, "five commands")
        assert commands.received == [
            ModeCommand(mode=ControlMode.FORCE_CHARGE, received_at=NOW),
            NumberCommand(setting=NumberSetting.MIN_SOC, value=15.0, received_at=NOW),
            NumberCommand(setting=NumberSetting.PRICE_CAP, value=None, received_at=NOW),
            ReplanCommand(received_at=NOW),
            OverrideCommand(mode=ControlMode.FORCE_DISCHARGE, expires=NOW + timedelta(minutes=45), power_w=2500.0,
                            target_soc=30.0, received_at=NOW),
        ]  # fmt: skip

        commands.reject_min_soc_above = 90  # the controller may refuse a valid-looking command
        observer.publish(f"{BASE}/min_soc/set", "95")
        await eventually(lambda: len(observer.on(f"{BASE}/error")) == 1, WAIT_S, "an error report")
        error = observer.on(f"{BASE}/error")[0].json()
        assert isinstance(error, dict)
        assert (error["topic"], error["field"], error["value"]) == (f"{BASE}/min_soc/set", "min_soc", 95.0)
        assert "above the battery's maximum" in error["error"]
        assert len(commands.received) == 5
        assert client.stats.rejected_commands == 1
    finally:
        observer.close()


async def test_a_flood_of_settings_behind_a_slow_controller_ends_in_the_last_one(
    broker: ServerProcess,
) -> None:
    """250 mode toggles, then four goal cancels, while the controller is busy: each toggle replaces
    the one still waiting, so the last mode is applied (none refused); the cancels, which do not
    replace each other, fill the two places left and the rest are refused."""
    commands = Commands()
    commands.gate = asyncio.Event()
    client = make_client(broker.port, commands, max_pending_commands=3)
    await client.start()
    observer = observe(broker, f"{BASE}/error")
    try:
        assert await client.wait_connected(5.0)
        modes = ["force_charge" if i % 2 else "auto" for i in range(250)]  # the last: force_charge
        sent = [observer.client.publish(f"{BASE}/mode/set", mode, qos=1) for mode in modes]
        sent += [observer.client.publish(f"{BASE}/goal_cancel/set", "reserve", qos=1) for _ in range(4)]
        for info in sent:
            info.wait_for_publish(5)
        await eventually(lambda: client.stats.rejected_commands == 2, 5.0, "two cancels refused")
        commands.gate.set()
        await eventually(lambda: len(commands.received) >= 3, 5.0, "the waiting commands applied")
        await asyncio.sleep(0.2)
        kinds = [type(c).__name__ for c in commands.received]
        # the first toggle may have reached the controller before the flood: it waits at the gate
        assert kinds[-3:] == ["ModeCommand", "CancelGoalCommand", "CancelGoalCommand"], kinds
        assert len(commands.received) <= 4
        applied = [c for c in commands.received if isinstance(c, ModeCommand)]
        assert applied[-1].mode is ControlMode.FORCE_CHARGE
        errors = [m.json() for m in observer.on(f"{BASE}/error")]
        assert len(errors) == 2
        assert all(isinstance(e, dict) and "too many commands waiting" in str(e["error"]) for e in errors)
    finally:
        observer.close()
        await client.stop()


async def test_retained_commands_are_not_replayed(broker: ServerProcess) -> None:
    observer = observe(broker, f"{BASE}/error")
    observer.publish(f"{BASE}/mode/set", "force_discharge", retain=True)  # left on the broker by some tool
    commands = Commands()
    client = make_client(broker.port, commands)
    await client.start()
    try:
        await eventually(lambda: observer.last(f"{BASE}/error") is not None, WAIT_S, "an error report")
        error = observer.last(f"{BASE}/error").json()  # type: ignore[union-attr]
        assert isinstance(error, dict)
        assert (error["field"], error["value"]) == ("retain", True)
        await asyncio.sleep(0.2)
        assert commands.received == []
    finally:
        observer.publish(f"{BASE}/mode/set", "", retain=True)  # an empty retained message clears it
        observer.close()
        await client.stop()


async def test_a_thousand_invalid_payloads_change_nothing(
    running: tuple[MqttClient, Commands], broker: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    client, commands = running
    client.publish_state(StateKey.MODE, "auto")
    observer = observe(broker, f"{BASE}/#")
    generated = invalid_commands(1000)
    try:
        await eventually(lambda: observer.last(f"{BASE}/mode") is not None, WAIT_S, "retained mode")
        before = len(observer.messages)
        flooded_at = time.monotonic()
        for key, payload in generated:
            observer.client.publish(f"{BASE}/{key}/set", payload, qos=1)
        await eventually(lambda: len(observer.on(f"{BASE}/error")) == 1000, 2 * WAIT_S, "1000 error reports")
        await asyncio.sleep(0.2)
        flood_s = time.monotonic() - flooded_at
        assert commands.received == []
        assert client.stats.rejected_commands == 1000
        reports = [m.json() for m in observer.on(f"{BASE}/error")]
        for (key, _), report in zip(generated, reports, strict=True):
            assert isinstance(report, dict)
            assert report["topic"] == f"{BASE}/{key}/set"
            assert report["field"]
            assert report["error"]
            assert "value" in report
        published = [m.topic for m in observer.messages[before:] if not m.topic.endswith("/set")]
        assert set(published) == {f"{BASE}/error"}, "nothing but error reports was published"
        logged = [r for r in caplog.records if "rejected" in r.getMessage()]
        # one per 10 s: at most 3 over the second or two it takes, one more for each 10 s a loaded machine adds
        assert 1 <= len(logged) <= 3 + flood_s // 10, (
            f"{len(logged)} log lines for 1000 rejections in {flood_s:.1f} s"
        )
    finally:
        observer.close()


async def test_last_will_after_kill_9(broker: ServerProcess) -> None:
    observer = observe(broker, STATUS)
    child = subprocess.Popen(
        [sys.executable, str(TESTS / "support" / "mqtt_fixtures.py"), str(broker.port), SITE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(TESTS.parent), str(TESTS)))},
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 20.0)  # type: ignore[union-attr]
        assert line.strip() == b"connected", line + child.stderr.read()  # type: ignore[union-attr]
        await eventually(lambda: observer.payload(STATUS) == b"online", WAIT_S, "online from the child")
        child.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.wait, 5.0)
        await eventually(lambda: observer.payload(STATUS) == b"offline", WAIT_S, "the last will")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5.0)
        observer.close()
    late = observe(broker, STATUS)  # and the will is retained
    try:
        await eventually(lambda: late.last(STATUS) is not None, WAIT_S, "retained status")
        last = late.last(STATUS)
        assert last is not None
        assert last.payload == b"offline"
        assert last.retain
    finally:
        late.close()


async def test_broker_restart_reconnects_and_republishes(
    running: tuple[MqttClient, Commands], broker: ServerProcess
) -> None:
    client, commands = running
    client.publish_snapshot(snapshot(1000.0))
    await eventually(lambda: client.stats.unsent_topics == 0, WAIT_S, "snapshot delivered")

    await asyncio.to_thread(broker.stop)  # mosquitto runs without persistence: it forgets everything retained
    await eventually(lambda: not client.connected, WAIT_S, "client notices the broker is gone")
    client.publish_snapshot(snapshot(2000.0))
    client.publish_snapshot(snapshot(3000.0))  # supersedes 2000 W, which never left
    client.publish_state("event", "lost", retain=False)
    await eventually(
        lambda: client.stats.connect_failures >= 2,
        WAIT_S,
        "failed attempts with backoff, none of which may raise",
    )
    assert client.stats.state is ConnectionState.RETRYING
    assert "cannot connect" in (client.stats.last_error or "")
    # 2000 W superseded and the non-retained event: at least those two; a publish that was in
    # flight when the broker went away is dropped too (paho's unacknowledged queue ends with it)
    assert client.stats.dropped >= 2

    await asyncio.to_thread(broker.start)
    assert await client.wait_connected(WAIT_S), client.stats.last_error
    assert client.stats.reconnects == 1
    observer = observe(broker)
    try:
        await eventually(
            lambda: observer.last(f"{BASE}/snapshot") is not None, WAIT_S, "snapshot after restart"
        )
        assert observer.last(f"{BASE}/snapshot").json()["pv_w"] == 3000.0  # type: ignore[union-attr,index]
        await eventually(lambda: observer.last(DISCOVERY) is not None, WAIT_S, "discovery re-announced")
        await eventually(lambda: observer.last(STATUS) is not None, WAIT_S, "status re-announced")
        assert observer.payload(STATUS) == b"online"
        observer.publish(f"{BASE}/replan/set", "PRESS")  # subscriptions are back too
        await eventually(
            lambda: commands.received == [ReplanCommand(received_at=NOW)], WAIT_S, "command after restart"
        )
    finally:
        observer.close()


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[ServerProcess]:
    with mosquitto(tmp_path, secured_broker_config(tmp_path / "auth", BASE)) as server:
        yield server


async def test_wrong_credentials_back_off_without_crashing(secured: ServerProcess) -> None:
    commands = Commands()
    client = make_client(secured.port, commands, username=MQTT_USER, password="wrong")
    await client.start()
    try:
        await asyncio.sleep(1.5)
        within = client.stats.connect_failures
        await eventually(lambda: client.stats.connect_failures >= 2, WAIT_S, "attempts go on after a refusal")
        stats = client.stats
        assert not client.connected
        assert stats.state is ConnectionState.REFUSED
        assert "refused the connection for user 'hemsd'" in (stats.last_error or "")
        assert "authori" in (stats.last_error or "").lower()
        # backoff 0.05 s doubling to 0.4 s with jitter: a handful of attempts in 1.5 s (fewer on a
        # loaded machine), not a busy loop
        assert within <= 12, stats
    finally:
        await client.stop()

    anonymous = make_client(secured.port, commands)
    await anonymous.start()
    try:
        await eventually(
            lambda: anonymous.stats.state is ConnectionState.REFUSED, WAIT_S, "anonymous refused"
        )
        assert "anonymous (no username configured)" in (anonymous.stats.last_error or "")
    finally:
        await anonymous.stop()


async def test_right_credentials_within_the_acl(secured: ServerProcess) -> None:
    commands = Commands()
    client = make_client(secured.port, commands, username=MQTT_USER, password=MQTT_PASSWORD)
    observer = Observer(
        secured.port, (f"{BASE}/#", DISCOVERY), username=OBSERVER_USER, password=OBSERVER_PASSWORD
    )
    try:
        await client.start()
        assert await client.wait_connected(WAIT_S), client.stats.last_error
        client.publish_state(StateKey.MODE, "hold")
        await eventually(lambda: observer.last(f"{BASE}/mode") is not None, WAIT_S, "state under the ACL")
        assert observer.last(DISCOVERY) is not None
        observer.publish(f"{BASE}/mode/set", "self_use")
        await eventually(lambda: len(commands.received) == 1, WAIT_S, "command under the ACL")
    finally:
        observer.close()
        await client.stop()


async def test_tls_with_a_self_signed_ca(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "pki")
    stranger = make_certificates(tmp_path / "other-pki", name="other-ca")
    with mosquitto(tmp_path, tls_broker_config(certs)) as server:
        commands = Commands()
        client = make_client(server.port, commands, tls=TlsSettings(ca_file=certs.ca_file))
        observer = Observer(server.port, (f"{BASE}/#", DISCOVERY), ca_file=certs.ca_file)
        try:
            await client.start()
            assert await client.wait_connected(WAIT_S), client.stats.last_error
            await eventually(lambda: observer.last(DISCOVERY) is not None, WAIT_S, "discovery over TLS")
            # (the retained status may reach an observer that subscribed late after the discovery)
            await eventually(lambda: observer.payload(STATUS) == b"online", WAIT_S, "online over TLS")
        finally:
            observer.close()
            await client.stop()

        untrusting = make_client(server.port, commands, tls=TlsSettings(ca_file=stranger.ca_file))
        await untrusting.start()
        try:
            await eventually(lambda: untrusting.stats.connect_failures >= 2, WAIT_S, "failed TLS attempts")
            assert not untrusting.connected
            assert untrusting.stats.state is ConnectionState.RETRYING
            assert "certificate verify failed" in (untrusting.stats.last_error or "")
        finally:
            await untrusting.stop()


async def test_no_broker_at_start_then_one_appears(broker: ServerProcess) -> None:
    await asyncio.to_thread(broker.stop)  # the port is known and nothing listens on it
    commands = Commands()
    client = make_client(broker.port, commands)
    await client.start()
    try:
        client.publish_state(StateKey.MODE, "hold")
        client.publish_state(StateKey.MODE, "self_use")
        await eventually(lambda: client.stats.connect_failures >= 2, WAIT_S, "failed attempts")
        assert "Connection refused" in (client.stats.last_error or "")
        assert client.stats.state is ConnectionState.RETRYING
        await asyncio.to_thread(broker.start)
        assert await client.wait_connected(WAIT_S), client.stats.last_error
        assert client.stats.reconnects == 0  # the first successful connect is not a reconnect
        observer = observe(broker, f"{BASE}/mode")
        try:
            await eventually(
                lambda: observer.payload(f"{BASE}/mode") == b"self_use", WAIT_S, "latest mode flushed"
            )
            assert len(observer.on(f"{BASE}/mode")) == 1
        finally:
            observer.close()
        assert client.stats.dropped == 1  # "hold" never left: superseded, not replayed
    finally:
        await client.stop()
