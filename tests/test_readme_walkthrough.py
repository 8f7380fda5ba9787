"""README.md followed literally, as a new user would, on a fresh state.

The quick start's install line runs in a fresh venv (``python3 -m venv .venv && .venv/bin/pip
install .``) in a copy of the checkout; the dependencies come from the test environment (a ``.pth``
file), since tests reach no index. Then "Running it for real", line by line, with ``/etc/hemsd``
moved to a temporary directory and without sudo: the example configuration copied, edited as the
README and the example's own comments say (the inverter type switched to ``emulator``, the state
directory, ``[mqtt]`` with a user whose password is a credential file, ``[storage.influx]`` for
InfluxDB 1.x), ``hemsd check-config``, ``hemsd run``. The broker is a real mosquitto that refuses
anonymous clients; InfluxDB is a fresh influxd with no database, which hemsd creates. The internet
is down: the price and weather APIs point at a closed loopback port, so the example's fallback
tariff prices the day. Checked: data in InfluxDB, Home Assistant discovery on the broker, exit 0
on SIGTERM with the inverter back in self-use.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest
from support.mqtt_fixtures import (
    MQTT_PASSWORD,
    MQTT_USER,
    OBSERVER_PASSWORD,
    OBSERVER_USER,
    Observer,
    mosquitto,
    secured_broker_config,
)
from support.servers import free_port, influx_query, start_influxd
from support.wheels import build_wheel

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def code_block(section: str) -> list[str]:
    """The command lines of the first ``sh`` block under a README heading (comments dropped)."""
    start = README.index(f"## {section}")
    block = re.search(r"```sh\n(.*?)```", README[start:], flags=re.DOTALL)
    assert block is not None, f"no sh block under {section!r}"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def checkout_copy(destination: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def fresh_venv(checkout: Path) -> Path:
    """The quick start's install, in ``checkout``: a new venv and this package in it, without an index
    (the package as a wheel built by the system Python, the dependencies from the test environment)."""
    (install,) = [line for line in code_block("Quick start") if "pip install ." in line]
    assert "python3 -m venv .venv" in install
    subprocess.run([sys.executable, "-m", "venv", ".venv"], cwd=checkout, check=True, timeout=120)
    venv_site = next((checkout / ".venv" / "lib").glob("python3*/site-packages"))
    (venv_site / "test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    (checkout.parent / "wheel").mkdir()
    wheel = build_wheel(checkout.parent / "wheel")
    subprocess.run(
        [".venv/bin/pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=checkout,
        check=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    return checkout / ".venv" / "bin" / "hemsd"


def edit(text: str, state_dir: Path, mqtt_port: int, influx_url: str, offline_url: str) -> str:
    """What a user does in ``sudoedit``, following README and the example's comments."""
    inverter = text.index("[inverter]")
    text = text[:inverter] + text[inverter:].replace('type = "goodwe"', 'type = "emulator"', 1)
    text = text.replace('state_dir = "/var/lib/hemsd"', f'state_dir = "{state_dir}"')
    text = text.replace('base_url = "https://api.raporty.pse.pl/api"', f'base_url = "{offline_url}"')
    weather = text.index("[forecast.weather]")
    text = text[:weather] + text[weather:].replace('base_url = ""', f'base_url = "{offline_url}"', 1)
    return text + (
        f'\n[storage.influx]\n[storage.influx.server]\ntype = "v1"\nurl = "{influx_url}"\ndatabase = "hemsd"\n'
        f'\n[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\nusername = "{MQTT_USER}"\n'
    )


@pytest.mark.slow
def test_readme_quick_start_and_running_it_for_real(tmp_path: Path) -> None:
    checkout = checkout_copy(tmp_path / "hemsd")
    hemsd = fresh_venv(checkout)
    assert subprocess.run([hemsd, "--version"], capture_output=True, check=False, timeout=60).returncode == 0

    etc = tmp_path / "etc" / "hemsd"
    config = etc / "hemsd.toml"
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt__password").write_text(MQTT_PASSWORD + "\n", encoding="utf-8")
    lines = [
        line.replace("/etc/hemsd", str(etc)).replace("sudo ", "")
        for line in code_block("Running it for real")
    ]
    broker_config = secured_broker_config(tmp_path / "acl", "hemsd/home")
    with mosquitto(tmp_path, broker_config) as broker, start_influxd(tmp_path) as influx:
        observer = Observer(broker.port, username=OBSERVER_USER, password=OBSERVER_PASSWORD)
        env = {
            **os.environ,
            "CREDENTIALS_DIRECTORY": str(credentials),
            "PATH": f"{hemsd.parent}:{os.environ['PATH']}",
        }
        daemon: subprocess.Popen[bytes] | None = None
        try:
            for line in lines:
                argv = shlex.split(line)
                print("$", line)
                if argv[0] == "sudoedit":
                    text = config.read_text(encoding="utf-8")
                    config.write_text(
                        edit(
                            text,
                            tmp_path / "state",
                            broker.port,
                            influx.url,
                            f"http://127.0.0.1:{free_port()}",
                        ),
                        encoding="utf-8",
                    )
                elif argv[:2] == ["hemsd", "run"]:
                    log = (tmp_path / "daemon.log").open("wb")
                    daemon = subprocess.Popen(
                        argv, cwd=checkout, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                else:
                    done = subprocess.run(
                        line,
                        shell=True,
                        cwd=checkout,
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
            assert daemon is not None, "README's block does not run the daemon"

            discovery, status = "homeassistant/device/hemsd_home/config", "hemsd/home/status"

            def seen() -> bool:  # the status is sent after the discovery, and arrives after it
                return bool(points and observer.payload(discovery) and observer.payload(status) == b"online")

            deadline = time.monotonic() + 90
            points: list[list[object]] = []
            while time.monotonic() < deadline and not seen():
                assert daemon.poll() is None, (tmp_path / "daemon.log").read_text(errors="replace")
                time.sleep(1)
                try:
                    points = influx_query(influx, "hemsd", "SELECT * FROM snapshot LIMIT 5")
                except OSError:
                    points = []
            log_text = (tmp_path / "daemon.log").read_text(errors="replace")
            assert points, f"no snapshot in InfluxDB within 90 s:\n{log_text[-3000:]}"
            announced = observer.payload(discovery)
            assert announced, f"no Home Assistant discovery within 90 s:\n{log_text[-3000:]}"
            components = json.loads(announced)["cmps"]
            print(f"{len(points)} snapshot points in InfluxDB; {len(components)} entities announced")
            assert len(components) > 40
            assert observer.payload(status) == b"online"

            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=15) == 0
            log_text = (tmp_path / "daemon.log").read_text(errors="replace")
            assert "Traceback" not in log_text
            assert "self-use" in log_text or "self_use" in log_text
        finally:
            observer.close()
            if daemon is not None and daemon.poll() is None:
                daemon.kill()
                daemon.wait(timeout=10)
