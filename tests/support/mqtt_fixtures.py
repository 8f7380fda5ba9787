"""MQTT test helpers: brokers with passwords/ACL/TLS, an observing client, invalid commands, a child process.

Brokers are real mosquitto processes from ``servers.start_mosquitto`` (skipped with the reason
when mosquitto is missing, a failure under CI=true). Certificates come from the ``openssl`` CLI.

Run as a script, this module is the child process of the last-will test: it connects an
``MqttClient`` to the broker given on the command line, prints ``connected`` and waits to be
killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.frontends.homeassistant.client import HomeAssistantClient
from controller.frontends.homeassistant.discovery import DeviceInfo
from drivers.mqtt import MqttSettings
from support.servers import ServerProcess, require_binary, start_mosquitto

MQTT_USER = "hemsd"
MQTT_PASSWORD = "correct horse battery staple"
OBSERVER_USER = "observer"
OBSERVER_PASSWORD = "observer-secret"


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server_cert: Path
    server_key: Path


def make_certificates(directory: Path, name: str = "ca") -> Certificates:
    """A self-signed CA and a server certificate for 127.0.0.1/localhost signed by it."""
    openssl = require_binary("openssl")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / f"{name}.key", directory / f"{name}.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="utf-8")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=30)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", f"/CN=hemsd test {name}",
        "-keyout", str(ca_key), "-out", str(ca_cert))  # fmt: skip
    run(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return Certificates(ca_file=ca_cert, server_cert=cert, server_key=key)


def secured_broker_config(directory: Path, base_topic: str) -> str:
    """mosquitto config lines: no anonymous access, two users, an ACL limiting hemsd to its topics."""
    passwd = require_binary("mosquitto_passwd")
    directory.mkdir(parents=True, exist_ok=True)
    password_file, acl_file = directory / "passwd", directory / "acl"
    password_file.touch()
    for user, password in ((MQTT_USER, MQTT_PASSWORD), (OBSERVER_USER, OBSERVER_PASSWORD)):
        subprocess.run(
            [passwd, "-b", str(password_file), user, password], check=True, capture_output=True, timeout=30
        )
    acl_file.write_text(
        f"user {MQTT_USER}\ntopic readwrite {base_topic}/#\ntopic readwrite homeassistant/#\n\n"
        f"user {OBSERVER_USER}\ntopic readwrite #\n",
        encoding="utf-8",
    )
    # start_mosquitto runs the broker as root when the tests do ("user root"), so root-owned 0600 files are readable.
    password_file.chmod(0o600)
    acl_file.chmod(0o600)
    return f"allow_anonymous false\npassword_file {password_file}\nacl_file {acl_file}\n"


def tls_broker_config(certs: Certificates) -> str:
    return f"cafile {certs.ca_file}\ncertfile {certs.server_cert}\nkeyfile {certs.server_key}\n"


@contextlib.contextmanager
def mosquitto(tmp_path: Path, extra_config: str = "") -> Iterator[ServerProcess]:
    with start_mosquitto(tmp_path, extra_config) as server:
        yield server


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> object:
        return json.loads(self.payload)


SUBSCRIBED_WITHIN_S = 30.0  # a bound against a hang; a loaded machine may take seconds


class Observer:
    """A second, independent paho client that records every message it receives."""

    def __init__(
        self,
        port: int,
        topics: tuple[str, ...] = ("#",),
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
        name: str = "observer",
    ) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = topics
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{random.getrandbits(32):x}")
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(SUBSCRIBED_WITHIN_S):
            self.close()
            raise TimeoutError(
                f"{name} did not get its subscription acknowledged within {SUBSCRIBED_WITHIN_S} s"
            )

    def _on_connect(
        self, client: paho.Client, userdata: object, flags: object, reason: object, props: object
    ) -> None:
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> Received | None:
        found = self.on(topic)
        return found[-1] if found else None

    def payload(self, topic: str) -> bytes | None:
        """The payload of the last message on ``topic``; None when there was none."""
        found = self.last(topic)
        return found.payload if found else None

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5.0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- invalid commands -------------------------------------------------------------------------------

_NOT_NUMBERS = ("", " 20", "20 ", "nan", "NaN", "inf", "-inf", "Infinity", "1e999", "0x10", "20%", "twenty",
                "1,5", "true", "null", "[]", "{}", "2O", "--1", "1..2", "None!")  # fmt: skip
_BAD_UTF8 = (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"abc\x80", b"\xf0\x28\x8c\xbc")


def _bad_override(rng: random.Random) -> dict[str, object] | str:
    valid: dict[str, object] = {"mode": "force_charge", "power_w": 3000, "target_soc": 80, "minutes": 60}
    choice = rng.randrange(16)
    body = dict(valid)
    if choice == 0:
        body["mode"] = rng.choice(["", "charge", "AUTO", "force-charge", 1, None, True, ["auto"]])
    elif choice == 1:
        body["power_w"] = rng.choice([0, -1, -3000, 10_001, 1e9, "3000", None, True, [3000], {"w": 1}])
    elif choice == 2:
        body["target_soc"] = rng.choice([-0.1, 100.5, 101, 1000, "80", None, False, [80]])
    elif choice == 3:
        body["minutes"] = rng.choice([0, -5, 24 * 60 + 1, 10**9, 1.5, "60", None, True, [60]])
    elif choice == 4:
        del body["minutes"]  # no expiry at all
    elif choice == 5:
        body["expires"] = "2099-01-01T00:00:00+00:00"  # both expiry forms
    elif choice == 6:
        del body["minutes"]
        body["expires"] = rng.choice(["2020-01-01T00:00:00+00:00", "2099-01-01T00:00:00Z", "2026-06-01T12:00:00",
                                      "tomorrow", "", 1767225600, None])  # fmt: skip
    elif choice == 7:
        body[rng.choice(["power", "soc", "Mode", "expiry", "extra", ""])] = rng.randrange(100)
    elif choice == 8:
        del body["mode"]
    elif choice == 9:
        del body[rng.choice(["power_w", "target_soc"])]
    elif choice == 10:
        body = {"mode": rng.choice(["hold", "self_use", "auto"]), "minutes": 30,
                rng.choice(["power_w", "target_soc"]): 50}  # fmt: skip
    elif choice == 11:
        return rng.choice(["[]", "null", "42", '"force_charge"', "true", "[{}]"])
    elif choice == 12:
        return rng.choice(["{", '{"mode": }', "{'mode': 'hold'}", '{"mode": "hold", "minutes": 30,}', ""])
    elif choice == 13:
        return '{"mode": "hold", "minutes": 30, "mode": "auto"}'
    elif choice == 14:
        return '{"mode": "force_charge", "power_w": NaN, "target_soc": 80, "minutes": 60}'
    else:
        return json.dumps({**valid, "pad": "x" * 1100})
    return body


_BAD_GOALS = (
    ("goal_target", b'{"soc_pct": 80}'),
    ("goal_target", b'{"soc_pct": 150, "by": "07:00"}'),
    ("goal_target", b'{"soc_pct": 80, "by": "7 am"}'),
    ("goal_target", b'{"soc_pct": 80, "by": "07:00", "days": ["funday"]}'),
    ("goal_target", b'{"soc_pct": 80, "at": "2020-01-01T07:00:00+00:00"}'),
    ("goal_reserve", b'{"soc_pct": 50}'),
    ("goal_reserve", b'{"soc_pct": 50, "hours": -1}'),
    ("goal_reserve", b'{"soc_pct": 50, "until": "tomorrow"}'),
    ("goal_cancel", b"PRESS"),
    ("goal_cancel", b""),
    ("load_goal", b'{"by": "17:00"}'),
    ("load_goal", b'{"load": "Dish Washer", "by": "17:00"}'),
    ("load_goal", b'{"load": "dishwasher"}'),
    ("load_goal", b'{"load": "boiler", "by": "06:30", "temperature_c": "hot"}'),
    ("load_goal", b'{"load": "boiler", "at": "2020-01-01T06:30:00+00:00", "temperature_c": 60}'),
    ("load_goal_cancel", b""),
    ("load_goal_cancel", b"Dishwasher"),
)


def invalid_commands(count: int, seed: int = 20261) -> list[tuple[str, bytes]]:
    """``count`` (command key, payload) pairs, each invalid by construction, spread over every command topic.

    A tenth are goal commands, at the end from dice of their own: the rest are the first of the
    sequence the seed always gave."""
    rng = random.Random(seed)
    goal_rng = random.Random(seed + 1)
    goals = [goal_rng.choice(_BAD_GOALS) for _ in range(count // 10)]
    out: list[tuple[str, bytes]] = []
    while len(out) < count - len(goals):
        kind = rng.randrange(8)
        if kind == 0:
            out.append(
                (
                    "mode",
                    rng.choice(
                        ["", "Auto", "charge", "force charge", "auto ", "1", "PRESS", "none"]
                    ).encode(),
                )
            )
        elif kind in (1, 2):
            key = rng.choice(["min_soc", "max_grid_charge_w", "price_cap"])
            out_of_range = {"min_soc": ["-1", "100.01", "250"], "max_grid_charge_w": ["-100", "10000.5", "1e6"],
                            "price_cap": ["-5.01", "10.5", "1e3"]}[key]  # fmt: skip
            out.append((key, rng.choice([*_NOT_NUMBERS, *out_of_range]).encode()))
        elif kind == 3:
            key = rng.choice(["replan", "override_cancel"])
            out.append((key, rng.choice(["", "press", "ON", "1", "PRESS ", "{}"]).encode()))
        elif kind == 4:
            out.append((rng.choice(["mode", "min_soc", "override", "replan"]), rng.choice(_BAD_UTF8)))
        elif kind == 5:
            out.append((rng.choice(["unknown", "modes", "min-soc", "status", "plan"]), b"auto"))
        else:
            body = _bad_override(rng)
            out.append(("override", (body if isinstance(body, str) else json.dumps(body)).encode()))
    return out + goals


# --- child process for the last-will test --------------------------------------------------------------


async def _child(port: int, site: str) -> None:
    async def ignore(command: object) -> None:
        return None

    settings = MqttSettings.for_site(site, "127.0.0.1", port=port, keepalive_s=5)
    client = HomeAssistantClient(settings, DeviceInfo(site, "Child", "0.0.0"), ignore)
    await client.start()
    if not await client.wait_connected(10.0):
        print(f"not connected: {client.stats.last_error}", flush=True)
        return
    client.publish_state("mode", "auto")
    print("connected", flush=True)
    await asyncio.sleep(60)  # the test kills this process long before


if __name__ == "__main__":
    asyncio.run(_child(int(sys.argv[1]), sys.argv[2]))
