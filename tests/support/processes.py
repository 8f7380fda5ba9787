"""hemsd as real processes in tests: the CLI command line, the daemon, the inverter it drives."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import CommandKind
from support.servers import free_port
from support.waiting import wait_until


def hemsd(*args: str) -> list[str]:
    return [sys.executable, "-m", "controller.cli", *args]


def inverter_command(port: int) -> CommandKind | None:
    async def read() -> CommandKind | None:
        driver = GoodWeDriver(
            GoodWeConfig(host="127.0.0.1", port=port, protocol="tcp", timeout_s=0.5, retries=1)
        )
        try:
            command = await driver.current_command()
            return command.kind if command else None
        except Exception:
            return None
        finally:
            await driver.close()

    return asyncio.run(read())


def sessions(state: Path) -> list[tuple[str, str, str]]:
    """The charging sessions (an idle export before the override is a discharge session)."""
    with sqlite3.connect(state / "hemsd.sqlite3") as db:
        return list(
            db.execute("SELECT id, kind, status FROM sessions WHERE kind = 'charge' ORDER BY start_ms")
        )


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    return subprocess.Popen(
        hemsd("run", "--config", str(config)), env=env, stderr=log.open("ab"), stdout=subprocess.DEVNULL
    )


def cli(config: Path, *args: str) -> None:
    result = subprocess.run(
        hemsd("override", "--config", str(config), *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def emulator_process(log_dir: Path, *args: str) -> Iterator[int]:
    """``hemsd emulator`` as a process on a free port (``args``: more options); yields the port
    once the inverter answers, stops it after."""
    port = free_port()
    proc = subprocess.Popen(
        hemsd("emulator", "--port", str(port), *args),
        stdout=subprocess.DEVNULL,
        stderr=(log_dir / "emulator.log").open("wb"),
    )
    try:
        wait_until(lambda: inverter_command(port) is not None, 20, "emulator up")
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
