"""Values the price drivers produce: market slots, final price slots, the service's result.

Prices are per kWh in the stated ISO 4217 currency everywhere (sources convert from per-MWh or
pence). All instants are timezone-aware UTC; a slot covers [start, end).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from drivers import DriverError


class PriceError(DriverError):
    """Root of every price-driver error."""


class PriceFetchError(PriceError):
    """The source could not be reached or answered with an HTTP error."""


class PriceDataError(PriceError):
    """The source answered, but the payload is malformed or fails validation."""


class PriceUnavailableError(PriceError):
    """The source answered that it has no prices for the requested day (not yet published)."""


def _require_utc(owner: str, name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() != timedelta(0):
        raise ValueError(f"{owner}.{name} must be timezone-aware UTC, got {value!r}")


@dataclass(frozen=True, slots=True)
class MarketSlot:
    """A raw market price as a source publishes it, converted to currency per kWh.

    ``export_price`` is set by sources that publish a separate price for energy fed into the
    grid (PSE's RCE for Polish prosumers); otherwise the tariff derives export from ``price``.
    """

    start: datetime
    end: datetime
    price: float
    currency: str
    export_price: float | None = None

    def __post_init__(self) -> None:
        _require_utc("MarketSlot", "start", self.start)
        _require_utc("MarketSlot", "end", self.end)
        if self.end <= self.start:
            raise ValueError(f"MarketSlot.end must be after start, got {self.start} .. {self.end}")
        if not math.isfinite(self.price):
            raise ValueError(f"MarketSlot.price must be finite, got {self.price!r}")
        if self.export_price is not None and not math.isfinite(self.export_price):
            raise ValueError(f"MarketSlot.export_price must be finite, got {self.export_price!r}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class PriceSlot:
    """The final price of one slot: all fees and VAT applied to import; export as settled."""

    start: datetime
    end: datetime
    import_price: float
    export_price: float
    currency: str
    source: str

    def __post_init__(self) -> None:
        _require_utc("PriceSlot", "start", self.start)
        _require_utc("PriceSlot", "end", self.end)
        if self.end <= self.start:
            raise ValueError(f"PriceSlot.end must be after start, got {self.start} .. {self.end}")
        for name in ("import_price", "export_price"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"PriceSlot.{name} must be finite, got {value!r}")


@runtime_checkable
class PriceSource(Protocol):
    """One configured market-price source.

    ``fetch_day`` returns the validated slots covering the whole market day ``day`` (local
    midnight to midnight in ``timezone``: 23, 24 or 25 hours) or raises a ``PriceError``.
    ``cache_key`` names the source's entries in the disk cache; None = local data, not cached.
    """

    name: str
    timezone: ZoneInfo
    cache_key: str | None

    async def fetch_day(self, day: date) -> tuple[MarketSlot, ...]: ...


class PriceStatus(enum.StrEnum):
    REAL = "real"  # every slot from the first source of the chain
    FALLBACK = "fallback"  # every slot known, some from a later source (another market, tou)
    PARTIAL = "partial"  # some slots of the requested range are unknown
    ERROR = "error"  # nothing known


class Origin(enum.StrEnum):
    NETWORK = "network"
    CACHE = "cache"
    LOCAL = "local"  # computed or read locally (tou, csv)


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """What one source did for one market day: served it (origin) or failed (error).

    ``unpublished`` marks a failure that only means "not published yet" (tomorrow before noon);
    ``unreachable`` one where the source could not be reached or refused the request.
    """

    source: str
    day: date
    origin: Origin | None
    error: str | None = None
    unpublished: bool = False
    unreachable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class PriceResult:
    """The service's answer for a range of site days."""

    slots: tuple[PriceSlot, ...]
    status: PriceStatus
    window_start: datetime
    window_end: datetime
    outcomes: tuple[SourceOutcome, ...]
    missing_slots: int
    fetched_at: datetime

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(f"{o.source} {o.day}: {o.error}" for o in self.outcomes if o.error is not None)

    @property
    def sources_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slot.source for slot in self.slots))

    def covered_until(self) -> datetime | None:
        """End of the contiguous run of known slots from the window start (None if the first is unknown)."""
        until: datetime | None = None
        expected = self.window_start
        for slot in self.slots:
            if slot.start != expected:
                break
            until = expected = slot.end
        return until
