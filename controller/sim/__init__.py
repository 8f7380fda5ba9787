"""Everything that runs the model instead of a real site: emulator, backtest, what-if."""
