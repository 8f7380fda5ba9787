"""Memory of `hemsd run` as its own process, on real time, against `hemsd emulator` in another.

The daemon polls the emulated GoodWe ET over loopback UDP (the real goodwe driver), with a static
tariff, a temporary state directory and, when asked, a real InfluxDB 1.x and mosquitto. Its
VmRSS is sampled from /proc every few seconds; each minute prints the median and largest sample of
that minute and VmHWM (the peak so far). The emulator's RSS is not the daemon's and is not counted.

    .venv/bin/python bench/daemon_rss.py --minutes 5 [--influx] [--mqtt]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from support.config import FLAT_TARIFF

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the real servers the tests start

CONFIG = (
    """
[site]
id = "rss"
[logging]
level = "WARNING"
[daemon]
poll_interval_s = {poll}
[inverter]
type = "goodwe"
host = "127.0.0.1"
port = {port}
protocol = "udp"
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
    + """{influx}
{mqtt}
"""
)


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, MB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) / 1024.0
    return out


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def child(argv: list[str], log: Path, *, ready: str | None = None) -> Iterator[subprocess.Popen[str]]:
    """A process of ours, ended with SIGTERM (then SIGKILL) when the block ends."""
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE if ready else out, stderr=out, text=True
        )
    try:
        if ready is not None:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            if ready not in banner:
                raise RuntimeError(f"{argv[3]} did not start: {banner!r}; see {log}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def measure(
    daemon: subprocess.Popen[str], emulator: subprocess.Popen[str], minutes: int, sample_s: float
) -> None:
    start = time.monotonic()
    print("minute  VmRSS median  VmRSS max  VmHWM   (MB, daemon; emulator VmRSS)")
    for minute in range(1, minutes + 1):
        samples: list[float] = []
        while (left := start + minute * 60.0 - time.monotonic()) > 0:
            time.sleep(min(sample_s, left))
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with {daemon.returncode}")
            samples.append(status_mb(daemon.pid)["VmRSS"])
        hwm = status_mb(daemon.pid)["VmHWM"]
        other = status_mb(emulator.pid)["VmRSS"]
        print(
            f"{minute:6d}  {statistics.median(samples):12.1f}  {max(samples):9.1f}  {hwm:5.1f}"
            f"   ({len(samples)} samples; emulator {other:.1f})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=5)
    parser.add_argument("--poll", type=float, default=10.0, help="poll interval, s (default 10)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--influx", action="store_true", help="a real InfluxDB 1.x (v1 /write)")
    parser.add_argument("--mqtt", action="store_true", help="a real mosquitto")
    args = parser.parse_args()
    from support.servers import influx_create_database, start_influxd, start_mosquitto  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="hemsd-rss-") as tmp, contextlib.ExitStack() as stack:
        directory = Path(tmp)
        influx = mqtt = ""
        if args.influx:
            influxd = stack.enter_context(start_influxd(directory))
            influx_create_database(influxd, "hemsd")
            influx = f'[storage.influx]\n[storage.influx.server]\ntype = "v1"\nurl = "{influxd.url}"\n'
        if args.mqtt:
            broker = stack.enter_context(start_mosquitto(directory))
            mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
        port = free_udp_port()
        config = directory / "hemsd.toml"
        text = CONFIG.format(poll=args.poll, port=port, state=directory / "state", influx=influx, mqtt=mqtt)
        config.write_text(text)
        hemsd = [sys.executable, "-m", "controller.cli"]
        emulator = stack.enter_context(
            child(
                [*hemsd, "emulator", "--udp", "--port", str(port), "--status-every", "0"],
                directory / "emulator.log",
                ready="GoodWe ET emulator",
            )
        )
        os.environ.pop("NOTIFY_SOCKET", None)
        daemon = stack.enter_context(child([*hemsd, "run", "--config", str(config)], directory / "hemsd.log"))
        print(
            f"hemsd run (pid {daemon.pid}) polling every {args.poll:g} s for {args.minutes} min;"
            f" InfluxDB {'v1' if influx else 'off'}, MQTT {'on' if mqtt else 'off'}",
            flush=True,
        )
        try:
            measure(daemon, emulator, args.minutes, args.sample)
        except RuntimeError:
            print((directory / "hemsd.log").read_text()[-3000:], file=sys.stderr)
            raise


if __name__ == "__main__":
    main()
