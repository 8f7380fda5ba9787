"""``hemsd emulator`` as a process: serves the goodwe library, stops on its own or on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import time

import pytest

from controller.cli import emulator as emulator_cli
from drivers.inverter.goodwe import GoodWeConfig, GoodWeDriver
from drivers.inverter.types import Command, CommandKind


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(*args: str) -> subprocess.Popen[str]:
    code = "import sys; from controller.cli.emulator import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait_ready(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the banner is printed once the servers listen
    assert "GoodWe ET emulator" in line, (line, proc.stderr.read() if proc.stderr else "")
    return line


async def test_emulator_process_serves_udp_and_reports_totals() -> None:
    port = _free_udp_port()
    proc = _start("--udp", "--port", str(port), "--speed", "600", "--duration", "30", "--status-every", "0.2",
                  "--start", "2026-06-01T10:00:00+00:00")  # fmt: skip
    try:
        assert f"udp {port}" in _wait_ready(proc)
        driver = GoodWeDriver(GoodWeConfig("127.0.0.1", port, protocol="udp", timeout_s=0.5, retries=2))
        snap = await driver.read()
        assert snap.pv_w > 1000
        assert (await driver.apply(Command(CommandKind.CHARGE, 2000, 90))).ok
        await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "charge (eco group 1)" in out
    assert "totals: pv" in out
    assert "writes" in out


def test_emulator_process_stops_after_its_duration() -> None:
    started = time.monotonic()
    proc = _start("--port", "0", "--duration", "0.5", "--status-every", "0")
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "tcp " in out
    assert "totals:" in out
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tz", "Mars/Olympus"], "--tz: unknown time zone"),
        (["--start", "2026-06-01T10:00:00"], "--start must carry a UTC offset"),
        (["--drop-ratio", "2"], "faults.drop_ratio"),
        (["--soc", "120"], "initial_soc_pct"),
    ],
)
def test_bad_arguments_are_named(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    emulator_cli.configure_parser(parser)
    assert emulator_cli.run_command(parser.parse_args(args)) == 2
    assert message in capsys.readouterr().err


def test_port_in_use_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        parser = argparse.ArgumentParser()
        emulator_cli.configure_parser(parser)
        assert emulator_cli.run_command(parser.parse_args(["--port", str(port), "--duration", "1"])) == 1
    assert f"cannot serve on 127.0.0.1:{port}" in capsys.readouterr().err
