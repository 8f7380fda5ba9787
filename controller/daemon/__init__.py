"""The daemon: the application and its jobs, the life cycle under systemd, and the wiring of its parts."""
