"""The price API failing for two days: the plan falls back to the static tariff, the status says
so, and the daemon returns to the market prices when the API answers again.

The API is a local aWATTar stand-in (aiohttp on a loopback port) serving hourly prices for
whatever day is asked, or HTTP 503 while it is "down". The site runs on simulated time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from zoneinfo import ZoneInfo

from aiohttp import web
from support.sim_harness import Site, close_site, open_site

from controller.planner.inputs import slot_at

TZ = ZoneInfo("Europe/Warsaw")
BODY = """
[site]
id = "pricefault"
timezone = "Europe/Warsaw"
currency = "EUR"
[daemon]
poll_interval_s = 300
plan_interval_min = 60
prices_interval_min = 60
publish_interval_s = 600
[executor]
min_dwell_s = 0
[[prices.sources]]
type = "awattar"
base_url = "{url}"
[[prices.sources]]
type = "tou"
[prices.sources.prices]
all = 0.3
[prices.http]
timeout_s = 1
attempts = 1
backoff_s = 0
"""


@dataclass
class AwattarStandIn:
    """Hourly ``/marketdata`` for any window; HTTP 503 while ``down``."""

    down: bool = False
    requests: int = 0
    failed: int = 0
    url: str = ""
    _runner: web.AppRunner | None = None

    async def marketdata(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.down:
            self.failed += 1
            return web.Response(status=503, text="service unavailable")
        start, end = int(request.query["start"]), int(request.query["end"])
        hours = range(start, end, 3_600_000)
        data = [
            {"start_timestamp": t, "end_timestamp": t + 3_600_000, "marketprice": 40.0 + (t // 3_600_000) % 24 * 5, "unit": "Eur/MWh"}
            for t in hours
        ]  # fmt: skip
        return web.Response(
            text=json.dumps({"object": "list", "data": data}), content_type="application/json"
        )

    async def __aenter__(self) -> AwattarStandIn:
        app = web.Application()
        app.router.add_get("/marketdata", self.marketdata)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_two_days_without_the_price_api(tmp_path: Path) -> None:
    async with AwattarStandIn() as api:
        site = await open_site(tmp_path, datetime(2026, 6, 15, 8, 0, tzinfo=TZ), BODY.format(url=api.url))
        seen: list[tuple[datetime, str, bool, bool, str]] = []

        async def watch(s: Site) -> None:
            now = s.clock.now()
            slot = slot_at(s.app.plan, now)
            health = await s.app.health(now)
            source = s.app.prices[0].start if s.app.prices else None
            assert source is None or source <= now
            seen.append(
                (
                    now,
                    s.app.price_status,
                    slot is not None,
                    "prices" in health.stale_sources,
                    str(health.last_error),
                )
            )

        jobs = ("prices", "plan", "publish", "forecast")  # the prices and the plan are what this is about
        try:
            await site.run(timedelta(hours=3), during=watch, jobs=jobs)
            assert site.app.price_status == "real"
            down_at = site.clock.now()
            api.down = True
            await site.run(timedelta(days=2), during=watch, jobs=jobs)
            up_at = site.clock.now()
            api.down = False
            await site.run(timedelta(hours=3), during=watch, jobs=jobs)
            assert not site.failures, site.failures[:3]
            assert api.failed > 10

            # a plan for every moment, before, during and after
            assert all(has_plan for _, _, has_plan, _, _ in seen)
            outage = [s for s in seen if down_at < s[0] <= up_at]
            # the cached days carry the first hours; then the static tariff, and the status says so
            assert {status for _, status, _, _, _ in outage} >= {"fallback"}
            fallback = [s for s in outage if s[1] != "real"]
            assert fallback
            assert all(stale for _, _, _, stale, _ in fallback)
            assert all("prices" in error for *_, error in fallback)
            # and back to the market's prices within one price interval
            back = [s for s in seen if s[0] > up_at + timedelta(hours=1)]
            assert back
            assert {status for _, status, _, _, _ in back} == {"real"}
            assert not any(stale for _, _, _, stale, _ in back)

            # no quarter-hour of the whole run is without a price in storage
            data = site.app.parts.data
            await data.flush()
            start = datetime(2026, 6, 15, tzinfo=TZ).astimezone(UTC)
            prices = await data.history(
                ["price.import_price"], start, start + timedelta(days=3), resolution="15min"
            )
            assert prices.data is not None
            assert int(prices.data.fields["price.import_price"].count.sum()) == 3 * 96
        finally:
            await close_site(site)
