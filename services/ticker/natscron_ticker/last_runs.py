"""Every ticker, leader or not, follows KV `last_runs` with a watch: the end of the newest
scheduled run of each interval `from: last_run` (`natscron_shared.contract.last_runs`).

The runners write one record per such run, when it ends; the ticker reads nothing of the
runs themselves (a consumer of EVENTS would parse four events of every job to find the few
that matter). A new leader knows every last end from the start. Each record that arrives
tells the schedule book (`ScheduleBook.touch`), so the leader places the schedule again:
its next run is now a period after this end.
"""

import logging
from collections.abc import Callable

from prometheus_client import Counter
from pydantic import ValidationError

from natscron_shared.contract.last_runs import LastRun
from natscron_shared.nats.kv_watch import KvMirror

log = logging.getLogger(__name__)


class LastRunMirror(KvMirror[LastRun]):
    def __init__(self, changed: Callable[[str], None], bad_values: Counter) -> None:
        super().__init__(self._parse)
        self._changed = changed
        self._bad_values = bad_values

    def put(self, key: str, value: LastRun) -> None:
        super().put(key, value)
        self._changed(key)

    def drop(self, key: str) -> None:
        super().drop(key)
        self._changed(key)

    def _parse(self, key: str, value: bytes) -> LastRun | None:
        try:
            return LastRun.from_json(value)
        except ValidationError as exc:
            self._bad_values.inc()
            problem = exc.errors(include_url=False, include_input=False)[:3]
            log.warning("ignoring KV last_runs entry %r: %s", key, problem)
            return None
