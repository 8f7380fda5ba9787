"""The emulator's register answers, word for word, against dumps recorded for a set of site states.

The dumps (``fixtures/emulator/register_dumps.json``) pin what a client reads for every block the
emulator serves, so that a faster way of building the register image cannot change an answer.
Regenerate them only for an intended change of the emulator's answers:
``python tests/test_emulator_image.py --write``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.clock import VirtualClock
from controller.sim.emulator import registers as regs
from controller.sim.emulator.server import DeviceIdentity, Faults, GoodWeEmulator
from controller.sim.emulator.site import EmulatedSiteConfig

DUMPS = Path(__file__).parent / "fixtures" / "emulator" / "register_dumps.json"
ALL_BLOCKS = (
    *regs.READ_ONLY_BLOCKS,
    regs.BATTERY_SETTINGS,
    regs.WORK_MODE_SETTINGS,
    regs.EXPORT_EMS_SETTINGS,
    regs.ECO_V1_SETTINGS,
    regs.BATTERY_MODE_PARAM,
    regs.ECO_V2_SETTINGS,
)
SPANS = ((35000, 230), (35150, 900), (36040, 1000))  # ranges across blocks and gaps
CHARGE_GROUP = (0x0000, 0x173B, 0xFF7F, 0xFFB0, 90, 0)  # all day, every day, charge at 80 %, to 90 %


@dataclass(frozen=True, slots=True)
class Step:
    """Move the clock by ``advance``, apply ``change`` to the emulator, then dump every block."""

    label: str
    advance: timedelta
    change: Callable[[GoodWeEmulator], None] | None = None


def _charge(emu: GoodWeEmulator) -> None:
    emu.settings = emu.settings | dict(zip(range(47547, 47553), CHARGE_GROUP, strict=True)) | {47000: 3}


def _stuck(emu: GoodWeEmulator) -> None:
    emu.faults.stuck = {35140: 0x8000, 36025: 0xFFFF, 37007: 0}


def _unstuck(emu: GoodWeEmulator) -> None:
    emu.faults.stuck = {}


def _soc(emu: GoodWeEmulator) -> None:
    emu.set_soc(97.5)


STEPS = (
    Step("start", timedelta(0)),
    Step("same instant again", timedelta(0)),
    Step("ten seconds on", timedelta(seconds=10)),
    Step("forced charge written", timedelta(0), _charge),
    Step("charging an hour later", timedelta(hours=1)),
    Step("registers stuck", timedelta(minutes=5), _stuck),
    Step("registers free again", timedelta(0), _unstuck),
    Step("state of charge set", timedelta(0), _soc),
    Step("a minute after", timedelta(minutes=1)),
    Step("past midnight", timedelta(hours=14, minutes=3)),
)


@dataclass(frozen=True, slots=True)
class Site:
    label: str
    start: datetime
    config: EmulatedSiteConfig
    eco_mode_v2: bool = True
    identity: DeviceIdentity = field(default_factory=DeviceIdentity)


SITES = (
    Site("three-phase summer", datetime(2026, 6, 1, 10, 0, tzinfo=UTC), EmulatedSiteConfig()),
    Site(
        "single-phase winter, old firmware, local time zone",
        datetime(2026, 1, 14, 16, 30, tzinfo=UTC),
        EmulatedSiteConfig(phases=1, rated_power_w=5000, initial_soc_pct=15.0, tz=ZoneInfo("Europe/Berlin")),
        eco_mode_v2=False,
        identity=DeviceIdentity("9050KETU0HEMSD02", "GW5K-ET", "EMU-02.01.07", "EMU-ARM-2.00"),
    ),
)


def dumps() -> Iterator[tuple[str, dict[str, list[int]]]]:
    """(site and step, block name -> registers) in order."""
    for site in SITES:
        clock = VirtualClock(site.start)
        emu = GoodWeEmulator(
            clock=clock,
            site=site.config,
            eco_mode_v2=site.eco_mode_v2,
            identity=site.identity,
            faults=Faults(),
        )
        for step in STEPS:
            clock.advance(step.advance.total_seconds())
            if step.change is not None:
                step.change(emu)
            yield (
                f"{site.label}: {step.label}",
                {b.name: emu.registers(b.address, b.count) for b in ALL_BLOCKS}
                | {f"{a}+{n}": emu.registers(a, n) for a, n in SPANS},
            )


def test_every_block_reads_as_recorded() -> None:
    recorded = json.loads(DUMPS.read_text())
    produced = dict(dumps())
    assert list(produced) == list(recorded)
    for state, blocks in recorded.items():
        for name, words in blocks.items():
            got = produced[state][name]
            diff = [(i, w, g) for i, (w, g) in enumerate(zip(words, got, strict=True)) if w != g]
            assert not diff, f"{state}, block {name}: (offset, recorded, now) {diff}"


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    DUMPS.write_text(json.dumps(dict(dumps()), indent=None, separators=(",", ":")) + "\n")
