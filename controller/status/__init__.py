"""What the running daemon shows its front ends: a read-only site state, health, the action in force."""
