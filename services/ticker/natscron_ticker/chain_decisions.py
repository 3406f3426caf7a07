"""What the leader decided for a chained schedule on the end of one of its parents' runs
(`chain_steps`): a run fired, held (the parent's run does not qualify, or another parent
has yet to run), or dropped (the child is paused or inactive).

Every decision goes through `ChainDecisions.record`: counted
(`natscron_ticker_chain_decisions_total{decision}`), logged, and published on DECISIONS as
the ticker's other decision records are (same publisher, its key as msg id, counted in
`natscron_ticker_decisions_total{kind}`), so `explain` shows it with the child's history.
A record that fails to publish is counted (`natscron_ticker_nats_errors_total{operation=
"decision"}`) and logged, and chaining goes on: explain then lists the run without it.
"""

import logging

from natscron_shared.contract.decisions import Decision
from natscron_ticker.metrics import TickerMetrics
from natscron_ticker.slot_writers import SlotPublisher

log = logging.getLogger(__name__)


class ChainDecisions:
    def __init__(self, publisher: SlotPublisher, metrics: TickerMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def record(self, decision: Decision) -> None:
        self._metrics.chain_decisions.labels(decision.kind.value.removeprefix("chain_")).inc()
        self._metrics.decisions.labels(decision.kind.value).inc()
        log.info(
            "%s: %s after job %s%s: %s",
            decision.scheduled_job_id,
            decision.kind.value,
            decision.cause_job_id,
            "" if decision.job_id is None else f" (job {decision.job_id})",
            decision.note,
        )
        failed = await self._publisher.publish_decisions([decision])
        if failed:
            self._metrics.nats_errors.labels("decision").inc(failed)
            log.warning(
                "%s: the %s record after job %s was not published",
                decision.scheduled_job_id,
                decision.kind.value,
                decision.cause_job_id,
            )
