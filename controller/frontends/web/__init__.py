"""The local HTTP API, the dashboard page and live updates."""
