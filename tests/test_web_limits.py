"""An unauthenticated flood cannot starve the control loop: 1,100 idle, half-sent HTTP requests
against ``hemsd run`` under the 1,024-file limit a service gets. The poll keeps its interval, no
reading is lost, and the log holds a few lines, not a traceback per refused connection."""

from __future__ import annotations

import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support.config import FLAT_TARIFF
from support.servers import free_port
from support.waiting import wait_until

CONNECTIONS = 1100
DESCRIPTOR_LIMIT = 1024
HELD_S = 15.0  # longer than the server's head timeout (10 s): some are closed and come back


def config_text(state: Path, port: int) -> str:
    return (
        f"""
[site]
id = "flood"
[inverter]
type = "emulator"
[daemon]
poll_interval_s = 1
[storage]
state_dir = "{state}"
commit_interval_s = 0.5
[web]
enabled = true
port = {port}
token = "flood-test-token-0123456789"
"""
        + FLAT_TARIFF
    )


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))


def readings(state: Path) -> int:
    with sqlite3.connect(state / "hemsd.sqlite3") as db:
        row = db.execute(
            "SELECT SUM(r.n) FROM rollup_1min r JOIN series s ON s.id = r.series "
            "WHERE s.measurement = 'snapshot' AND s.field = 'soc_pct'"
        ).fetchone()
    return int(row[0] or 0)


def test_idle_connections_under_a_low_descriptor_limit_starve_nothing(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * CONNECTIONS:  # this test's own sockets
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * CONNECTIONS), hard))
    state, port = tmp_path / "state", free_port()
    config = tmp_path / "hemsd.toml"
    config.write_text(config_text(state, port), encoding="utf-8")
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        preexec_fn=limited,  # noqa: PLW1509 - the only way to give the child its own limit
    )
    sockets: list[socket.socket] = []
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
        started = time.monotonic()
        for _ in range(CONNECTIONS):
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                connection.sendall(b"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never more
                sockets.append(connection)
            except OSError:
                continue  # refused or reset by the server: that is what it should do
        time.sleep(HELD_S)
        assert daemon.poll() is None, log.read_text()[-2000:]
        elapsed = time.monotonic() - started
    finally:
        for connection in sockets:
            connection.close()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=20) == 0
    text = log.read_text()
    assert readings(state) >= 0.9 * elapsed  # one a second, flood or not
    assert "Traceback" not in text
    assert "inverter read failed" not in text
    assert len(text) < 50_000, f"{len(text)} bytes of log"
    assert 1 <= text.count("connection(s) refused") <= 2
