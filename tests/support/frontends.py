"""The front ends of a running application, found by kind."""

from __future__ import annotations

from controller.daemon.app import HemsdApp
from controller.frontends.homeassistant.publisher import Publisher
from controller.frontends.web.server import WebServer


def publisher_of(app: HemsdApp) -> Publisher:
    return next(f for f in app.frontends if isinstance(f, Publisher))


def web_of(app: HemsdApp) -> WebServer:
    return next(f for f in app.frontends if isinstance(f, WebServer))
