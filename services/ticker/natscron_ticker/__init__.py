"""The ticker: holds the leader lease and publishes due jobs (docs/architecture.md)."""

from natscron_ticker.service import TickerService

__all__ = ["TickerService"]
