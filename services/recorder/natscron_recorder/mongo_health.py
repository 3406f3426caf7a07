"""Whether MongoDB takes writes right now, as the recorder's writers last saw it."""

import logging
from datetime import datetime

from natscron_recorder.metrics import RecorderMetrics

log = logging.getLogger(__name__)


class MongoHealth:
    def __init__(self, metrics: RecorderMetrics) -> None:
        self._metrics = metrics
        self.down_since: datetime | None = None
        self.last_error = ""
        metrics.mongo_available.set(1)

    def wrote(self) -> None:
        if self.down_since is not None:
            log.info("MongoDB takes writes again (down since %s)", self.down_since.isoformat())
        self.down_since = None
        self._metrics.mongo_available.set(1)

    def failed(self, error: Exception, now: datetime) -> None:
        self._metrics.mongo_errors.inc()
        self._metrics.mongo_available.set(0)
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        if self.down_since is None:
            self.down_since = now
            log.warning("MongoDB write failed, holding the batch until it succeeds: %s", error)

    def problems(self) -> list[str]:
        if self.down_since is None:
            return []
        return [f"MongoDB unavailable since {self.down_since.isoformat()}: {self.last_error}"]
