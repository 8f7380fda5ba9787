"""MQTT client against a local mosquitto: publish-to-delivery latency, command round trip, parsing, memory.

.venv/bin/python bench/bench_mqtt.py [--messages 500] [--commands 200]

Starts mosquitto (Debian package) on a free loopback port. Latency is from ``publish_state`` to
the arrival at a second paho client; the command round trip is from a publish on ``<base>/mode/set``
to the command callback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.control.commands import CommandRejectedError, ControlCommand, ControlLimits, parse_command
from controller.frontends.homeassistant.client import HomeAssistantClient
from controller.frontends.homeassistant.discovery import DeviceInfo, PlanSlotState, PlanState, StateKey
from drivers.inverter.types import Snapshot
from drivers.mqtt import MqttSettings

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<34} n={len(ms):5d}  median {statistics.median(ms):8.3f} ms  p95 {p95:8.3f} ms"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _plan(slots: int) -> PlanState:
    return PlanState(
        created_at=T0, currency="PLN", total_cost=12.34, explanation="charge at night, discharge at the evening peak",
        slots=tuple(
            PlanSlotState(T0 + timedelta(minutes=15 * i), "charge", 40.0 + i % 50, 2500.0, -2400.0, 2500.0, 0.42, 0.3, 0.26)
            for i in range(slots)
        ),
    )  # fmt: skip


async def run(messages: int, commands: int, port: int) -> None:
    loop = asyncio.get_running_loop()
    delivered = asyncio.Event()
    arrival = [0.0]

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        arrival[0] = time.perf_counter()
        loop.call_soon_threadsafe(delivered.set)

    observer = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-observer")
    observer.on_message = on_message
    observer.connect("127.0.0.1", port)
    observer.subscribe("hemsd/bench/snapshot", qos=1)
    observer.loop_start()

    called = asyncio.Event()
    received = [0.0]

    async def on_command(command: ControlCommand) -> None:
        received[0] = time.perf_counter()
        called.set()

    settings = MqttSettings.for_site("bench", "127.0.0.1", port=port, max_queued_messages=10_000)
    client = HomeAssistantClient(settings, DeviceInfo("bench", "Bench", "0"), on_command)
    await client.start()
    if not await client.wait_connected(5.0):
        raise SystemExit(f"not connected: {client.stats.last_error}")
    await asyncio.sleep(0.2)  # the observer's retained copies of earlier state have arrived

    latency = []
    for i in range(messages):
        snapshot = Snapshot(time=T0, pv_w=float(i), load_w=500.0, grid_w=-100.0, battery_w=0.0, soc_pct=50.0)
        delivered.clear()
        sent = time.perf_counter()
        client.publish_snapshot(snapshot)
        await asyncio.wait_for(delivered.wait(), 5.0)
        latency.append(arrival[0] - sent)
    print(_summary("publish_snapshot -> delivered", latency))

    plan = _plan(192)
    started = time.perf_counter()
    for _ in range(50):
        client.publish_state(StateKey.PLAN, plan)
    encode_s = (time.perf_counter() - started) / 50
    print(f"{'publish_state(plan, 192 slots)':<34} {encode_s * 1000:8.3f} ms each (encode + hand to paho)")

    round_trip = []
    for i in range(commands):
        called.clear()
        sent = time.perf_counter()
        observer.publish("hemsd/bench/mode/set", "hold" if i % 2 else "auto", qos=1)
        await asyncio.wait_for(called.wait(), 5.0)
        round_trip.append(received[0] - sent)
    print(_summary("command publish -> callback", round_trip))
    await client.stop()
    observer.disconnect()
    observer.loop_stop()
    print(f"published {client.stats.published}, dropped {client.stats.dropped}")


def bench_parsing(count: int) -> None:
    limits = ControlLimits()
    payloads = [
        ("override", b'{"mode": "force_charge", "power_w": 3000, "target_soc": 80, "minutes": 60}'),
        ("min_soc", b"25"),
        ("mode", b"hold"),
        ("override", b'{"mode": "hold", "minutes": 5, "power_w": 1}'),
    ]
    samples = []
    for i in range(count):
        key, payload = payloads[i % len(payloads)]
        started = time.perf_counter()
        with contextlib.suppress(CommandRejectedError):  # rejections are part of the mix
            parse_command(key, payload, limits, T0)
        samples.append(time.perf_counter() - started)
    print(_summary("parse_command (valid and invalid)", samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--commands", type=int, default=200)
    args = parser.parse_args()
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    bench_parsing(20_000)
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "mosquitto.conf"
        user = "user root\n" if os.geteuid() == 0 else ""
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user}")
        broker = subprocess.Popen(
            [binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(0.3)
            asyncio.run(run(args.messages, args.commands, port))
        finally:
            broker.terminate()
            broker.wait(10)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
