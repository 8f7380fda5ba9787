"""The web API and dashboard: latency under concurrent clients, the page's first render, daemon RSS.

.venv/bin/python bench/bench_web.py [--clients 20] [--requests 25] [--days 30] [--renders 5]

Loads ``--days`` of 10-s samples (PV, load, grid, battery, SoC, three voltages) into a fresh
state directory, then starts ``hemsd run`` (emulated inverter, static tariff, poll every 2 s)
as its own process and measures from this process on loopback:

- request latency with ``--clients`` concurrent clients, each sending ``--requests`` requests one
  after another: /api/state, the 30-day /api/history (15-min resolution, four fields) with a
  fixed window (the data manager's cache answers) and with a window ending "now" that moves on
  every request (read from SQLite each time); and /api/state from one client while the others
  read moving windows (the event loop it shares with the control loop stays responsive);
- the page's time to first render in headless Chromium (tests/chromium.py): from navigation
  start to the ``hemsd-first-render`` performance mark (state and plan drawn), ``--renders`` loads;
- the daemon's RSS (VmRSS, VmHWM from /proc) with the server off and on, idle and after the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np

from controller.config.loading import load_config_text
from controller.daemon.parts import storage_options
from storage.datamanager import DataManager

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the headless Chromium driver the page test uses

from support.chromium import chromium_page  # noqa: E402
from support.config import FLAT_TARIFF  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
CONFIG = (
    """
[site]
id = "bench"
[logging]
level = "WARNING"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 2
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
    + """[web]
enabled = {enabled}
port = {port}
token = "{token}"
"""
)


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def summary(name: str, samples: list[float], unit: str = "ms") -> str:
    values = sorted(samples)
    p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
    return f"{name:<46} n={len(values):4d}  median {statistics.median(values):8.1f} {unit}  p95 {p95:8.1f} {unit}"


async def load_history(state: Path, days: int) -> int:
    config = load_config_text(CONFIG.format(state=state, enabled="false", port=0, token=TOKEN))
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True)
    async with DataManager(storage_options(config)) as data:
        end = datetime.now(UTC).timestamp() - 120
        times = np.arange(end - days * 86400, end, 10.0)
        rng = np.random.default_rng(3)
        hours = (times % 86400) / 3600
        pv = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None) * 5000 * rng.uniform(0.5, 1, times.size)
        load = rng.uniform(200, 2500, times.size)
        battery = rng.uniform(-3000, 3000, times.size)
        columns = {
            "pv_w": pv,
            "load_w": load,
            "battery_w": battery,
            "grid_w": load - pv - battery,
            "soc_pct": 50 + 40 * np.sin(times / 43200),
            **{f"grid_v{i}": 230 + rng.normal(0, 3, times.size) for i in (1, 2, 3)},
        }
        for chunk in range(0, times.size, 86400 // 10):  # a day per call
            part = slice(chunk, chunk + 86400 // 10)
            await data.ingest(times[part], {k: v[part] for k, v in columns.items()})
        return int(times.size)


class Daemon:
    def __init__(self, directory: Path, state: Path, enabled: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / f"hemsd-{'on' if enabled else 'off'}.toml"
        config.write_text(
            CONFIG.format(state=state, enabled=str(enabled).lower(), port=self.port, token=TOKEN),
            encoding="utf-8",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(directory / "daemon.log").open("ab"),
        )

    def rss(self) -> str:
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024
        return f"RSS {fields['VmRSS']:6.1f} MiB (peak {fields['VmHWM']:6.1f} MiB)"

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def wait_ready(daemon: Daemon, seconds: float, web: bool) -> None:
    if not web:  # no server to ask: give it the same time to start and poll
        await asyncio.sleep(seconds)
        return
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{daemon.url}/api/health") as reply:
                    if reply.status == 200:
                        await asyncio.sleep(seconds)
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("the daemon did not answer its health probe")


async def latencies(url: str, clients: int, requests: int, target: object) -> tuple[list[float], float]:
    """Per-request latencies (ms) of ``clients`` concurrent clients; ``target(i)`` gives each path."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client(number: int) -> None:
            for i in range(requests):
                path = target(number * requests + i)  # type: ignore[operator]
                began = time.perf_counter()
                async with session.get(url + path) as reply:
                    await reply.read()
                    if reply.status != 200:
                        raise RuntimeError(f"{path}: HTTP {reply.status}")
                out.append((time.perf_counter() - began) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        return out, time.perf_counter() - began


def history_path(days: int, end: datetime) -> str:
    start = end - timedelta(days=days)
    return (
        f"/api/history?fields=pv_w,load_w,grid_w,soc_pct&resolution=auto"
        f"&start={start.isoformat().replace('+00:00', 'Z')}&end={end.isoformat().replace('+00:00', 'Z')}"
    )


async def first_renders(directory: Path, url: str, count: int) -> list[float]:
    out = []
    async with chromium_page(directory) as page:
        for i in range(count):
            await page.send("Page.navigate", url=f"{url}/?run={i}#token={TOKEN}")
            await page.wait_for(
                "performance.getEntriesByName('hemsd-first-render').length > 0", 30, "the first render"
            )
            out.append(await page.evaluate("performance.getEntriesByName('hemsd-first-render')[0].startTime"))
    return out


async def run(args: argparse.Namespace, directory: Path) -> None:
    state = directory / "state"
    began = time.perf_counter()
    samples = await load_history(state, args.days)
    print(f"history: {samples} samples over {args.days} days loaded in {time.perf_counter() - began:.1f} s")

    off = Daemon(directory, state, enabled=False)
    try:
        await wait_ready(off, 12.0, web=False)
        print(f"{'daemon, web server off, idle':<46} {off.rss()}")
    finally:
        off.stop()

    on = Daemon(directory, state, enabled=True)
    try:
        await wait_ready(on, 10.0, web=True)
        print(f"{'daemon, web server on, idle':<46} {on.rss()}")
        fixed = datetime.now(UTC).replace(microsecond=0)
        cases = (
            ("/api/state", lambda i: "/api/state"),
            (
                f"/api/history {args.days} days, same window (cached)",
                lambda i: history_path(args.days, fixed),
            ),
            (
                f"/api/history {args.days} days, window moves (SQLite)",
                lambda i: history_path(args.days, fixed + timedelta(seconds=i + 1)),
            ),
        )
        for name, target in cases:
            await latencies(on.url, 2, 2, target)  # warm up
            values, seconds = await latencies(on.url, args.clients, args.requests, target)
            rate = len(values) / seconds
            print(summary(f"{name}, {args.clients} clients", values) + f"  {rate:6.0f} req/s")
        moving = cases[2][1]
        busy = asyncio.create_task(latencies(on.url, args.clients - 1, args.requests, moving))
        state, _ = await latencies(on.url, 1, args.requests * 4, cases[0][1])
        await busy
        print(summary(f"/api/state while {args.clients - 1} clients read history", state))
        renders = await first_renders(directory, on.url, args.renders)
        print(summary("page: navigation to first render (Chromium)", renders))
        print(f"{'daemon, web server on, after the load':<46} {on.rss()}")
    finally:
        on.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--renders", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("CREDENTIALS_DIRECTORY", None)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
