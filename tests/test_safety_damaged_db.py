"""A kill -9 during a forced discharge, then a database damaged as by a power cut, or missing:

- damaged: the daemon moves it aside (kept), starts on the newest good backup (here none: an
  empty database), and ends the discharge that nothing asks for any more;
- missing while backups exist: the daemon creates nothing in its place, returns the inverter to
  self-use and exits 1 with one line that says how to restore.

Real processes: ``hemsd emulator``, ``hemsd run`` and the ``hemsd override`` CLI.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.processes import cli, emulator_process, hemsd, inverter_command, start_daemon
from support.waiting import wait_until
from test_safety_restart import write_config

from drivers.inverter.types import CommandKind


@pytest.fixture
def emulator_port(tmp_path: Path) -> Iterator[int]:
    yield from emulator_process(tmp_path, "--soc", "80", "--tz", "Europe/Warsaw")


def damage(database: Path) -> None:
    """The header overwritten and the write-ahead log lost, as a power cut mid-write can leave it."""
    with database.open("r+b") as file:
        file.write(b"\x00" * 100)
    for suffix in ("-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def flat_prices(path: Path) -> None:
    """Import at 0.80/kWh and export worth nothing for four days: self-use is the plan's choice."""
    first = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    times = (first + timedelta(minutes=15 * i) for i in range(4 * 96))
    path.write_text("start,price,export_price\n" + "".join(f"{t.isoformat()},0.8,0.0\n" for t in times))


def discharge_then_kill(tmp_path: Path, port: int) -> tuple[Path, Path, Path]:
    """The daemon forced to discharge at 4 kW, then killed: the inverter goes on discharging."""
    config, state = write_config(tmp_path, port)
    flat_prices(tmp_path / "prices.csv")
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
        cli(config, "force_discharge", "--minutes", "60", "--power-w", "4000", "--soc", "20")
        wait_until(lambda: inverter_command(port) is CommandKind.DISCHARGE, 30, "discharging")
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    assert inverter_command(port) is CommandKind.DISCHARGE  # nothing ended it
    return config, state, log


def test_a_damaged_database_is_moved_aside_and_the_forced_discharge_ends(
    tmp_path: Path, emulator_port: int
) -> None:
    config, state, log = discharge_then_kill(tmp_path, emulator_port)
    damage(state / "hemsd.sqlite3")
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: log.read_text().count("hemsd running") == 2, 30, "daemon restarted")
        # the override that asked for the discharge was in the damaged file: nothing asks for it now
        wait_until(lambda: inverter_command(emulator_port) is CommandKind.SELF_USE, 15, "self-use")
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    text = log.read_text()
    assert (
        "the database was damaged (its header is not SQLite's): moved aside to hemsd.sqlite3.damaged-" in text
    )
    assert len(list(state.glob("hemsd.sqlite3.damaged-*"))) == 1
    assert "Traceback" not in text


def test_a_missing_database_with_backups_leaves_the_inverter_in_self_use_and_says_how(
    tmp_path: Path, emulator_port: int
) -> None:
    config, state, _ = discharge_then_kill(tmp_path, emulator_port)
    backups = state / "backups"
    backups.mkdir()
    shutil.copyfile(state / "hemsd.sqlite3", backups / "hemsd-20261201T000000Z.sqlite3")
    (state / "hemsd.sqlite3").unlink()

    restarted = subprocess.run(
        hemsd("run", "--config", str(config)), capture_output=True, text=True, timeout=60, check=False
    )

    assert restarted.returncode == 1  # systemd restarts it; an invalid configuration (78) it would not
    assert inverter_command(emulator_port) is CommandKind.SELF_USE
    lines = [line for line in restarted.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1, restarted.stderr
    assert "is missing but" in lines[0]
    assert "hemsd db restore" in lines[0]
    assert "the inverter was set to self-use" in lines[0]
    assert "Traceback" not in restarted.stderr
    assert not (state / "hemsd.sqlite3").exists()  # nothing created in its place
