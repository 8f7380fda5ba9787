"""Settlement: the bill as the supplier and the grid operator compute it.

``schemes`` holds the rules as data (netting periods, export valuation, the prosumer deposit,
capacity charges, time-variable grid fees, fixed feed-in, standing charges, export rules and
their presets), ``config`` the TOML table ``[settlement]`` that picks and overrides them, and
``engine`` turns metered import/export per slot into the bill by component, per settlement
period and per month. The planner, the backtest, the what-if and the reports settle through
``engine.settle``; without a scheme configured it is today's per-slot sum of
import kWh x import price - export kWh x export price, to the cent.
"""
