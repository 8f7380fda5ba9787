"""Restart after kill -9 during a forced charge: the daemon reconciles within one tick and the
charging session is continued or closed, never duplicated. Real processes throughout: the
emulator, the daemon and the CLI; the test reads the inverter with the real goodwe driver."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.config import goodwe_process_config
from support.processes import cli, emulator_process, inverter_command, sessions, start_daemon
from support.waiting import wait_until

from drivers.inverter.types import CommandKind

CONFIG = goodwe_process_config("restart")


@pytest.fixture
def emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "40")


def force_charge_then_kill(tmp_path: Path, port: int) -> tuple[Path, Path, str]:
    state = tmp_path / "state"
    config = tmp_path / "hemsd.toml"
    config.write_text(CONFIG.format(port=port, state=state))
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(
            lambda: (state / "hemsd.sqlite3").exists() and "hemsd running" in log.read_text(),
            30,
            "daemon ready",
        )
        # the plan's choice for the hour: self-use, or with flat prices and a PV surplus an idle
        # export (a discharge at the smallest step); not a charge
        assert inverter_command(port) in (CommandKind.SELF_USE, CommandKind.DISCHARGE)
        cli(config, "force_charge", "--power-w", "3000", "--soc", "95", "--minutes", "30")
        wait_until(lambda: inverter_command(port) is CommandKind.CHARGE, 15, "inverter charging")
        wait_until(lambda: [s[2] for s in sessions(state)] == ["open"], 10, "an open charge session")
        time.sleep(1.5)  # a few ticks of energy in the session
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    # killed while charging: nothing returned the inverter to self-use
    assert inverter_command(port) is CommandKind.CHARGE
    ((session_id, kind, status),) = sessions(state)
    assert (kind, status) == ("charge", "open")
    return config, state, session_id


def test_restart_continues_a_charge_the_override_still_asks_for(tmp_path: Path, emulator_port: int) -> None:
    config, state, session_id = force_charge_then_kill(tmp_path, emulator_port)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: log.read_text().count("hemsd running") == 2, 30, "daemon restarted")
        time.sleep(1.5)
        assert inverter_command(emulator_port) is CommandKind.CHARGE
        assert sessions(state) == [(session_id, "charge", "open")]  # continued, not duplicated
        cli(config, "auto")
        wait_until(lambda: inverter_command(emulator_port) is not CommandKind.CHARGE, 15, "the charge ended")
        wait_until(lambda: sessions(state) == [(session_id, "charge", "closed")], 10, "session closed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    with sqlite3.connect(state / "hemsd.sqlite3") as db:
        (grid_kwh, pv_kwh) = db.execute(
            "SELECT grid_kwh, pv_kwh FROM sessions WHERE kind = 'charge'"
        ).fetchone()
        saved = json.loads(db.execute("SELECT value_json FROM state WHERE key = 'executor'").fetchone()[0])
    # the charge was metered: from the grid, or at the emulator's midday from its PV alone
    assert grid_kwh + pv_kwh > 0
    assert saved["command"]["kind"] == "self_use"  # stop left the inverter in self-use


def test_restart_ends_the_charge_when_it_is_no_longer_wanted(tmp_path: Path, emulator_port: int) -> None:
    config, state, session_id = force_charge_then_kill(tmp_path, emulator_port)
    cli(config, "undo")  # while the daemon is down
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: log.read_text().count("hemsd running") == 2, 30, "daemon restarted")
        wait_until(
            lambda: inverter_command(emulator_port) is not CommandKind.CHARGE,
            3,
            "the charge ended within a tick",
        )
        wait_until(
            lambda: sessions(state) == [(session_id, "charge", "closed")],
            10,
            "session closed, not duplicated",
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
