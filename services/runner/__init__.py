"""The runner: executes run requests from JetStream with registered scrapers."""

from services.runner.service import RunnerService

__all__ = ["RunnerService"]
