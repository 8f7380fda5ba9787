"""How a backtest runs the planner: which forecasts it sees, which planner, the horizon, the
value of the energy left at its end, and the scheme's rules and charges it plans under."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from controller.forecast.errors import EXACT_PARTS
from controller.physics import GridLimits
from controller.planner.plan import EndValue, PlanConstraints
from controller.settlement.schemes import Scheme

# yesterday: the realistic prices with PV and load as they were at the same time a day before
# (the plain baseline every backtest shows, planned by the deterministic dynamic program)
FORECASTS = ("perfect", "realistic", "yesterday")
# deterministic: controller.planner.deterministic on the forecast; recourse: controller.planner.recourse on the
# forecast and the spread of past forecast errors (realistic forecasts; none with perfect ones)
PLANNERS = ("deterministic", "recourse")
DEFAULT_END_VALUE = EndValue(import_percentile=30.0)
# Realistic forecasts: decision margin, times the horizon's median gap between import and
# export price (what a kWh of PV is worth more stored than exported: what a wrong guess costs).
MARGIN_FRACTION = 0.06
NO_LIMITS = GridLimits()


@dataclass(frozen=True, slots=True)
class PeakSettings:
    """A capacity charge as the planner weighs it: per kW the month's peak rises (VAT in), the
    charge's minimum and its averaging window."""

    price_per_kw: float
    minimum_kw: float = 0.0
    window_h: float = 0.25


@dataclass(frozen=True)
class PlannerSettings:
    """How the backtest runs the planner (the rest comes from the battery and the scenario)."""

    forecast: str = "perfect"
    horizon_hours: float = 48.0
    end_value: EndValue = DEFAULT_END_VALUE
    timezone: ZoneInfo | None = None  # the market's zone; from the scenario when None
    # The deterministic planner's decision margin as a fraction of the horizon's median
    # import-export gap; None: MARGIN_FRACTION with realistic forecasts, else none (the recourse
    # planner prices the forecast's uncertainty itself and takes no margin).
    margin_fraction: float | None = None
    soc_step_kwh: float | None = None
    planner: str = "deterministic"
    # the scheme's export rules, as the planners take them
    allow_grid_charge: bool = True
    allow_battery_export: bool = True
    # a capacity charge the planner plans against (controller.planner.peak)
    peak: PeakSettings | None = None
    # the settlement period (s) within which import and export net out, where it is longer than
    # the intervals: planned per period (controller.planner.periods); None: per interval
    netting_s: int | None = None
    # the scheme whose yearly feed-in cap the planner plans against, with the export the replay
    # has settled that year (controller.planner.export_room); None: no cap
    feed_in_cap: Scheme | None = None
    # parts of a realistic forecast (pv, load) given as they will be measured, the others still
    # forecast: what each part's forecast costs (bench/attribution.py)
    exact: frozenset[str] = frozenset()

    @property
    def rules(self) -> PlanConstraints:
        """The export rules alone (the recourse planner takes no decision margin)."""
        return PlanConstraints(self.allow_grid_charge, self.allow_battery_export)

    def __post_init__(self) -> None:
        if not self.exact <= EXACT_PARTS:
            raise ValueError(f"exact must be among {sorted(EXACT_PARTS)}, got {sorted(self.exact)}")
        if self.forecast not in FORECASTS:
            raise ValueError(f"forecast must be one of {', '.join(FORECASTS)}, got {self.forecast!r}")
        if self.planner not in PLANNERS:
            raise ValueError(f"planner must be one of {', '.join(PLANNERS)}, got {self.planner!r}")
        if not self.horizon_hours > 0:
            raise ValueError(f"horizon_hours must be > 0, got {self.horizon_hours!r}")


PERFECT = PlannerSettings()
