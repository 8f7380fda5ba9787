"""The [web] section and the server's life cycle: read-only default, TLS, a taken port, bounded streams."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from support.config import FLAT_TARIFF
from support.frontends import web_of
from support.mqtt_fixtures import make_certificates
from support.servers import free_port

from controller.clock import SystemClock
from controller.config.loading import load_config, load_config_text
from controller.config.models import ConfigError, WebConfig
from controller.daemon.app import HemsdApp
from controller.daemon.wiring import create_application
from controller.frontends.web.server import MAX_STREAM_CLIENTS, STREAM_QUEUE, EventHub

REPO = Path(__file__).resolve().parents[1]
TOKEN = "config-test-token-0123456789"
CONFIG = (
    """
[site]
id = "webcfg"
[inverter]
type = "emulator"
[storage]
state_dir = "{state}"
"""
    + FLAT_TARIFF
    + """[web]
enabled = true
port = {port}
token = "{token}"
{extra}
"""
)


async def started(directory: Path, port: int = 0, extra: str = "") -> HemsdApp:
    path = directory / "hemsd.toml"
    path.write_text(
        CONFIG.format(state=directory / "state", port=port, token=TOKEN, extra=extra), encoding="utf-8"
    )
    app = create_application(load_config(path), SystemClock(), path)
    await app.start()
    return app


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[HemsdApp]:
    application = await started(tmp_path)
    try:
        yield application
    finally:
        await application.stop()


def test_an_enabled_server_needs_a_token_and_never_echoes_it() -> None:
    with pytest.raises(ConfigError) as raised:
        load_config_text("[web]\nenabled = true\n")
    assert "web.token" in raised.value.problems[0]
    assert "web__token" in raised.value.problems[0]
    with pytest.raises(ConfigError) as raised:
        load_config_text('[web]\nenabled = true\ntoken = "short-secret"\n')
    assert "at least 16" in raised.value.problems[0]
    assert "short-secret" not in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        load_config_text('[web]\ntoken = "has a space in it 0123456789"\n')
    assert "has a space" not in str(raised.value)
    with pytest.raises(ConfigError, match=r"web\.tls\.key_file"):
        load_config_text('[web.tls]\ncert_file = "/etc/hemsd/web.crt"\n')
    assert load_config_text("").web == WebConfig()  # off, loopback, read-only by default
    assert (WebConfig().enabled, WebConfig().host, WebConfig().write_enabled) == (False, "127.0.0.1", False)


def test_the_token_comes_from_the_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "web__token").write_text(TOKEN + "\n", encoding="utf-8")
    config = load_config_text("[web]\nenabled = true\n", credentials_dir=tmp_path)
    assert config.web.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(config)
    assert config.redacted()["web"]["token"] == "**********"


def test_the_example_documents_every_web_key() -> None:
    text = (REPO / "config" / "hemsd.example.toml").read_text(encoding="utf-8")
    section = text[text.index("[web]") :]
    for key in (*WebConfig.model_fields, "cert_file", "key_file"):
        if key != "tls":
            assert re.search(rf"^#? ?{key} = ", section, re.MULTILINE), key
    assert "# [web.tls]" in section


async def test_writes_are_refused_by_default_and_nothing_changes(tmp_path: Path) -> None:
    app = await started(tmp_path)
    try:
        assert app.config.web.write_enabled is False
        plan = app.plan
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session:
            for method, path in (("POST", "/api/control/replan"), ("POST", "/api/control/mode")):
                async with session.request(
                    method, f"{web_of(app).url}{path}", headers=headers, json={"mode": "hold"}
                ) as reply:
                    assert reply.status == 403
                    assert "write_enabled" in (await reply.json())["error"]
            async with session.get(f"{web_of(app).url}/api/state", headers=headers) as reply:
                assert (await reply.json())["write_enabled"] is False
        assert app.plan is plan
        assert await app.parts.data.overrides() == []
    finally:
        await app.stop()


async def test_tls_serves_with_the_configured_certificate(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    extra = f'[web.tls]\ncert_file = "{certs.server_cert}"\nkey_file = "{certs.server_key}"\n'
    app = await started(tmp_path, extra=extra)
    try:
        url = web_of(app).url
        assert url is not None
        assert url.startswith("https://127.0.0.1:")
        trusted = ssl.create_default_context(cafile=str(certs.ca_file))
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{url}/api/state", headers={"Authorization": f"Bearer {TOKEN}"}, ssl=trusted
            ) as reply:
                assert reply.status == 200
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await session.get(f"{url}/api/health")  # the system's trust store does not know the test CA
            with pytest.raises(aiohttp.ClientError):
                await session.get(url.replace("https://", "http://") + "/api/health")
    finally:
        await app.stop()


async def test_a_taken_port_leaves_the_daemon_running_without_the_server(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        app = await started(tmp_path, port=port)
        try:
            assert web_of(app).url is None
            assert web_of(app).last_error is not None
            assert str(port) in web_of(app).last_error
            await app.poll()  # the controller carries on
            assert app.parts.control.last_decision is not None
        finally:
            await app.stop()


async def test_the_server_closes_its_port_and_its_streams_on_stop(app: HemsdApp) -> None:
    url = web_of(app).url
    assert url is not None
    session = aiohttp.ClientSession()
    try:
        stream = await session.get(f"{url}/api/stream", headers={"Authorization": f"Bearer {TOKEN}"})
        assert stream.status == 200
        assert (await stream.content.readline()).startswith(b"retry:")
        assert web_of(app).hub.clients == 1
        await asyncio.wait_for(web_of(app).stop(), 5)
        rest = await asyncio.wait_for(stream.content.read(), 5)  # the stream ends, it is not left hanging
        assert b"keep-alive" not in rest
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"{url}/api/health")
    finally:
        await session.close()


def test_the_event_hub_bounds_clients_and_queues() -> None:
    hub = EventHub()
    queues = [hub.subscribe() for _ in range(MAX_STREAM_CLIENTS)]
    assert all(q is not None for q in queues)
    assert hub.subscribe() is None
    for i in range(STREAM_QUEUE * 5):
        hub.publish("state", str(i))
    first = queues[0]
    assert first is not None
    assert first.qsize() == STREAM_QUEUE
    assert first.get_nowait() == f"event: state\ndata: {STREAM_QUEUE * 4}\n\n".encode()  # the oldest gave way
    hub.unsubscribe(first)
    assert hub.clients == MAX_STREAM_CLIENTS - 1
    hub.close()
    last = queues[-1]
    assert last is not None
    drained = [last.get_nowait() for _ in range(last.qsize())]
    assert drained[-1] is None
