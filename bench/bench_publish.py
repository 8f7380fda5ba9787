"""The daemon's MQTT publishing cost: the publish job, the per-poll snapshot/action, today's account.

.venv/bin/python bench/bench_publish.py [--rounds 50]

Starts mosquitto (Debian package) on a free loopback port and the application in-process with the
emulated inverter and a static tariff, on a clock set to 23:30 local time. Today's history (10-s
samples from local midnight to then) is loaded into storage first, so that the energy/savings
account reads a nearly full day of 1-minute rollups, as it does on a site late in the evening.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path

import numpy as np

from controller.clock import AcceleratedClock
from controller.config.loading import load_config
from controller.daemon.wiring import create_application
from controller.frontends.homeassistant.publisher import Publisher
from controller.reports.accounting import TodayAccount, day_account
from drivers.days import day_window

CONFIG = """
[site]
id = "bench"
[inverter]
type = "emulator"
protocol = "udp"
[storage]
state_dir = "{state}"
[[prices.sources]]
type = "tou"
[prices.sources.prices]
all = 0.6
[mqtt]
host = "127.0.0.1"
port = {port}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"{name:<40} n={len(ms):4d}  median {statistics.median(ms):8.2f} ms  p95 {p95:8.2f} ms"


async def _time(rounds: int, step: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        await step()
        out.append(time.perf_counter() - started)
    return out


async def run(rounds: int, directory: Path, port: int) -> None:
    path = directory / "hemsd.toml"
    path.write_text(CONFIG.format(state=directory / "state", port=port), encoding="utf-8")
    config = load_config(path)
    tz = config.site.zone
    late = datetime.combine(datetime.now(tz).date(), dt_time(23, 30), tz)
    app = create_application(config, AcceleratedClock(late, speed=1.0), path)
    await app.start()
    try:
        data = app.parts.data
        now = app.clock.now()
        day = now.astimezone(tz).date()
        start = day_window(day, tz)[0]
        times = np.arange(start.timestamp() + 10, now.timestamp() - 60, 10.0)
        rng = np.random.default_rng(1)
        pv, load, battery = (
            rng.uniform(0, 4000, times.size),
            rng.uniform(200, 3000, times.size),
            rng.uniform(-3000, 3000, times.size),
        )
        await data.ingest(
            times, {"pv_w": pv, "load_w": load, "battery_w": battery, "grid_w": load - pv - battery}
        )
        print(f"today's history: {times.size} samples since {start.isoformat()}")
        publisher = next(f for f in app.frontends if isinstance(f, Publisher))
        assert publisher.client is not None
        assert await publisher.client.wait_connected(10)

        whole = await _time(rounds, lambda: day_account(data, day, tz))
        print(_summary("day_account (today, whole read)", whole))
        today = TodayAccount(data, tz)
        await today.read()  # the first read settles the day so far
        print(_summary("TodayAccount.read (incremental)", await _time(rounds, today.read)))
        print(_summary("publish job (steady: unchanged not sent)", await _time(rounds, app.publish)))

        async def publish_all() -> None:
            publisher._sent.clear()  # as after a (re)connect: every value is encoded and sent
            await publisher.publish()

        print(_summary("publish job (everything sent)", await _time(rounds, publish_all)))
        print(_summary("after_poll (snapshot + action)", await _time(rounds, publisher.after_poll)))
        print(_summary("after_replan (plan + action)", await _time(rounds, publisher.after_replan)))
        slots = len(app.plan.slots) if app.plan else 0
        print(
            f"plan slots {slots}; max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
        )
    finally:
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        port = _free_port()
        config = directory / "mosquitto.conf"
        config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n")
        broker = subprocess.Popen(
            [mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            time.sleep(0.3)
            asyncio.run(run(args.rounds, directory, port))
        finally:
            broker.terminate()
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
