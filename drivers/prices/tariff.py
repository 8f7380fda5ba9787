"""Tariff composition: from a market price to what a kWh really costs and earns.

    import = (market + distribution + system + capacity + excise + margin)[zone] * (1 + vat)
    export = market export price * factor (optionally floored), or a fixed feed-in price

The zone of each slot comes from a zone calendar (G11, G12, G12w, G13 or custom rules) in the
site's time zone. Fees are net of VAT, per kWh, in the site currency; negative market prices
pass through (a negative import price is a real offer to consume).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.prices.types import MarketSlot, PriceDataError, PriceSlot
from drivers.prices.zones import CalendarConfig, ZoneCalendar, ZoneName

Fee = Annotated[float, Field(ge=-10.0, le=10.0, allow_inf_nan=False)]


class ZoneFees(BaseModel):
    """Per-kWh charges of one zone, net of VAT, in the site currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    distribution: Fee = 0.0  # variable network charge of the distribution operator
    system: Fee = 0.0  # other per-kWh charges on the bill: quality, RES (OZE), cogeneration
    capacity: Fee = 0.0  # capacity charge ("opłata mocowa") where billed per kWh
    excise: Fee = 0.0  # excise duty
    margin: Fee = 0.0  # supplier margin on a market-price contract

    @property
    def total(self) -> float:
        return self.distribution + self.system + self.capacity + self.excise + self.margin


class ExportConfig(BaseModel):
    """How exported energy is paid: ``market`` price * factor, a ``fixed`` price, or ``none``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["market", "fixed", "none"] = "market"
    factor: Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)] = 1.0
    price: Fee | None = None
    floor: Fee | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.mode == "fixed" and self.price is None:
            raise ValueError("export.mode 'fixed' needs export.price (currency/kWh)")
        if self.mode != "fixed" and self.price is not None:
            raise ValueError(f"export.price only applies to mode 'fixed', not {self.mode!r}")
        return self


def _g11_fees() -> dict[str, ZoneFees]:
    return {"all": ZoneFees()}


class TariffConfig(BaseModel):
    """Zone calendar, fees per zone, VAT and the export rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calendar: CalendarConfig = Field(default_factory=lambda: CalendarConfig(preset="G11"))
    fees: dict[ZoneName, ZoneFees] = Field(default_factory=_g11_fees)
    vat: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    export: ExportConfig = Field(default_factory=ExportConfig)
    exchange_rates: dict[
        Annotated[str, Field(pattern=r"^[A-Z]{3}$")], Annotated[float, Field(gt=0, allow_inf_nan=False)]
    ] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fees_cover_zones(self) -> Self:
        zones = self.calendar.zones
        missing = [zone for zone in zones if zone not in self.fees]
        unknown = [zone for zone in self.fees if zone not in zones]
        if missing:
            raise ValueError(
                f"fees missing for zone(s) {', '.join(missing)} of the calendar (zones: {', '.join(zones)})"
            )
        if unknown:
            raise ValueError(
                f"fees given for unknown zone(s) {', '.join(unknown)} (zones: {', '.join(zones)})"
            )
        return self


class Tariff:
    def __init__(self, config: TariffConfig, *, currency: str, timezone: ZoneInfo) -> None:
        self.config = config
        self.currency = currency
        self.calendar: ZoneCalendar = config.calendar.build(timezone)

    def import_price(self, market: float, zone: str) -> float:
        return (market + self.config.fees[zone].total) * (1.0 + self.config.vat)

    def export_price(self, market_export: float) -> float:
        rule = self.config.export
        if rule.mode == "none":
            return 0.0
        if rule.mode == "fixed":
            assert rule.price is not None  # checked by ExportConfig
            return rule.price
        value = market_export * rule.factor
        return value if rule.floor is None else max(value, rule.floor)

    def _rate(self, currency: str) -> float:
        if currency == self.currency:
            return 1.0
        rate = self.config.exchange_rates.get(currency)
        if rate is None:
            raise PriceDataError(
                f"market prices are in {currency} but the site currency is {self.currency}: "
                f"set prices.tariff.exchange_rates.{currency}"
            )
        return rate

    def apply(self, slots: Sequence[MarketSlot], source: str) -> tuple[PriceSlot, ...]:
        out: list[PriceSlot] = []
        for slot in slots:
            rate = self._rate(slot.currency)
            market = slot.price * rate
            market_export = (slot.export_price if slot.export_price is not None else slot.price) * rate
            import_price = self.import_price(market, self.calendar.zone_at(slot.start))
            export_price = self.export_price(market_export)
            if not (math.isfinite(import_price) and math.isfinite(export_price)):
                raise PriceDataError(f"{source}: non-finite price at {slot.start.isoformat()}")
            out.append(
                PriceSlot(
                    start=slot.start,
                    end=slot.end,
                    import_price=import_price,
                    export_price=export_price,
                    currency=self.currency,
                    source=source,
                )
            )
        return tuple(out)
