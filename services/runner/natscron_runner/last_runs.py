"""KV `last_runs`: the end of each scheduled run of an interval `from: last_run`, which its
schedule's next run counts from (`natscron_shared.contract.last_runs`).

Written after the run's final event is stored and before its message is settled: a runner
that dies in between runs the job again, and writes it then. Never over the record of a
later slot's run (catch-up `all`, or a presumed end, can leave two runs of one schedule
going, to end in either order): the key is read, then created or updated on the revision
read. A write that fails is counted and logged, and the job settles as usual: the ticker
then presumes the end (`longest_run`).
"""

import logging

import nats.errors
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from prometheus_client import Counter
from pydantic import ValidationError

from natscron_shared.contract.last_runs import LastRun, LastRunRecord
from natscron_shared.contract.messages import JobEvent

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 3
"""Reads and writes of one record before giving up: two runs of one schedule ending at the
same moment is the only contention."""
NATS_ERRORS = (nats.errors.Error, TimeoutError)


class LastRunWriter:
    def __init__(self, bucket: KeyValue, nats_errors: Counter, bad_messages: Counter) -> None:
        self._bucket = bucket
        self._nats_errors = nats_errors
        self._bad_messages = bad_messages

    async def record(self, event: JobEvent) -> None:
        """Put the end of the run `event` ends, if it is one to record; never raises."""
        try:
            record = LastRunRecord.of(event)
        except ValidationError as exc:
            self._bad_messages.labels("invalid_last_run").inc()
            log.warning("job %s: its end cannot be recorded: %s", event.job.job_id, exc)
            return
        if record is None:
            return
        try:
            written = await self._put(record)
        except NATS_ERRORS as exc:
            self._nats_errors.labels("last_run").inc()
            log.warning("job %s: recording its end failed: %r", record.job_id, exc)
            return
        if not written:
            self._nats_errors.labels("last_run").inc()
            log.warning("job %s: its end was not recorded: the key kept changing", record.job_id)

    async def _put(self, record: LastRunRecord) -> bool:
        """Whether the record is in (or a later slot's was already)."""
        key = record.scheduled_job_id
        value = record.model_dump_json().encode()
        for _ in range(WRITE_ATTEMPTS):
            try:
                entry = await self._bucket.get(key)
            except (KeyNotFoundError, KeyDeletedError):
                try:
                    await self._bucket.create(key, value)
                except KeyWrongLastSequenceError:
                    continue
                return True
            if _later_or_same(entry.value, record):
                return True
            try:
                await self._bucket.update(key, value, last=entry.revision)
            except KeyWrongLastSequenceError:
                continue
            return True
        return False


def _later_or_same(stored: bytes | None, record: LastRunRecord) -> bool:
    """Whether `stored` records the run of `record`'s slot or of a later one (a value that
    is no record is replaced)."""
    try:
        kept = LastRun.from_json(stored or b"")
    except ValidationError:
        return False
    return kept.scheduled_for >= record.scheduled_for
