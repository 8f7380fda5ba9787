"""The daemon on a real mosquitto, as Home Assistant sees it: discovery, retained state, controls, last will.

The daemon runs the emulated inverter (the real goodwe driver over loopback) and a static tariff;
a second, independent paho client (``Observer``) plays Home Assistant.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from support.config import FLAT_TARIFF
from support.frontends import publisher_of
from support.mqtt_fixtures import Observer, invalid_commands, mosquitto
from support.waiting import eventually

from controller.clock import SystemClock
from controller.config.loading import load_config
from controller.config.models import HemsdConfig
from controller.control.commands import CommandRejectedError, ControlMode, parse_command
from controller.daemon.app import HemsdApp
from controller.daemon.wiring import create_application
from controller.frontends.homeassistant.discovery import ENTITIES, PAYLOAD_FIELDS, SNAPSHOT_FIELDS, StateKey
from controller.frontends.homeassistant.publisher import client_spec
from drivers.mqtt import ConnectionState
from storage.datamanager import DataManager, StorageOptions

SITE = "acc"
BASE = f"hemsd/{SITE}"
STATUS = f"{BASE}/status"
ERROR = f"{BASE}/error"
DISCOVERY = f"homeassistant/device/hemsd_{SITE}/config"
STATE_KEYS = (
    "snapshot",
    "plan",
    "action",
    "prices",
    "energy",
    "savings",
    "forecast",
    "health",
    "mode",
    "analytics",
    "bill",
)

CONFIG = (
    """
[site]
id = "{site}"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
publish_interval_s = 1
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
    + """{mqtt}
"""
)
MQTT = '[mqtt]\nhost = "127.0.0.1"\nport = {port}\nkeepalive_s = 5\n'


def write_config(path: Path, port: int | None, mqtt_extra: str = "") -> Path:
    mqtt = MQTT.format(port=port) + mqtt_extra if port is not None else ""
    path.write_text(CONFIG.format(site=SITE, state=path.parent / "state", mqtt=mqtt), encoding="utf-8")
    return path


def state(observer: Observer, key: str) -> object:
    message = observer.last(f"{BASE}/{key}")
    assert message is not None, f"nothing on {BASE}/{key}"
    return message.json()


def after(observer: Observer, mark: int, topic: str, test: Callable[[dict[str, object]], bool]) -> bool:
    """True when a message on ``topic`` received after the first ``mark`` messages passes ``test``."""
    return any(m.topic == topic and test(json.loads(m.payload)) for m in observer.messages[mark:])


def invalid_for(config: HemsdConfig, count: int) -> list[tuple[str, bytes]]:
    """``count`` generated invalid commands; the generator assumes the default limits, so the few that
    this site's limits (e.g. a price cap up to 100) accept are left out."""
    spec = client_spec(config, phases=1)
    assert spec is not None
    out: list[tuple[str, bytes]] = []
    for key, payload in invalid_commands(count + 200):
        try:
            parse_command(key, payload, spec.limits, datetime.now(UTC))
        except CommandRejectedError:
            out.append((key, payload))
    assert len(out) >= count
    return out[:count]


def check_discovery(payload: dict[str, object]) -> None:
    assert payload["avty_t"] == STATUS
    device = payload["dev"]
    assert isinstance(device, dict)
    assert device["identifiers"] == [f"hemsd_{SITE}"]
    components = payload["cmps"]
    assert isinstance(components, dict)
    assert set(components) == {e.key for e in ENTITIES}
    for entity in ENTITIES:  # the emulator has three phases: every entity is announced, none removed
        assert components[entity.key]["unique_id"] == f"hemsd_{SITE}_{entity.key}"
    assert components["mode"]["options"] == [m.value for m in ControlMode]
    assert components["mode"]["command_topic"] == f"{BASE}/mode/set"
    soc = components["battery_soc"]
    assert (soc["device_class"], soc["unit_of_measurement"], soc["state_class"]) == (
        "battery",
        "%",
        "measurement",
    )
    assert components["import_price"]["unit_of_measurement"] == "PLN/kWh"
    assert components["min_soc"]["command_topic"] == f"{BASE}/min_soc/set"


@pytest.mark.slow
async def test_home_assistant_sees_and_controls_the_daemon_and_gets_its_last_will(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as broker:
        config = write_config(tmp_path / "hemsd.toml", broker.port)
        battery = load_config(config).battery
        observer = Observer(broker.port)
        log = tmp_path / "daemon.log"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
        )
        try:
            await eventually(lambda: observer.payload(STATUS) == b"online", 30, "the daemon announces online")
            await eventually(
                lambda: all(observer.last(f"{BASE}/{k}") for k in STATE_KEYS), 15, "every state topic"
            )
            discovery = observer.last(DISCOVERY)
            assert discovery is not None
            check_discovery(discovery.json())  # type: ignore[arg-type]
            snapshot = state(observer, "snapshot")
            assert isinstance(snapshot, dict)
            assert set(SNAPSHOT_FIELDS) <= set(snapshot)
            assert snapshot["stale"] is False
            analytics = state(observer, "analytics")
            assert isinstance(analytics, dict)
            assert {"voltage", "energy"} <= set(analytics)
            bill = state(observer, "bill")
            assert isinstance(bill, dict)
            assert set(bill) == PAYLOAD_FIELDS[StateKey.BILL]
            assert bill["scheme"] == "per_slot"
            assert bill["total"] == pytest.approx(
                bill["energy"] + bill["fees"] + bill["vat"] - bill["export_paid"], abs=1e-3
            )
            plan = state(observer, "plan")
            assert isinstance(plan, dict)
            assert set(plan) == PAYLOAD_FIELDS[StateKey.PLAN]
            assert len(plan["slots"]) > 4
            assert state(observer, "action")["source"] in ("plan", "fallback")  # type: ignore[index]

            late = Observer(broker.port, topics=(f"{BASE}/#", DISCOVERY))  # joins later: retained state
            try:
                wanted = (DISCOVERY, STATUS, *(f"{BASE}/{k}" for k in ("snapshot", "plan", "action")))
                await eventually(lambda: all(late.last(t) for t in wanted), 30, "retained state")
                assert all(late.on(t)[0].retain for t in wanted)
            finally:
                late.close()

            # invalid payloads: each one reported on <base>/error, nothing changes
            before = {k: observer.payload(f"{BASE}/{k}") for k in ("mode", "override", "min_soc")}
            bad = [
                *invalid_for(load_config(config), 1000),
                ("min_soc", b"100"),
                ("override_cancel", b"PRESS"),
            ]
            mark = len(observer.on(ERROR))
            for key, payload in bad:
                observer.client.publish(f"{BASE}/{key}/set", payload, qos=1)
            await eventually(lambda: len(observer.on(ERROR)) - mark >= len(bad), 30, "every rejection")
            reports = [m.json() for m in observer.on(ERROR)[mark:]]
            assert len(reports) == len(bad)
            assert all(isinstance(r, dict) and set(r) == PAYLOAD_FIELDS[StateKey.ERROR] for r in reports)
            assert {"min_soc", "override_cancel"} <= {r["field"] for r in reports if isinstance(r, dict)}
            await asyncio.sleep(1.5)  # a publish cycle later
            assert {k: observer.payload(f"{BASE}/{k}") for k in before} == before
            assert before["mode"] == b"auto"

            # mode round trip: the emulator's battery charges and the action says why
            mark = len(observer.messages)
            observer.publish(f"{BASE}/mode/set", "force_charge")
            await eventually(
                lambda: after(observer, mark, f"{BASE}/action", lambda a: (a["action"], a["source"]) == ("charge", "override")),
                10,
                "the action follows the override",
            )  # fmt: skip
            await eventually(
                lambda: after(observer, mark, f"{BASE}/snapshot", lambda s: float(s["battery_w"]) < -1000),  # type: ignore[arg-type]
                10,
                "the battery charges",
            )  # fmt: skip
            assert observer.payload(f"{BASE}/mode") == b"force_charge"
            override = state(observer, "override")
            assert isinstance(override, dict)
            assert (override["power_w"], override["target_soc"]) == (
                battery.max_charge_w,
                battery.max_soc_pct,
            )

            observer.publish(f"{BASE}/min_soc/set", "25")
            await eventually(lambda: observer.payload(f"{BASE}/min_soc") == b"25.0", 10, "min SoC 25")

            daemon.send_signal(signal.SIGKILL)
            daemon.wait(timeout=10)
            await eventually(lambda: observer.payload(STATUS) == b"offline", 10, "the last will")
            last = Observer(broker.port, topics=(STATUS,))
            try:
                await eventually(lambda: last.payload(STATUS) == b"offline", 30, "offline is retained")
            finally:
                last.close()
        finally:
            observer.close()
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(timeout=10)
    text = log.read_text()
    assert "Traceback" not in text, text

    async with DataManager(StorageOptions(state_dir=tmp_path / "state")) as data:
        (override_row,) = await data.overrides()
        assert (override_row.mode, override_row.source) == ("force_charge", "mqtt")
        assert len(await data.events(kinds=["mqtt.command"])) == 2
        overlay = await data.get_state("runtime_settings")
        assert isinstance(overlay, dict)
        assert overlay["battery.min_soc_pct"]["value"] == 25.0  # type: ignore[index,call-overload]
        (version,) = [v for v in await data.config_versions() if v.source == "mqtt"]
        recorded = tomllib.loads(version.text)
        assert recorded["battery"]["min_soc_pct"] == 25.0
        assert recorded["mqtt"]["port"] == broker.port


async def keep_polling(app: HemsdApp, stop: asyncio.Event, limit: int = 2000) -> int:
    """Run the poll job back to back (as the scheduler would, only faster) until ``stop``; the number of polls."""
    polls = 0
    while not stop.is_set() and polls < limit:
        await app.poll()
        polls += 1
        await asyncio.sleep(0.05)
    return polls


async def test_a_broker_restart_loses_no_snapshot_and_the_daemon_announces_itself_again(
    tmp_path: Path,
) -> None:
    with mosquitto(tmp_path) as broker:
        app = create_application(
            load_config(write_config(tmp_path / "hemsd.toml", broker.port)), SystemClock()
        )
        started_at = app.clock.now()
        await app.start()
        client = publisher_of(app).client
        assert client is not None
        stop = asyncio.Event()
        polling = asyncio.create_task(keep_polling(app, stop))
        try:
            try:
                assert await client.wait_connected(10)
                await asyncio.sleep(0.5)
                await asyncio.to_thread(broker.stop)
                await eventually(lambda: not client.connected, 30, "the client notices the broker is gone")
                await asyncio.sleep(1.5)  # the broker is away; the daemon goes on
                await asyncio.to_thread(broker.start)
                await eventually(lambda: client.connected, 20, "the client reconnects")
                assert client.stats.reconnects == 1
                assert client.stats.state is ConnectionState.CONNECTED

                fresh = Observer(broker.port, topics=(DISCOVERY, STATUS, f"{BASE}/snapshot"))
                try:  # the broker kept nothing (no persistence): whatever it holds was sent again
                    await eventually(
                        lambda: bool(fresh.last(DISCOVERY)) and fresh.payload(STATUS) == b"online",
                        30,
                        "announced again",
                    )
                    check_discovery(fresh.last(DISCOVERY).json())  # type: ignore[union-attr,arg-type]
                    await eventually(
                        lambda: len(fresh.on(f"{BASE}/snapshot")) >= 2, 30, "snapshots flow again"
                    )
                finally:
                    fresh.close()
            finally:
                stop.set()
                polls = 1 + await polling  # start() polls once
            data = app.parts.data
            await data.flush()
            end = app.clock.now()
            raw = await data.history(["soc_pct"], started_at, end, resolution="raw")
            minutes = await data.history(["soc_pct"], started_at, end, resolution="1min")
            assert raw.data is not None
            assert minutes.data is not None
            times = raw.data.times[np.isfinite(raw.data.fields["soc_pct"].last)]
            assert times.size == polls  # every poll is in memory ...
            assert int(minutes.data.fields["soc_pct"].count.sum()) == polls  # ... and in SQLite
            assert float(np.diff(times).max()) < 1.0  # the MQTT outage never held the polls up
        finally:
            await app.stop()


async def test_a_changed_mqtt_section_builds_a_new_client(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as broker:
        path = write_config(tmp_path / "hemsd.toml", broker.port)
        observer = Observer(broker.port)
        app = create_application(load_config(path), SystemClock(), path)
        await app.start()
        try:
            await eventually(lambda: observer.payload(STATUS) == b"online", 10, "online")
            await app.reconfigure(load_config(write_config(path, broker.port, 'base_topic = "house/main"\n')))
            await eventually(
                lambda: observer.payload("house/main/status") == b"online" and observer.payload(STATUS) == b"offline",
                10,
                "the new base topic is online, the old one offline",
            )  # fmt: skip
            discovery = observer.last(DISCOVERY)
            assert discovery is not None
            assert discovery.json()["avty_t"] == "house/main/status"  # type: ignore[index]
            await eventually(lambda: bool(observer.last("house/main/snapshot")), 30, "state on the new base")

            await app.reconfigure(load_config(write_config(path, None)))  # [mqtt] removed
            assert publisher_of(app).client is None
            await eventually(lambda: observer.payload("house/main/status") == b"offline", 10, "offline")
        finally:
            observer.close()
            await app.stop()
