"""A flood of live load controls: 200 toggles of a load's "enabled" switch over a real mosquitto
make a few plans, not 200, and the last plan follows the last toggle.

The daemon as a process (``hemsd run``, its emulated inverter in process), Home Assistant played
by an MQTT client; the plans are counted in the daemon's database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from support.config import FLAT_TARIFF
from support.mqtt_fixtures import Observer, mosquitto
from support.waiting import wait_until

from controller.daemon.replan_soon import GAP_S

BASE = "hemsd/flood"
TOGGLES = 200
CONFIG = (
    """
[site]
id = "flood"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
[storage]
state_dir = "{state}"
commit_interval_s = 0.2
"""
    + FLAT_TARIFF
    + """
[mqtt]
host = "127.0.0.1"
port = {port}
keepalive_s = 5
[[loads]]
name = "pool"
type = "appliance"
power_w = 700
duration_min = 120
earliest_start = "00:00"
latest_end = "23:45"
"""
)


def plans(state: Path) -> list[tuple[int, str]]:
    """(created ms, trigger) of every stored plan, oldest first."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state / 'hemsd.sqlite3'}?mode=ro", uri=True)) as db:
            return list(db.execute("SELECT created_ms, trigger FROM plans ORDER BY id"))
    except sqlite3.OperationalError:  # not created yet
        return []


def enabled(observer: Observer) -> object:
    message = observer.last(f"{BASE}/load/pool/state")
    return None if message is None else json.loads(message.payload).get("enabled")


def test_200_toggles_make_a_few_plans_and_the_last_follows_the_last_toggle(tmp_path: Path) -> None:
    with mosquitto(tmp_path) as broker:
        state = tmp_path / "state"
        config = tmp_path / "hemsd.toml"
        config.write_text(CONFIG.format(state=state, port=broker.port), encoding="utf-8")
        observer = Observer(broker.port, (f"{BASE}/#",))
        log = tmp_path / "daemon.log"
        daemon = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env={k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")},
        )
        try:
            wait_until(lambda: plans(state) and enabled(observer) is True, 30, "the first plan, the load on")
            before = len(plans(state))
            sent = [
                observer.client.publish(f"{BASE}/load/pool_enabled/set", "OFF" if i % 2 else "ON", qos=1)
                for i in range(TOGGLES)  # the last one: OFF
            ]
            sent[-1].wait_for_publish(10)
            sent_ms = time.time() * 1000  # the broker has the last toggle: the daemon takes it after
            wait_until(lambda: plans(state)[-1][1] == "load pool enabled", 15, "a plan after the toggles")
            time.sleep(3 * GAP_S)  # whatever else would come
            made = [p for p in plans(state)[before:] if p[1] == "load pool enabled"]
            # the inbox takes the toggles in well under a second: one plan after the first gap,
            # perhaps a second for the toggles taken while it ran; a few at most, however slow
            assert 1 <= len(made) <= 5, made
            assert made[-1][0] >= sent_ms  # the last plan follows the last toggle
            wait_until(lambda: enabled(observer) is False, 10, "the last toggle in force")
        finally:
            observer.close()
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
        text = log.read_text()
        assert "Traceback" not in text
