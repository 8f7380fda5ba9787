"""`hemsd run` as a real process: sd_notify READY/WATCHDOG/STOPPING, SIGTERM, live config edits.

The daemon runs the emulated inverter (the real goodwe driver over loopback UDP) and a static
tariff, so it needs no network and no hardware.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.config import FLAT_TARIFF

CONFIG = (
    """
[site]
id = "proc"
[logging]
level = "{level}"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
config_check_interval_s = 0.2
[battery]
capacity_kwh = {capacity}
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
)


def write_config(path: Path, state: Path, level: str = "INFO", capacity: float = 10.0) -> None:
    path.write_text(CONFIG.format(level=level, capacity=capacity, state=state))


class Notifications:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, text: str, timeout: float, count: int = 1) -> str:
        """The ``count``-th message holding ``text``, waiting for it at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.messages if text in m]
            if len(found) >= count:
                return found[count - 1]
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
        raise AssertionError(f"no {count} x {text!r} within {timeout} s; got {self.messages}")

    def close(self) -> None:
        self.sock.close()


def start_daemon(config: Path, notify: Notifications, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    return subprocess.Popen(
        [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


@pytest.fixture
def notify(tmp_path: Path):  # type: ignore[no-untyped-def]
    n = Notifications(tmp_path)
    yield n
    n.close()


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def test_ready_watchdog_stopping_and_clean_exit(tmp_path: Path, notify: Notifications) -> None:
    config = tmp_path / "hemsd.toml"
    write_config(config, tmp_path / "state")
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, notify, log)
    try:
        ready = notify.wait_for("READY=1", timeout=30)
        assert "STATUS=" in ready
        notify.wait_for("WATCHDOG=1", timeout=30, count=3)  # fed again and again, not once
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", timeout=10)
        assert stop(proc) == 0
        assert time.monotonic() - started < 10
    finally:
        stop(proc)
    text = log.read_text()
    assert "Traceback" not in text, text


def test_config_edits_apply_or_are_rejected_while_running(tmp_path: Path, notify: Notifications) -> None:
    config = tmp_path / "hemsd.toml"
    state = tmp_path / "state"
    write_config(config, state)
    log = tmp_path / "daemon.log"
    proc = start_daemon(config, notify, log)
    try:
        notify.wait_for("READY=1", timeout=30)
        write_config(config, state, level="DEBUG", capacity=12.5)
        deadline = time.monotonic() + 30
        while "configuration reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "configuration reloaded" in log.read_text()
        config.write_text(config.read_text().replace("capacity_kwh = 12.5", "capacity_kwh = -1"))
        deadline = time.monotonic() + 30
        while "configuration rejected" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        assert "configuration rejected, keeping the running one" in text
        assert "battery.capacity_kwh" in text
        assert "Traceback" not in text  # an expected failure is one line
        assert proc.poll() is None, "the daemon must keep running on an invalid config"
        # the valid edit took effect: the new battery size re-planned with trigger "config"
        assert "plan (config," in text
    finally:
        assert stop(proc) == 0


def test_invalid_config_at_start_exits_78(tmp_path: Path, notify: Notifications) -> None:
    config = tmp_path / "hemsd.toml"
    config.write_text("[battery]\ncapacity_kwh = 'big'\n")
    proc = start_daemon(config, notify, tmp_path / "daemon.log")
    assert proc.wait(timeout=30) == 78
    assert "battery.capacity_kwh" in (tmp_path / "daemon.log").read_text()
