"""What every service runs on: its lifecycle under supervision, the health server,
settings from the environment, the clock and where the servers are."""
