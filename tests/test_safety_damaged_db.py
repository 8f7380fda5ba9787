"""A kill -9 during a forced discharge, then a database damaged as by a power cut: the daemon
cannot open its storage, and before it gives up it returns the inverter to self-use and says
why in one line. Real processes: ``hemsd emulator``, ``hemsd run`` and the ``hemsd override`` CLI.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import cli, emulator_process, hemsd, inverter_command, start_daemon
from support.waiting import wait_until
from test_safety_restart import write_config, write_prices

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


def test_a_damaged_database_at_start_leaves_the_inverter_in_self_use(
    tmp_path: Path, emulator_port: int
) -> None:
    config, state = write_config(tmp_path, emulator_port)
    write_prices(tmp_path / "prices.csv", cheap_now=False)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_until(lambda: "hemsd running" in log.read_text(), 30, "daemon ready")
        cli(config, "force_discharge", "--minutes", "60", "--power-w", "4000", "--soc", "20")
        wait_until(lambda: inverter_command(emulator_port) is CommandKind.DISCHARGE, 30, "discharging")
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    assert inverter_command(emulator_port) is CommandKind.DISCHARGE  # nothing ended it
    damage(state / "hemsd.sqlite3")

    restarted = subprocess.run(
        hemsd("run", "--config", str(config)), capture_output=True, text=True, timeout=60, check=False
    )

    assert restarted.returncode == 1  # systemd restarts it; an invalid configuration (78) it would not
    assert inverter_command(emulator_port) is CommandKind.SELF_USE
    lines = [line for line in restarted.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1, restarted.stderr
    assert "storage cannot be opened" in lines[0]
    assert "the inverter was set to self-use" in lines[0]
    assert "Traceback" not in restarted.stderr
