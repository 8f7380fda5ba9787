"""Security of a running daemon: its secrets stay secret, it obeys only its own command topics,
and what it stores is private.

One real run: ``hemsd run`` as a process with its secrets in a systemd-style credentials
directory (MQTT password, InfluxDB token, web API token), logging at DEBUG, against mosquitto
with TLS, passwords and an ACL, and VictoriaMetrics as the InfluxDB v2 server. A second MQTT
client (an administrator allowed everything) records every message on the broker and sends
commands on the daemon's topics, on another site's and on settings that are not controls. Then
every output is searched for the secrets: the log, every MQTT message, every file in the state
directory (SQLite with its WAL, backups, price cache) and the configuration history, events and
plans in the database, and the error output of ``hemsd check-config`` for a configuration that is
wrong around the secrets. The state directory must be 0700 and the database files 0600.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.apps import StillApp
from support.config import FLAT_TARIFF
from support.mqtt_fixtures import Observer, make_certificates, tls_broker_config
from support.servers import require_binary, start_mosquitto, start_victoria_metrics
from support.waiting import wait_until

from controller.clock import SystemClock
from controller.config.loading import load_config
from controller.daemon.runner import Daemon
from controller.daemon.systemd import Notifier
from storage.datamanager import DataManager, StorageOptions

SITE = "sec"
BASE = f"hemsd/{SITE}"
SECRETS = {
    "mqtt__password": "mqtt-Pw-7c1e93b04f5a",
    "storage__influx__server__token": "influx-Tk-2b8d60a91ce7",
    "web__token": "web-Bearer-5f0a17c4d9e2b386",
}
ADMIN, ADMIN_PASSWORD = "admin", "admin-only-for-the-test"
CONFIG = (
    """
[site]
id = "{site}"
[logging]
level = "DEBUG"
[inverter]
type = "emulator"
protocol = "udp"
[daemon]
poll_interval_s = 1
publish_interval_s = 1
[storage]
state_dir = "{state}"
commit_interval_s = 0.5
[storage.backup]
interval_hours = 1
[storage.influx]
flush_interval_s = 0.5
[storage.influx.server]
type = "v2"
url = "{influx}"
org = "hemsd"
bucket = "hemsd"
"""
    + FLAT_TARIFF
    + """[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
username = "hemsd"
keepalive_s = 5
[mqtt.tls]
ca_file = "{ca}"
[web]
enabled = true
port = 0
"""
)


def broker_config(directory: Path) -> str:
    """Passwords (the daemon's is a secret under test) and an ACL keeping hemsd to its own topics."""
    passwd = require_binary("mosquitto_passwd")
    directory.mkdir(parents=True, exist_ok=True)
    password_file, acl_file = directory / "passwd", directory / "acl"
    password_file.touch()
    for user, password in (("hemsd", SECRETS["mqtt__password"]), (ADMIN, ADMIN_PASSWORD)):
        subprocess.run(
            [passwd, "-b", str(password_file), user, password], check=True, capture_output=True, timeout=30
        )
    acl_file.write_text(
        f"user hemsd\ntopic readwrite {BASE}/#\ntopic readwrite homeassistant/#\n\nuser {ADMIN}\ntopic readwrite #\n",
        encoding="utf-8",
    )
    password_file.chmod(0o600)
    acl_file.chmod(0o600)
    return f"allow_anonymous false\npassword_file {password_file}\nacl_file {acl_file}\n"


def overrides(state: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(state / "hemsd.sqlite3") as db:
        return list(db.execute("SELECT mode, source FROM overrides ORDER BY id"))


def leaks(data: bytes) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret.encode() in data]


def test_a_run_leaks_no_secret_obeys_only_its_topics_and_keeps_its_files_private(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "pki")
    credentials = tmp_path / "credentials"
    credentials.mkdir(mode=0o700)
    for name, secret in SECRETS.items():
        (credentials / name).write_text(secret, encoding="utf-8")
    state = tmp_path / "state"
    extra = broker_config(tmp_path / "mosquitto-auth") + tls_broker_config(certs)
    with start_mosquitto(tmp_path, extra) as broker, start_victoria_metrics(tmp_path) as victoria:
        config = tmp_path / "hemsd.toml"
        config.write_text(
            CONFIG.format(
                site=SITE, state=state, influx=victoria.url, mqtt_port=broker.port, ca=certs.ca_file
            ),
            encoding="utf-8",
        )
        assert not leaks(config.read_bytes())  # the file itself holds none of them
        observer = Observer(
            broker.port, ("#",), username=ADMIN, password=ADMIN_PASSWORD, ca_file=certs.ca_file
        )
        log = tmp_path / "daemon.log"
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        env["CREDENTIALS_DIRECTORY"] = str(credentials)
        umask = os.umask(0o022)  # a common umask, inherited: the daemon must not rely on systemd's 0077
        try:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "controller.cli", "run", "--config", str(config)],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env=env,
            )
        finally:
            os.umask(umask)
        try:
            wait_until(
                lambda: observer.payload(f"{BASE}/status") == b"online", 40, "the daemon online over TLS"
            )
            wait_until(lambda: observer.last(f"{BASE}/health") is not None, 10, "health published")

            # commands: only <base>/<control>/set is obeyed, and only for the controls
            for topic, payload in (
                ("hemsd/othersite/mode/set", b"force_charge"),  # another site's topic
                (f"{BASE}/mode/set/now", b"force_charge"),  # not a command topic
                (f"{BASE}/mode", b"force_charge"),  # the state topic
                (f"{BASE}/battery.max_soc_pct/set", b"100"),  # a setting that is not a control
                (f"{BASE}/storage/set", b"{}"),
                (f"{BASE}/max_soc_pct/set", b"100"),
                ("homeassistant/device/hemsd_sec/set", b"force_charge"),
            ):
                observer.publish(topic, payload)
            time.sleep(1.5)  # time for a command obeyed by mistake to land
            wait_until(
                lambda: (
                    {json.loads(m.payload)["topic"] for m in observer.on(f"{BASE}/error")}
                    >= {f"{BASE}/battery.max_soc_pct/set", f"{BASE}/max_soc_pct/set"}
                ),
                30,
                "the refusals of the settings that are not controls",
            )
            assert overrides(state) == []
            observer.publish(f"{BASE}/mode/set", b"force_charge")  # its own control: obeyed
            wait_until(lambda: overrides(state) == [("force_charge", "mqtt")], 10, "the mode command applied")
            time.sleep(2)  # a few more cycles of everything (storage, Influx, MQTT)
        finally:
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=20) == 0
            observer.close()

        # every output, searched for every secret
        output = log.read_bytes()
        assert b"DEBUG" in output  # the most talkative level was on
        assert not leaks(output), [line for line in output.splitlines() if leaks(line)][:5]
        messages = observer.messages
        assert len(messages) > 20
        assert not [m.topic for m in messages if leaks(m.topic.encode() + m.payload)]
        files = [p for p in state.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-wal") or p.name.endswith(".sqlite3") for p in files)
        assert not [str(p) for p in files if leaks(p.read_bytes())]
        with sqlite3.connect(state / "hemsd.sqlite3") as db:
            dump = "\n".join(db.iterdump()).encode()
            (versions,) = db.execute("SELECT COUNT(*) FROM config_versions").fetchone()
        assert versions >= 1
        assert not leaks(dump)

        # private files, whatever the umask
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        database = [p for p in files if p.name.startswith("hemsd") and ".sqlite3" in p.name]
        assert database
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in database} == {p.name: 0o600 for p in database}

    # a configuration that is wrong around the secrets: the errors name the keys, not the values
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[storage.influx.server]\ntype = "v2"\n[mqtt]\nport = "x"\n[web]\nenabled = true\n', encoding="utf-8"
    )
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "check-config",
            str(broken),
            "--credentials-dir",
            str(credentials),
        ],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 78
    assert b"storage.influx.server" in check.stderr
    assert not leaks(check.stdout + check.stderr), check.stderr


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask-022", "umask-000"])
async def test_the_state_directory_and_database_are_created_private(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        state = tmp_path / "deep" / "state"
        async with DataManager(StorageOptions(state_dir=state)) as data:
            await data.put_state("x", 1)
            backup = await data.backup()
        modes = {
            p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in (state, backup.parent)
        }
        assert modes == {"deep/state": 0o700, "deep/state/backups": 0o700}
        for path in [*state.glob("hemsd.sqlite3*"), backup]:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        os.umask(old)


async def test_a_reload_reads_the_credentials_directory_given_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``hemsd run --credentials-dir D``: a reload must find the secrets in D as the start did."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "mqtt__password").write_text(SECRETS["mqtt__password"], encoding="utf-8")
    path = tmp_path / "hemsd.toml"
    path.write_text('[inverter]\ntype = "emulator"\n[mqtt]\nusername = "hemsd"\n', encoding="utf-8")
    config = load_config(path, credentials)
    daemon = Daemon(
        config, StillApp, SystemClock(), config_path=path, notifier=Notifier(""), credentials_dir=credentials
    )
    runner = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 10)
        path.write_text(
            '[inverter]\ntype = "emulator"\n[mqtt]\nusername = "hemsd"\nkeepalive_s = 30\n', encoding="utf-8"
        )
        assert await daemon.reload()
        assert daemon.config.mqtt is not None
        assert daemon.config.mqtt.keepalive_s == 30
        assert daemon.config.mqtt.password.get_secret_value() == SECRETS["mqtt__password"]
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(runner, 10) == 0
