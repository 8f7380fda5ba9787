"""The application with its front ends: the one place (with the CLI) that sees every room."""

from __future__ import annotations

from pathlib import Path

from controller.clock import Clock
from controller.config import HemsdConfig
from controller.daemon.app import HemsdApp
from controller.frontends.homeassistant.publisher import Publisher
from controller.frontends.web.server import WebServer


def create_application(
    config: HemsdConfig,
    clock: Clock,
    config_path: Path | None = None,
    *,
    app_class: type[HemsdApp] = HemsdApp,
) -> HemsdApp:
    """The application the daemon runs, with Home Assistant over MQTT and the web API as front ends."""
    app = app_class(config, clock, config_path)
    app.frontends.extend((Publisher(app), WebServer(app)))
    return app
