"""Pausing a scheduled job whose runs keep failing (`failure_threshold`).

The recorder counts `consecutive_failures` exactly, so it is the one to act: when a batch
takes the count across a multiple of the threshold, the job is paused in KV (the source of
truth), with the reason. After a resume the count goes on from where it was, so the job
pauses again after another `failure_threshold` failures in a row; a completed run resets it.

The pause is written inside the batch's transaction, before its commit: if it fails, the
batch is not recorded and comes again; if the transaction is run again, pausing a job
already paused changes nothing.
"""

import logging
from datetime import datetime

from nats.js.kv import KeyValue

from natscron_recorder.metrics import RecorderMetrics
from natscron_shared.nats.schedule_bucket import pause

log = logging.getLogger(__name__)


def crossed(before: int, after: int, threshold: int | None) -> bool:
    """Whether the failures count went across a multiple of `threshold`."""
    return threshold is not None and after // threshold > before // threshold


class AutoPause:
    def __init__(self, bucket: KeyValue, metrics: RecorderMetrics) -> None:
        self._bucket = bucket
        self._metrics = metrics

    async def __call__(
        self, scheduled_job_id: str, failures: int, threshold: int, now: datetime
    ) -> None:
        reason = f"{failures} runs in a row failed (failure_threshold {threshold})"
        (result,) = await pause(self._bucket, [scheduled_job_id], reason, now)
        if result.outcome == "paused":
            self._metrics.auto_paused.inc()
            log.warning("paused scheduled job %s: %s", scheduled_job_id, reason)
