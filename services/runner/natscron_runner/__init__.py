"""The runner: executes run requests from JetStream with registered scrapers."""

from natscron_runner.service import RunnerService

__all__ = ["RunnerService"]
