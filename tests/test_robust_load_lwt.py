"""hemsd killed (kill -9, a power cut of the Pi) while it switches loads: the broker says so on
``<base>/load/status`` (the loads' connection's last will) within 1.5 keep-alives, for a Home
Assistant automation or a device's own rule to fall back to its default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.config import FLAT_TARIFF
from support.mqtt_fixtures import Observer, mosquitto
from support.waiting import wait_until

CONFIG = (
    """
[site]
id = "lwt"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
[storage]
state_dir = "{state}"
[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
"""
    + FLAT_TARIFF
    + """
[[loads]]
name = "boiler"
type = "water_heater"
[loads.switch]
via = "mqtt"
command_topic = "cmnd/boiler/POWER"
"""
)
STATUS = "hemsd/lwt/load/status"


@pytest.mark.slow
def test_the_loads_status_turns_offline_within_a_keepalive_and_a_half_of_a_kill(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as broker:
        config = tmp_path / "hemsd.toml"
        config.write_text(CONFIG.format(state=tmp_path / "state", port=broker.port), encoding="utf-8")
        observer = Observer(broker.port, (STATUS, "hemsd/lwt/load/boiler/command"))
        daemon = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "log").open("wb"),
            env=dict(os.environ),
        )
        try:
            wait_until(lambda: observer.payload(STATUS) == b"online", 30, "the loads online")
            wait_until(lambda: observer.payload("hemsd/lwt/load/boiler/command") is not None, 30, "a command")
            daemon.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            wait_until(lambda: observer.payload(STATUS) == b"offline", 15, "the last will")
            assert time.monotonic() - killed <= 1.5 * 5 + 1.0
        finally:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait(10)
            observer.close()
