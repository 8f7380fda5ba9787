"""Settlement rules as data: what a scheme is made of, and the published schemes it starts from.

A :class:`Scheme` says over which period import and export are settled (and whether they net
out within it), how exported energy is valued (the tariff's per-slot export price, a market
price averaged and clamped, a published monthly price, or a fixed feed-in price with a yearly
cap), whether that value is paid or credited to a prosumer deposit (with its expiry and refund
cap), the monthly capacity charge, time-variable grid fees, standing charges and the export rules
(export limit, battery to grid, grid charging). Numbers taken from published rules carry their
source; where a number could not be checked it is a config value (see ``config/hemsd.example.toml``).

Sources (checked 2026-12-07; the URLs are the pages read):

- Polish net-billing (ustawa o OZE art. 4b/4c as described by the pages below; the act's own text
  was not among the pages reachable here, so each rule below is a config value):
  exported energy is valued at the market price RCE (RCEm, the monthly price, for prosumers who
  started before 1 July 2024), negative prices counting as zero
  (https://globenergia.pl/rcem-czy-rcet-jak-sa-rozliczani-prosumenci-w-net-billingu-a-jak-powinni-byc/);
  the value goes to a prosumer deposit that pays only for the energy, not distribution
  (https://www.gramwzielone.pl/energia-sloneczna/20178943/cena-energii-dla-prosumentow-w-net-billingu-znowu-spada),
  each month's deposit usable for 12 months
  (https://enerad.pl/aktualnosci/rynkowa-cena-energii-elektrycznej-a-net-billing-cena-sprzedazy/);
  the 2024 amendment raises a month's deposit by 23 % (coefficient 1.23), assigns it to the
  account in the following month, and refunds up to 30 % of unused deposit to prosumers who
  moved from RCEm to RCE (https://www.rp.pl/nieruchomosci/art41622151-fotowoltaika-ministerstwo-wchodza-w-zycie-korzystne-zmiany-dla-prosumentow);
  the 20 % refund cap of art. 4b is as the issue states it, not found in a page read here.
  Import and export are balanced per hour over all phases ("bilansowanie godzinowe": the seller
  sums each hour's import and subtracts that hour's export; the act obliges sellers to settle
  so, as Tauron describes it in https://energia.rp.pl/oze/art39396611-fotowoltaika-nadal-sie-oplaca-jak-sprawdzic-ile-zuzylismy-energii,
  checked 2026-12-07; the act's own text was not reachable here, so the presets keep per-slot
  settlement and ``period = "hour"``, ``net = true`` is a config choice; whether the hour
  became a quarter-hour with the 15-minute market of October 2025 was not found).
  RCEm December 2025: 466.08 PLN/MWh, November 2025: 382.88 PLN/MWh
  (https://www.gramwzielone.pl/?p=20347157).
- Flemish capacity tariff: the monthly peak is the highest quarter-hour average offtake power of
  the month, billed on the average of the last 12 monthly peaks with at least 2.5 kW
  (https://www.wasewind.be/faq/detail/hoe-wordt-het-capaciteitstarief-berekend,
  https://groepsaankoop.be/energie/capaciteitstarief/); 2023: about EUR 40.4 per kW a year
  excluding VAT on average over Flanders, it differs by operator
  (https://www.fluvius.be/nl/veelgestelde-vragen/capaciteitstarief-gezinnen-kleine-ondernemingen).
  One source floors each month's peak at 2.5 kW, another the average: ``minimum_on`` chooses.
- German time-variable grid fees (paragraph 14a EnWG module 3): three levels, high at most
  +100 % of standard for at least two hours a day, low 10-40 % of standard, in at least two
  quarters (https://bet-energie.de/newsletter-anmeldung/newsletter-fuer-netzbetreiber-01/2024/artikel/wie-sollen-die-tarifzeiten-fuer-die-zeitvariablen-netzentgelte-abgeleitet-werden).
  SWA Netze (Augsburg) 2025, gross: low 3.67, standard 9.15, high 13.96 ct/kWh; Q1 and Q4 low
  01:00-04:30 and high 17:00-19:00, standard otherwise and all of Q2 and Q3 (as quoted from the
  operator's 2025 price sheet in https://r.darrennathanael.com/r/Energiewirtschaft/comments/1g49wne/;
  the operator's sheet itself was not reachable here: an example, check your operator's).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

PERIODS = ("slot", "quarter_hour", "hour", "day", "month")
Period = Literal["slot", "quarter_hour", "hour", "day", "month"]
BatteryToGrid = Literal["allowed", "pv_only", "never"]


@dataclass(frozen=True, slots=True)
class Netting:
    """The settlement period; with ``net`` import and export within one period net out."""

    period: Period = "slot"
    net: bool = False


@dataclass(frozen=True, slots=True)
class ExportValue:
    """How a kWh exported is valued.

    ``tariff``: the per-slot export price as the price service composes it (today's);
    ``market``: the market price averaged over ``average`` (plain mean of its slots), clamped at
    zero after averaging when ``clamp_at_zero``, times ``coefficient``;
    ``published``: one price per month, ``monthly_prices`` ("YYYY-MM", price), e.g. RCEm (a
    month not given yet at the latest month's given before it);
    ``fixed``: ``fixed_price``, for at most ``yearly_cap_kwh`` a calendar year (nothing beyond).
    """

    basis: Literal["tariff", "market", "published", "fixed"] = "tariff"
    average: Period = "slot"
    clamp_at_zero: bool = False
    coefficient: float = 1.0
    monthly_prices: tuple[tuple[str, float], ...] = ()
    fixed_price: float = 0.0
    yearly_cap_kwh: float | None = None

    def published(self, month: str) -> float | None:
        """The month's published price; before it is published (RCEm comes after its month), the
        latest month's given before it, as the estimate; None when none is given before it."""
        before = [(key, price) for key, price in self.monthly_prices if key <= month]
        return max(before)[1] if before else None


@dataclass(frozen=True, slots=True)
class Deposit:
    """Export value credited to a deposit instead of paid (a prosumer account).

    A month's value times ``coefficient`` is credited ``credited_after_months`` later, pays the
    components in ``covers`` (with their VAT) oldest deposit first, and what is left
    ``expiry_months`` after crediting is refunded up to ``refund_cap`` of the value credited.
    """

    covers: tuple[Literal["energy", "fees"], ...] = ("energy",)
    coefficient: float = 1.0
    credited_after_months: int = 1
    expiry_months: int = 12
    refund_cap: float = 0.2


@dataclass(frozen=True, slots=True)
class DepositLot:
    """One month's deposit: credited in ``month`` ("YYYY-MM"), ``value`` then, ``left`` now."""

    month: str
    value: float
    left: float


@dataclass(frozen=True, slots=True)
class CapacityCharge:
    """A monthly charge on the peak of ``window_min``-minute average import power.

    Billed kW: the mean of the last ``average_months`` monthly peaks (this month's included; the
    months before from the metered history or the configured ``previous_peaks_kw``), at least
    ``minimum_kw`` (on each month's peak or on the mean, ``minimum_on``), times
    ``price_per_kw_month`` (net of VAT).
    """

    price_per_kw_month: float
    minimum_kw: float = 0.0
    average_months: int = 1
    minimum_on: Literal["month", "average"] = "month"
    window_min: int = 15
    previous_peaks_kw: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class FeeWindow:
    """A fee level in local minutes-of-day [start, end) of ``months`` (end 1440 = midnight)."""

    level: str
    start_min: int
    end_min: int
    months: frozenset[int] = frozenset(range(1, 13))

    def matches(self, minute: int, month: int) -> bool:
        if month not in self.months:
            return False
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


@dataclass(frozen=True, slots=True)
class TimeVariableFees:
    """Grid fee levels by time of day (per operator and year), per kWh imported.

    ``levels``: (name, price) as published, ``vat_included`` the VAT rate inside them (0: net).
    The import prices already hold the ``standard`` level when ``in_prices`` (a flat network fee
    in the tariff): then only each level's difference from it is added.
    """

    operator: str
    year: int
    levels: tuple[tuple[str, float], ...]
    windows: tuple[FeeWindow, ...]
    default_level: str = "standard"
    vat_included: float = 0.0
    in_prices: bool = True
    source: str = ""

    def price(self, level: str) -> float:
        for name, value in self.levels:
            if name == level:
                return value
        raise ValueError(f"fee level {level!r} not among {', '.join(n for n, _ in self.levels)}")

    def level_at(self, minute: int, month: int) -> str:
        for window in self.windows:
            if window.matches(minute, month):
                return window.level
        return self.default_level

    def added_gross(self, minute: int, month: int) -> float:
        """Per kWh, VAT included, on top of the import price at a local minute of a month."""
        base = self.price(self.default_level) if self.in_prices else 0.0
        return self.price(self.level_at(minute, month)) - base


@dataclass(frozen=True, slots=True)
class StandingCharge:
    """A fixed charge per month, net of VAT (pro rata for the part of a month settled)."""

    name: str
    per_month: float


@dataclass(frozen=True, slots=True)
class ExportRules:
    """What the grid connection allows: export limit (W, or % of the PV peak), whether the
    battery may export (``battery_to_grid``) and whether it may charge from the grid."""

    export_limit_w: float | None = None
    export_limit_pct_of_pv: float | None = None
    battery_to_grid: BatteryToGrid = "allowed"
    grid_charging: bool = True

    def export_limit(self, pv_peak_w: float) -> float | None:
        limits = [x for x in (self.export_limit_w,) if x is not None]
        if self.export_limit_pct_of_pv is not None:
            limits.append(pv_peak_w * self.export_limit_pct_of_pv / 100.0)
        return min(limits) if limits else None

    def planner_flags(self) -> tuple[bool, bool]:
        """(allow_grid_charge, allow_battery_export) for the planners. The planners do not track
        where stored energy came from, so ``pv_only`` with grid charging allowed keeps the
        battery from exporting at all (the stricter reading); without grid charging everything
        stored is PV and may go out."""
        if self.battery_to_grid == "never":
            return self.grid_charging, False
        if self.battery_to_grid == "pv_only":
            return self.grid_charging, not self.grid_charging
        return self.grid_charging, True


@dataclass(frozen=True, slots=True)
class ExportRulePreset:
    country: str
    rules: ExportRules
    note: str


# Starting points, each overridable key by key in [settlement.export_rules]; the connection
# agreement of the site decides. Not verified against each country's grid code.
EXPORT_RULE_PRESETS: tuple[ExportRulePreset, ...] = (
    ExportRulePreset("none", ExportRules(), "no restriction (today's behaviour)"),
    ExportRulePreset(
        "PL", ExportRules(), "net-billing values all export alike; no rule on the battery's origin found"
    ),
    ExportRulePreset(
        "BE", ExportRules(), "Flanders: export paid by the supplier's contract; no rule on the battery found"
    ),
    ExportRulePreset(
        "DE",
        ExportRules(battery_to_grid="pv_only"),
        "EEG feed-in pays PV energy; grid energy stored and fed in is not PV (origin rule)",
    ),
    ExportRulePreset("zero_export", ExportRules(export_limit_w=0.0), "connections that allow no export"),
)


def export_rule_preset(name: str) -> ExportRules:
    for preset in EXPORT_RULE_PRESETS:
        if preset.country == name:
            return preset.rules
    raise ValueError(
        f"unknown export rule preset {name!r} (known: {', '.join(p.country for p in EXPORT_RULE_PRESETS)})"
    )


@dataclass(frozen=True, slots=True)
class Scheme:
    """One site's settlement; the default is today's per-slot sum."""

    name: str = "per_slot"
    netting: Netting = Netting()
    export: ExportValue = ExportValue()
    deposit: Deposit | None = None
    opening_deposit: tuple[DepositLot, ...] = ()
    capacity: CapacityCharge | None = None
    grid_fees: TimeVariableFees | None = None
    standing: tuple[StandingCharge, ...] = ()
    vat: float = 0.0  # on capacity and standing charges (the per-kWh prices hold their own)
    rules: ExportRules = field(default_factory=ExportRules)

    @property
    def per_slot(self) -> bool:
        """Whether this is today's per-slot sum: the plans and backtests stay as they were."""
        return self == PER_SLOT


PER_SLOT = Scheme()


# --- published schemes -----------------------------------------------------------------------------


def _quarters(*quarters: int) -> frozenset[int]:
    return frozenset(m for q in quarters for m in range(3 * q - 2, 3 * q + 1))


@dataclass(frozen=True, slots=True)
class SchemePreset:
    name: str
    scheme: Scheme
    description: str


TIME_VARIABLE_FEES: tuple[TimeVariableFees, ...] = (
    TimeVariableFees(
        operator="swa_netze",
        year=2025,
        levels=(("low", 0.0367), ("standard", 0.0915), ("high", 0.1396)),
        windows=(
            FeeWindow("low", 60, 270, _quarters(1, 4)),
            FeeWindow("high", 1020, 1140, _quarters(1, 4)),
        ),
        vat_included=0.19,
        source="SWA Netze 2025 price sheet as quoted in r/Energiewirtschaft (see the module docstring)",
    ),
)


def time_variable_fees(operator: str, year: int) -> TimeVariableFees:
    for fees in TIME_VARIABLE_FEES:
        if fees.operator == operator and fees.year == year:
            return fees
    known = ", ".join(f"{f.operator}/{f.year}" for f in TIME_VARIABLE_FEES)
    raise ValueError(f"no time-variable grid fees for {operator}/{year} (known: {known})")


SCHEME_PRESETS: tuple[SchemePreset, ...] = (
    SchemePreset("per_slot", PER_SLOT, "today's per-slot prices: import kWh x price - export kWh x price"),
    SchemePreset(
        "pl_net_billing_rcem",
        Scheme(
            name="pl_net_billing_rcem",
            export=ExportValue(basis="published"),
            deposit=Deposit(),
        ),
        "Polish net-billing on the monthly price RCEm (give it per month in export.monthly_prices)",
    ),
    SchemePreset(
        "pl_net_billing_rce",
        Scheme(
            name="pl_net_billing_rce",
            export=ExportValue(basis="market", average="hour", clamp_at_zero=True),
            deposit=Deposit(coefficient=1.23),
        ),
        "Polish net-billing on the market price RCE, averaged per hour and clamped at zero, deposit x 1.23",
    ),
    SchemePreset(
        "be_flanders_capacity",
        Scheme(
            name="be_flanders_capacity",
            capacity=CapacityCharge(
                price_per_kw_month=40.4 / 12.0, minimum_kw=2.5, average_months=12, minimum_on="month"
            ),
        ),
        "Flemish capacity tariff: the 12-month mean of monthly 15-min peaks, at least 2.5 kW",
    ),
    SchemePreset(
        "de_14a_module3",
        Scheme(name="de_14a_module3", grid_fees=TIME_VARIABLE_FEES[0]),
        "German time-variable grid fees (paragraph 14a EnWG module 3), SWA Netze 2025 as the example",
    ),
)


def scheme_preset(name: str) -> Scheme:
    for preset in SCHEME_PRESETS:
        if preset.name == name:
            return preset.scheme
    raise ValueError(
        f"unknown settlement scheme {name!r} (known: {', '.join(p.name for p in SCHEME_PRESETS)})"
    )


def month_key(moment: datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def add_months(month: str, n: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def days_in_month(month: str) -> int:
    return calendar.monthrange(int(month[:4]), int(month[5:7]))[1]
