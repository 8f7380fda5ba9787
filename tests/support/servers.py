"""Real servers for integration tests: InfluxDB 1.x, VictoriaMetrics and mosquitto as subprocesses.

Each server listens on a free loopback port and keeps its data in a temporary directory. A test
module wraps one in a fixture::

    @pytest.fixture
    def influxd(tmp_path):
        with start_influxd(tmp_path) as server:
            yield server

When the binary is missing the test is skipped with the reason, except under ``CI=true``, where a
missing server is a failure: CI must run every integration test.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

READY_TIMEOUT_S = 15.0


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = random.SystemRandom()


def free_port() -> int:
    """A port free for TCP and UDP on loopback, below the ephemeral range when there is room: a
    server restarted on its port (an outage test) must not find it taken as the source port of a
    client's outgoing connection."""
    high = _ephemeral_low() - 1
    for _ in range(200 if high > 20_000 else 0):
        port = _PORTS.randint(20_000, high)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        ):
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found


def require_binary(name: str) -> str:
    """Path of ``name``; skip the test when it is missing, or fail under CI=true."""
    path = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/bin") / name, Path("/usr/sbin") / name) if p.exists()), None
    )
    if path is None:
        reason = (
            f"{name} is not installed (Debian: apt-get install -y --no-install-recommends "
            "mosquitto influxdb victoria-metrics)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return path


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(200 <= response.status < 300)
    except (OSError, urllib.error.URLError):
        return False


def _tcp_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class ServerProcess:
    """One server binary run as a child process; stop and start it again on the same port and data."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    is_ready: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.tail_log()}")
            if self.is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT_S} s: {self.tail_log()}")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, then SIGKILL after 10 s) and wait until the port is closed."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        deadline = time.monotonic() + 5.0
        while _tcp_ok(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def tail_log(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@contextlib.contextmanager
def _running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_influxd(tmp_path: Path) -> contextlib.AbstractContextManager[ServerProcess]:
    """InfluxDB 1.x (Debian ``influxdb``): HTTP API with ``/write`` and ``/query``, no auth."""
    binary = require_binary("influxd")
    workdir = tmp_path / "influxd"
    workdir.mkdir()
    port, rpc_port = free_port(), free_port()
    config = workdir / "influxdb.conf"
    config.write_text(
        f"""reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{workdir}/meta"
[data]
  dir = "{workdir}/data"
  wal-dir = "{workdir}/wal"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[logging]
  level = "warn"
""",
        encoding="utf-8",
    )
    server = ServerProcess(
        name="influxd",
        argv=[binary, "-config", str(config)],
        port=port,
        workdir=workdir,
        is_ready=lambda: _http_ok(f"http://127.0.0.1:{port}/ping"),
    )
    return _running(server)


def start_victoria_metrics(tmp_path: Path) -> contextlib.AbstractContextManager[ServerProcess]:
    """VictoriaMetrics single node: accepts ``/api/v2/write`` and ``/write``; read with ``/api/v1/export``."""
    binary = require_binary("victoria-metrics")
    workdir = tmp_path / "victoria"
    workdir.mkdir()
    port = free_port()
    server = ServerProcess(
        name="victoria-metrics",
        argv=[
            binary,
            f"-storageDataPath={workdir / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ],
        port=port,
        workdir=workdir,
        is_ready=lambda: _http_ok(f"http://127.0.0.1:{port}/health"),
    )
    return _running(server)


def start_mosquitto(
    tmp_path: Path, extra_config: str = ""
) -> contextlib.AbstractContextManager[ServerProcess]:
    """mosquitto 2.x with an anonymous listener on loopback, no persistence, running as the caller."""
    binary = require_binary("mosquitto")
    workdir = tmp_path / "mosquitto"
    workdir.mkdir()
    port = free_port()
    config = workdir / "mosquitto.conf"
    user_line = "user root\n" if os.geteuid() == 0 else ""
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{user_line}{extra_config}",
        encoding="utf-8",
    )
    server = ServerProcess(
        name="mosquitto",
        argv=[binary, "-c", str(config)],
        port=port,
        workdir=workdir,
        is_ready=lambda: _tcp_ok(port),
    )
    return _running(server)


# --- reading back what a server stored --------------------------------------------------------------


def influx_query(server: ServerProcess, database: str, query: str) -> list[list[object]]:
    """Rows of the first series of an InfluxQL query (``epoch=ms``); empty when there is none."""
    params = urllib.parse.urlencode({"db": database, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{server.url}/query?{params}", timeout=10) as response:
        body = json.loads(response.read())
    results = body.get("results", [])
    if not results or "series" not in results[0]:
        return []
    values: list[list[object]] = results[0]["series"][0]["values"]
    return values


def influx_create_database(server: ServerProcess, database: str) -> None:
    data = urllib.parse.urlencode({"q": f'CREATE DATABASE "{database}"'}).encode()
    with urllib.request.urlopen(f"{server.url}/query", data=data, timeout=10) as response:
        response.read()


def victoria_export(server: ServerProcess, match: str) -> list[dict[str, object]]:
    """Series exported by VictoriaMetrics for a series selector, after forcing a flush."""
    with urllib.request.urlopen(f"{server.url}/internal/force_flush", timeout=10) as response:
        response.read()
    params = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"{server.url}/api/v1/export?{params}", timeout=10) as response:
        text = response.read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
