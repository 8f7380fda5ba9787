"""The dashboard in real headless Chromium, served by the daemon running the demo configuration.

The daemon runs in-process on the demo's configuration (emulated GoodWe ET, synthetic day-ahead
prices from a CSV file, G11 fees) with ``[web]`` added, on a clock 120 times faster than real
time from 10:00 local, so a poll (120 simulated seconds) arrives every real second. Chromium
may reach loopback only. The screenshot is saved as a test artefact: in $HEMSD_ARTIFACTS_DIR
when set, else in the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.chromium import Page, chromium_binary, chromium_page
from support.frontends import web_of
from support.servers import free_port

from controller.cli.demo import DEMO_TOML, TIMEZONE, write_price_csv
from controller.clock import AcceleratedClock, Clock
from controller.config.loading import load_config_text
from controller.config.models import HemsdConfig
from controller.daemon.app import HemsdApp
from controller.daemon.runner import Daemon
from controller.daemon.systemd import Notifier
from controller.daemon.wiring import create_application

TOKEN = "browser-test-token-0123456789"
SPEED = 120.0
WEB = '\n[web]\nenabled = true\nport = {port}\ntoken = "{token}"\nwrite_enabled = true\n'
NUMBERS = "['pv-w', 'load-w', 'grid-w', 'battery-w', 'soc', 'clock'].map(id => document.getElementById(id).textContent)"
RENDERED = (
    "document.querySelectorAll('#plan-chart rect[class^=act-]').length > 0"
    " && !!document.getElementById('plan-chart-soc')"
    " && document.getElementById('pv-w').textContent !== '-'"
)


WIDTHS = (400, 800, 1400)  # phone, tablet, desktop
# elements that reach past the viewport, tables that spill from their card, the smallest axis text
LAYOUT = """(() => {
  const width = document.documentElement.clientWidth;
  const name = (e) => e.id || `${e.tagName.toLowerCase()}.${e.getAttribute('class') || ''}`;
  const wide = [...document.querySelectorAll('body *')]
    .filter((e) => !e.closest('[hidden]') && e.getClientRects().length)
    .filter((e) => { const r = e.getBoundingClientRect(); return r.right > width + 0.5 || r.left < -0.5; })
    .map(name);
  const spilled = [...document.querySelectorAll('#today td, #health td, #month td')].filter((td) => {
    const card = td.closest('.card').getBoundingClientRect();
    return td.getBoundingClientRect().right > card.right + 0.5;
  }).map((td) => td.textContent);
  const axis = [...document.querySelectorAll('#plan-chart .axis text')].map((t) => t.getBoundingClientRect().height);
  const top = ['now-card', 'today-card', 'health-card'].map((id) => document.getElementById(id).getBoundingClientRect());
  const main = document.getElementById('dashboard').getBoundingClientRect();
  return { width, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 8), spilled,
           axisText: Math.min(...axis), rows: new Set(top.map((r) => Math.round(r.top))).size,
           gapRight: main.right - Math.max(...top.map((r) => r.right)) };
})()"""


# the plan chart's viewBox is the chart's width when it was drawn (at least 300)
CHART_FITS = """(() => {
  const svg = document.getElementById('plan-chart');
  const width = Math.max(300, Math.round(svg.getBoundingClientRect().width) || 1000);
  return svg.viewBox.baseVal !== null && svg.viewBox.baseVal.width === width;
})()"""


async def check_layout(page: Page, width: int, directory: Path) -> None:
    """At ``width`` px: nothing wider than the viewport, no table spilling out of its card, axis
    text at least 10 px high, and on a desktop the three top cards in one row with no empty column."""
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=width < 600
    )
    await page.wait_for(f"window.innerWidth === {width}", 10, f"the page at {width} px")
    await page.wait_for(CHART_FITS, 30, f"the chart drawn again at {width} px")  # 100 ms after a resize
    layout = await page.evaluate(LAYOUT)
    shot = await page.screenshot(directory / f"dashboard-{width}.png")
    print(f"{width} px: {layout}; screenshot {shot}")
    assert layout["scroll"] <= layout["width"], layout
    assert layout["wide"] == [], layout
    assert layout["spilled"] == [], layout
    assert layout["axisText"] >= 10, layout
    if width >= 1100:
        assert layout["rows"] == 1, layout
        assert layout["gapRight"] < 40, layout  # no empty column after the cards


def demo_config(directory: Path, start: datetime, port: int) -> HemsdConfig:
    prices = directory / "demo-prices.csv"
    write_price_csv(prices, start.replace(hour=0) - timedelta(days=1), days=4)
    text = DEMO_TOML.format(
        tz=TIMEZONE,
        log_level="WARNING",
        protocol="udp",
        state_dir=(directory / "state").as_posix(),
        prices_csv=prices.as_posix(),
    )
    return load_config_text(text + WEB.format(port=port, token=TOKEN), "browser test")


def artefact_dir(tmp_path: Path) -> Path:
    configured = os.environ.get("HEMSD_ARTIFACTS_DIR")
    return Path(configured) if configured else tmp_path


@pytest.mark.slow
async def test_the_dashboard_renders_the_plan_and_follows_live_updates(tmp_path: Path) -> None:
    chromium_binary()
    tz = ZoneInfo(TIMEZONE)
    start = datetime.now(tz).replace(hour=10, minute=0, second=0, microsecond=0)
    apps: list[HemsdApp] = []

    def factory(config: HemsdConfig, clock: Clock) -> HemsdApp:
        apps.append(create_application(config, clock))
        return apps[-1]

    daemon = Daemon(
        config=demo_config(tmp_path, start, free_port()),
        app_factory=factory,
        clock=AcceleratedClock(start, SPEED),
        notifier=Notifier(""),
    )
    running = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.started.wait(), 60)
        url = web_of(apps[0]).url
        assert url is not None
        async with chromium_page(tmp_path) as page:
            began = time.monotonic()
            await page.send("Page.navigate", url=f"{url}/#token={TOKEN}")
            await page.wait_for(RENDERED, 30, "the plan chart and the power numbers")
            first_render_s = time.monotonic() - began
            first = await page.evaluate(NUMBERS)
            await page.wait_for(
                "document.getElementById('live').textContent === 'live'", 15, "the live badge"
            )
            # new power numbers and a later clock (the daemon's accelerated time) from live updates
            was = json.dumps(first)
            changed = await page.wait_for(
                f"(() => {{ const now = {NUMBERS}, was = {was};"
                " return now[5] !== was[5] && now.slice(0, 5).join() !== was.slice(0, 5).join() && now; })()",
                20,
                "new power numbers from a live update",
            )
            assert all(text != "-" for text in changed[:5])
            assert changed[4].endswith("%")
            drawn = await page.evaluate(
                "[page.plan.plan.slots.length, document.querySelectorAll('#plan-chart rect[class^=act-]').length,"
                " document.querySelectorAll('#plan-chart rect.price-bar').length]"
            )
            assert drawn[0] == drawn[1] == drawn[2] > 4
            assert await page.evaluate("document.getElementById('plan-explanation').textContent.length > 10")
            assert await page.evaluate("document.querySelectorAll('#today tbody tr').length") == 6
            assert await page.evaluate(
                "!document.getElementById('month-card').hidden"
                " && document.querySelectorAll('#month tbody tr').length === 5"
                " && document.getElementById('month').textContent.includes('Import peak')"
            )
            assert await page.evaluate(
                "document.getElementById('health').textContent.includes('Spool depth')"
            )
            assert not await page.evaluate("document.getElementById('controls-card').hidden")
            assert await page.evaluate("localStorage.getItem('hemsd.token')") == TOKEN
            assert await page.evaluate("location.hash") == ""  # the token left the address bar
            shot = await page.screenshot(artefact_dir(tmp_path) / "dashboard.png")
            for width in WIDTHS:
                await check_layout(page, width, artefact_dir(tmp_path))

            await page.evaluate("document.getElementById('replan').click()")  # the page's write path
            assert (
                await page.wait_for(
                    "document.getElementById('control-result').textContent", 15, "the re-plan result"
                )
                == "re-plan requested"
            )
            events = await apps[0].parts.data.events(kinds=["http.command"])
            assert [e.message for e in events] == ["re-plan requested"]

            await page.evaluate("localStorage.setItem('hemsd.token', 'wrong-token-0123456789')")
            await page.send("Page.reload")
            await page.wait_for("document.getElementById('login')?.hidden === false", 15, "the token form")
            assert await page.evaluate("document.getElementById('dashboard').hidden")
            assert await page.evaluate("localStorage.getItem('hemsd.token')") is None
            outside = [u for u in page.requested_urls() if not u.startswith((url, "data:", "about:"))]
            assert outside == []
        assert shot.stat().st_size > 20_000
        print(f"first render {first_render_s:.2f} s; screenshot {shot}")
    finally:
        daemon.request_stop()
        assert await asyncio.wait_for(running, 30) == 0
