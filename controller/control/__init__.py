"""The control tick: from the plan (or an override) through the safety guard to the inverter, and commands."""
