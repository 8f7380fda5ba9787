"""The ``[settlement]`` table: a published scheme by name, overridden key by key.

Every table is optional; a key left out keeps the chosen scheme's value. ``enabled = false`` in
``[settlement.deposit]``, ``[settlement.capacity]`` or ``[settlement.grid_fees]`` removes that
part of the scheme. Without the table the scheme is ``per_slot``: today's per-slot sum.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from controller.settlement.schemes import (
    BatteryToGrid,
    CapacityCharge,
    Deposit,
    DepositLot,
    ExportRules,
    ExportValue,
    Netting,
    Period,
    Scheme,
    StandingCharge,
    export_rule_preset,
    scheme_preset,
    time_variable_fees,
)

Money = Annotated[float, Field(ge=-1000.0, le=100_000.0, allow_inf_nan=False)]
Price = Annotated[float, Field(ge=-10.0, le=10.0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
SchemeName = Literal[
    "per_slot", "pl_net_billing_rcem", "pl_net_billing_rce", "be_flanders_capacity", "de_14a_module3"
]
RulePreset = Literal["none", "PL", "BE", "DE", "zero_export"]


def _month(value: str, field: str) -> str:
    if not MONTH.match(value):
        raise ValueError(f"{field}: a month is 'YYYY-MM', got {value!r}")
    return value


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExportValueConfig(_Table):
    basis: Literal["tariff", "market", "published", "fixed"] | None = None
    average: Period | None = None
    clamp_at_zero: bool | None = None
    coefficient: Annotated[float, Field(ge=0.0, le=10.0, allow_inf_nan=False)] | None = None
    monthly_prices: dict[str, Price] | None = None  # "YYYY-MM" = price per kWh (e.g. RCEm / 1000)
    fixed_price: Price | None = None
    yearly_cap_kwh: Annotated[float, Field(ge=0.0, le=10_000_000.0)] | None = None

    @field_validator("monthly_prices")
    @classmethod
    def _months(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            _month(key, "settlement.export.monthly_prices")
        return value

    def apply(self, base: ExportValue) -> ExportValue:
        changes = {k: v for k, v in self.model_dump(exclude_none=True).items() if k != "monthly_prices"}
        if self.monthly_prices is not None:
            changes["monthly_prices"] = tuple(sorted(self.monthly_prices.items()))
        out = replace(base, **changes)
        if out.basis == "fixed" and self.fixed_price is None and base.basis != "fixed":
            raise ValueError("settlement.export.basis 'fixed' needs settlement.export.fixed_price")
        return out


class DepositLotConfig(_Table):
    month: str
    value: Annotated[float, Field(ge=0.0, le=1_000_000.0)]
    left: Annotated[float, Field(ge=0.0, le=1_000_000.0)]

    @field_validator("month")
    @classmethod
    def _check(cls, value: str) -> str:
        return _month(value, "settlement.deposit.opening.month")

    @model_validator(mode="after")
    def _left(self) -> Self:
        if self.left > self.value:
            raise ValueError(f"settlement.deposit.opening: left ({self.left}) above value ({self.value})")
        return self


class DepositConfig(_Table):
    enabled: bool = True
    covers: list[Literal["energy", "fees"]] | None = None
    coefficient: Annotated[float, Field(ge=0.0, le=10.0)] | None = None
    credited_after_months: Annotated[int, Field(ge=0, le=12)] | None = None
    expiry_months: Annotated[int, Field(ge=1, le=120)] | None = None
    refund_cap: Share | None = None
    opening: list[DepositLotConfig] = Field(default_factory=list)

    def apply(self, base: Deposit | None) -> Deposit | None:
        if not self.enabled:
            return None
        changes = self.model_dump(exclude_none=True, exclude={"enabled", "opening", "covers"})
        if self.covers is not None:
            changes["covers"] = tuple(dict.fromkeys(self.covers))
        return replace(base or Deposit(), **changes)


class CapacityConfig(_Table):
    enabled: bool = True
    price_per_kw_month: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    minimum_kw: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    average_months: Annotated[int, Field(ge=1, le=12)] | None = None
    minimum_on: Literal["month", "average"] | None = None
    window_min: Literal[15, 30, 60] | None = None
    previous_peaks_kw: list[Annotated[float, Field(ge=0.0, le=10_000.0)]] | None = None

    def apply(self, base: CapacityCharge | None) -> CapacityCharge | None:
        if not self.enabled:
            return None
        changes = self.model_dump(exclude_none=True, exclude={"enabled", "previous_peaks_kw"})
        if self.previous_peaks_kw is not None:
            changes["previous_peaks_kw"] = tuple(self.previous_peaks_kw)
        if base is None:
            if self.price_per_kw_month is None:
                raise ValueError("settlement.capacity needs price_per_kw_month (currency per kW a month)")
            return CapacityCharge(**changes)
        return replace(base, **changes)


class GridFeesConfig(_Table):
    enabled: bool = True
    operator: str | None = None
    year: Annotated[int, Field(ge=2024, le=2100)] | None = None
    in_prices: bool | None = None  # the import prices already hold the standard level
    levels: dict[str, Price] | None = None  # override the published prices (as published: VAT in)

    def apply(self, base: Scheme) -> Scheme:
        if not self.enabled:
            return replace(base, grid_fees=None)
        fees = base.grid_fees
        if self.operator is not None or self.year is not None:
            if self.operator is None or self.year is None:
                raise ValueError("settlement.grid_fees: give operator and year together")
            fees = time_variable_fees(self.operator, self.year)
        if fees is None:
            raise ValueError("settlement.grid_fees needs operator and year (e.g. swa_netze, 2025)")
        if self.in_prices is not None:
            fees = replace(fees, in_prices=self.in_prices)
        if self.levels is not None:
            known = [name for name, _ in fees.levels]
            unknown = sorted(set(self.levels) - set(known))
            if unknown:
                raise ValueError(f"settlement.grid_fees.levels: unknown level(s) {unknown} (known: {known})")
            fees = replace(fees, levels=tuple((n, self.levels.get(n, p)) for n, p in fees.levels))
        return replace(base, grid_fees=fees)


class StandingConfig(_Table):
    name: Annotated[str, Field(min_length=1, max_length=60)]
    per_month: Money


class ExportRulesConfig(_Table):
    preset: RulePreset = "none"
    export_limit_w: Annotated[float, Field(ge=0.0, le=1_000_000.0)] | None = None
    export_limit_pct_of_pv: Annotated[float, Field(ge=0.0, le=100.0)] | None = None
    battery_to_grid: BatteryToGrid | None = None
    grid_charging: bool | None = None

    def rules(self) -> ExportRules:
        changes = self.model_dump(exclude_none=True, exclude={"preset"})
        return replace(export_rule_preset(self.preset), **changes)


class SettlementConfig(_Table):
    """How the bill is settled (see controller.settlement.schemes for each rule and its source)."""

    scheme: SchemeName = "per_slot"
    period: Period | None = None
    net: bool | None = None
    vat: Share | None = None  # on capacity and standing charges
    export: ExportValueConfig = Field(default_factory=ExportValueConfig)
    deposit: DepositConfig | None = None
    capacity: CapacityConfig | None = None
    grid_fees: GridFeesConfig | None = None
    standing: list[StandingConfig] = Field(default_factory=list)
    rules: ExportRulesConfig = Field(default_factory=ExportRulesConfig)

    @model_validator(mode="after")
    def _buildable(self) -> Self:
        self.build()
        return self

    def build(self) -> Scheme:
        base = scheme_preset(self.scheme)
        netting = Netting(
            period=self.period if self.period is not None else base.netting.period,
            net=self.net if self.net is not None else base.netting.net,
        )
        deposit = self.deposit.apply(base.deposit) if self.deposit is not None else base.deposit
        opening = base.opening_deposit
        if self.deposit is not None and self.deposit.opening:
            opening = tuple(DepositLot(lot.month, lot.value, lot.left) for lot in self.deposit.opening)
        scheme = replace(
            base,
            netting=netting,
            export=self.export.apply(base.export),
            deposit=deposit,
            opening_deposit=opening,
            capacity=self.capacity.apply(base.capacity) if self.capacity is not None else base.capacity,
            standing=base.standing + tuple(StandingCharge(s.name, s.per_month) for s in self.standing),
            vat=self.vat if self.vat is not None else base.vat,
            rules=self.rules.rules(),
        )
        if self.grid_fees is not None:
            scheme = self.grid_fees.apply(scheme)
        if scheme.export.basis == "published" and not scheme.export.monthly_prices:
            raise ValueError(
                "settlement.export.basis 'published' needs settlement.export.monthly_prices "
                "('YYYY-MM' = price per kWh, e.g. the RCEm PSE publishes)"
            )
        return replace(scheme, name=self.scheme) if not scheme.per_slot else scheme
