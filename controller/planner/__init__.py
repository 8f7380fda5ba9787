"""Planning the battery at least cost: the plan's types, the deterministic and the recourse dynamic programs."""
