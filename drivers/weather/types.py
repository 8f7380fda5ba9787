"""Values the weather drivers produce: irradiance on a tilted plane and PV power estimates.

All instants are timezone-aware UTC. Azimuths use the convention of both APIs used here:
0 = south, -90 = east, +90 = west (-180..180).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from drivers import DriverError


class WeatherError(DriverError):
    """A weather source failed or answered something unusable."""


def _require_utc(owner: str, name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{owner}.{name} must be timezone-aware UTC, got {value!r}")


@dataclass(frozen=True, slots=True)
class Plane:
    """Orientation of a PV array: tilt from horizontal and azimuth (0 south, -90 east, 90 west)."""

    tilt_deg: float
    azimuth_deg: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.tilt_deg <= 90.0:
            raise ValueError(f"Plane.tilt_deg must be within 0..90, got {self.tilt_deg!r}")
        if not -180.0 <= self.azimuth_deg <= 180.0:
            raise ValueError(
                f"Plane.azimuth_deg must be within -180..180 (0 = south), got {self.azimuth_deg!r}"
            )


@dataclass(frozen=True, slots=True)
class IrradianceSlot:
    """Mean global tilted irradiance over [start, end), with the air temperature and cloud cover."""

    start: datetime
    end: datetime
    gti_w_m2: float
    temperature_c: float | None = None
    cloud_cover_pct: float | None = None

    def __post_init__(self) -> None:
        _require_utc("IrradianceSlot", "start", self.start)
        _require_utc("IrradianceSlot", "end", self.end)
        if self.end <= self.start:
            raise ValueError(f"IrradianceSlot.end must be after start, got {self.start} .. {self.end}")
        if not (math.isfinite(self.gti_w_m2) and 0.0 <= self.gti_w_m2 <= 1500.0):
            raise ValueError(f"IrradianceSlot.gti_w_m2 must be within 0..1500, got {self.gti_w_m2!r}")


@dataclass(frozen=True, slots=True)
class PvPowerSample:
    """Estimated PV power at one instant."""

    at: datetime
    power_w: float

    def __post_init__(self) -> None:
        _require_utc("PvPowerSample", "at", self.at)
        if not (math.isfinite(self.power_w) and self.power_w >= 0.0):
            raise ValueError(f"PvPowerSample.power_w must be finite and >= 0, got {self.power_w!r}")


def _interpolate(left: PvPowerSample, right: PvPowerSample, instant: datetime) -> float:
    weight = (instant - left.at) / (right.at - left.at)
    return left.power_w + weight * (right.power_w - left.power_w)


def mean_power(samples: tuple[PvPowerSample, ...], start: datetime, end: datetime) -> float | None:
    """Mean of the power curve through ``samples`` (linear between them) over [start, end).

    None when the samples do not cover the whole interval.
    """
    if end <= start or len(samples) < 2 or samples[0].at > start or samples[-1].at < end:
        return None
    energy_ws = 0.0
    for left, right in itertools.pairwise(samples):
        lo, hi = max(start, left.at), min(end, right.at)
        if hi > lo:
            mean_w = (_interpolate(left, right, lo) + _interpolate(left, right, hi)) / 2.0
            energy_ws += mean_w * (hi - lo).total_seconds()
    return energy_ws / (end - start).total_seconds()
