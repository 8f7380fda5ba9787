"""A daemon's site with MQTT-switched loads simulated on it, for the loads' end-to-end tests:
the simulated loads' power added to the emulated house, each step's exchange of commands and
power readings between the daemon and the loads, and the simulated loads moved on in time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

from support.load_sim import LoadSimulator
from support.mqtt_fixtures import Observer
from support.sim_harness import Site
from support.waiting import eventually

BASE = "hemsd/home"


class SiteLoads:
    """The loads of ``site`` simulated over the broker on ``port``; the emulated house draws what
    they draw besides its own load (``household``)."""

    def __init__(self, site: Site, port: int, ignoring: tuple[str, ...] = ()) -> None:
        self.site = site
        self.sim = LoadSimulator(port, BASE, site.config.loads, site.config.site.zone, ignoring=ignoring)
        self.household: Callable[[datetime], float] = site.emulator.site.load
        site.emulator.site.load = lambda t: self.household(t) + self.sim.total_w()
        self.since = site.true_clock.now()

    def advance_to(self, now: datetime) -> datetime | None:
        """The simulated loads moved on to ``now``; the time they were at before, or None when
        no time has passed since."""
        since = self.since
        if now == since:
            return None
        self.sim.advance(now, (now - since).total_seconds() / 3600.0)
        self.since = now
        return since

    async def exchange(self, site: Site) -> None:
        """The daemon's last commands taken by the loads, and their power read back by it."""
        await delivered(site, self.sim)
        self.sim.latch()
        self.sim.report()
        await reported(site, self.sim)


async def delivered(site: Site, sim: LoadSimulator) -> None:
    """Wait (at most 5 s) until the simulated loads have the commands the daemon last sent."""
    links = site.app.loads
    assert links is not None
    for _ in range(500):
        wanted = {
            n: r.output in ("on", "boost") for n, r in links.switcher.loads.items() if n not in sim.ignoring
        }
        if all(sim.loads[n].on == on for n, on in wanted.items()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the loads did not get their commands: {wanted}")


async def reported(site: Site, sim: LoadSimulator) -> None:
    """Wait (at most 5 s) until the daemon has each load's power as the simulated loads last reported it."""
    links = site.app.loads
    assert links is not None
    for _ in range(500):
        wanted = {n: float(f"{load.power_w():.0f}") for n, load in sim.loads.items()}
        if all(links.switcher.loads[n].power_w == w for n, w in wanted.items()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the daemon did not get the loads' power readings: {wanted}")


def refusals(observer: Observer, topic: str) -> list[dict[str, object]]:
    """The daemon's refusals, on ``<base>/load/error``, of what was published on ``topic``; oldest first."""
    found = [m.json() for m in observer.on(f"{BASE}/load/error")]
    return [r for r in found if isinstance(r, dict) and r.get("topic") == topic]


async def loads_listening(observer: Observer, load: str, within_s: float = 30.0) -> None:
    """Wait until the daemon's loads' connection has subscribed (a message published before it has
    is lost, and connecting says nothing of that): an enable of ``load`` that is neither ON nor OFF,
    refused and changing nothing, is sent every half second until a refusal of it comes back."""
    topic = f"{BASE}/load/{load}_enabled/set"
    for _ in range(int(within_s / 0.5)):
        observer.publish(topic, b"MAYBE")
        with contextlib.suppress(AssertionError):
            await eventually(lambda: bool(refusals(observer, topic)), 0.5, f"a refusal on {topic}")
            return
    raise AssertionError(f"not within {within_s} s: a refusal on {topic}")
