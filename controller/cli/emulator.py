"""``hemsd emulator``: run the GoodWe ET emulator as a process (for the demo, soak tests, by hand).

Serves Modbus TCP on ``--port``, or with ``--udp`` the goodwe library's UDP framing (AA55 replies)
on it, plus an optional extra ``--tcp-port``. Runs until SIGINT/SIGTERM or ``--duration`` real
seconds, printing a status line every ``--status-every`` real seconds and the energy totals at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from controller.clock import AcceleratedClock
from controller.physics import BatteryParams
from controller.sim.emulator.server import Faults, GoodWeEmulator
from controller.sim.emulator.site import EmulatedSiteConfig, household_profile, solar_profile


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8899, help="port to serve (default 8899)")
    parser.add_argument(
        "--udp", action="store_true", help="serve UDP (AA55/Modbus RTU) on --port instead of TCP"
    )
    parser.add_argument("--tcp-port", type=int, default=None, help="also serve Modbus TCP on this port")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    parser.add_argument("--start", default=None, help="simulated start, ISO 8601 with offset (default now)")
    parser.add_argument("--tz", default="UTC", help="the inverter's time zone for its clock and eco groups")
    parser.add_argument("--soc", type=float, default=50.0, help="initial battery SoC, %%")
    parser.add_argument("--capacity-kwh", type=float, default=10.0, help="battery capacity")
    parser.add_argument(
        "--battery-power-w", type=float, default=5000.0, help="battery charge/discharge limit"
    )
    parser.add_argument("--rated-power-w", type=int, default=10000, help="inverter rated power")
    parser.add_argument("--pv-peak-w", type=float, default=5000.0, help="clear-sky PV peak")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many real seconds")
    parser.add_argument(
        "--status-every", type=float, default=10.0, help="real seconds between status lines (0: none)"
    )
    faults = parser.add_argument_group("fault injection (shares of replies, 0..1)")
    faults.add_argument("--drop-ratio", type=float, default=0.0)
    faults.add_argument("--late-ratio", type=float, default=0.0)
    faults.add_argument("--late-s", type=float, default=0.0, help="delay of a late reply, real seconds")
    faults.add_argument("--bad-crc-ratio", type=float, default=0.0)
    faults.add_argument("--short-frame-ratio", type=float, default=0.0)
    faults.add_argument("--exception-ratio", type=float, default=0.0)
    faults.add_argument("--exception-code", type=int, default=4)
    faults.add_argument("--seed", type=int, default=0, help="seed of the fault dice")
    faults.add_argument(
        "--ignore-commands",
        action="store_true",
        help="accept every setting but keep the battery in self-use (a device that does not follow)",
    )


def build_emulator(args: argparse.Namespace) -> GoodWeEmulator:
    """The emulator the arguments describe; ValueError names the bad argument."""
    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"--tz: unknown time zone {args.tz!r}") from exc
    start = datetime.now(UTC)
    if args.start is not None:
        start = datetime.fromisoformat(args.start)
        if start.tzinfo is None:
            raise ValueError(f"--start must carry a UTC offset, got {args.start!r}")
    clock = AcceleratedClock(start, args.speed)
    battery = BatteryParams(
        capacity_kwh=args.capacity_kwh,
        max_charge_w=args.battery_power_w,
        max_discharge_w=args.battery_power_w,
    )
    site = EmulatedSiteConfig(
        battery=battery, rated_power_w=args.rated_power_w, initial_soc_pct=args.soc, tz=tz
    )
    faults = Faults(
        drop_ratio=args.drop_ratio,
        late_ratio=args.late_ratio,
        late_s=args.late_s,
        bad_crc_ratio=args.bad_crc_ratio,
        short_frame_ratio=args.short_frame_ratio,
        exception_ratio=args.exception_ratio,
        exception_code=args.exception_code,
        ignore_commands=args.ignore_commands,
    )
    return GoodWeEmulator(
        clock=clock,
        host=args.host,
        tcp_port=args.tcp_port if args.udp else args.port,
        udp_port=args.port if args.udp else None,
        site=site,
        pv=solar_profile(peak_w=args.pv_peak_w, tz=tz),
        load=household_profile(tz=tz),
        faults=faults,
        seed=args.seed,
    )


def status_line(emu: GoodWeEmulator) -> str:
    s = emu.advance()
    return (
        f"{s.time.isoformat(timespec='seconds')} soc {s.soc_pct:5.1f}% pv {s.pv_w:6.0f} W "
        f"load {s.load_w:6.0f} W grid {s.grid_w:+7.0f} W battery {s.battery_w:+7.0f} W "
        f"{s.behaviour.mode} ({s.behaviour.source}) writes {emu.writes_total}"
    )


async def serve(emu: GoodWeEmulator, duration: float | None, status_every: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # platforms without signal handlers in the loop
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        ports = ", ".join(f"{name} {port}" for name, port in sorted(emu.ports.items()))
        print(f"GoodWe ET emulator on {emu.host}: {ports}; speed x{emu.clock.speed:g}", flush=True)
        deadline = None if duration is None else loop.time() + duration
        while not stop.is_set():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            wait = status_every if status_every > 0 else remaining
            if remaining is not None and wait is not None:
                wait = min(wait, remaining)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if status_every > 0 and not stop.is_set():
                print(status_line(emu), flush=True)
        c = emu.counters
        print(
            f"totals: pv {c.pv_kwh:.3f} kWh, load {c.load_kwh:.3f} kWh, import {c.import_kwh:.3f} kWh, "
            f"export {c.export_kwh:.3f} kWh, charge {c.charge_kwh:.3f} kWh, discharge {c.discharge_kwh:.3f} kWh; "
            f"{emu.writes_total} writes",
            flush=True,
        )


def run_command(args: argparse.Namespace) -> int:
    try:
        emu = build_emulator(args)
    except ValueError as exc:
        print(f"hemsd emulator: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(emu, args.duration, args.status_every))
    except (RuntimeError, OSError) as exc:  # pymodbus reports a port it cannot bind as RuntimeError
        print(f"hemsd emulator: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hemsd emulator", description=__doc__)
    configure_parser(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
