"""Stream CHAINS: the end of each run of a schedule others run after (its request says
`chain_parent`), which the leading ticker turns into the children's runs
(`natscron_shared.contract.chains`).

Published after the run's final event is stored and before its message is settled, with
the job id as `Nats-Msg-Id`: a runner that dies in between runs the job again and
publishes it then, and JetStream stores one finish per run. A publish that fails hands
the message back, as a failed final event does: a lost finish would lose a child's run.
"""

import logging

from prometheus_client import Counter
from pydantic import ValidationError

from natscron_runner.events import publish
from natscron_shared.contract import names
from natscron_shared.contract.chains import ParentFinish
from natscron_shared.contract.messages import JobEvent
from natscron_shared.nats.connection import JetStreamPublisher

log = logging.getLogger(__name__)


class ParentFinishes:
    def __init__(self, publisher: JetStreamPublisher, bad_messages: Counter) -> None:
        self._publisher = publisher
        self._bad_messages = bad_messages

    async def announce(self, event: JobEvent) -> None:
        """Publish the finish `event` makes, if any; raises `PublishFailedError`."""
        try:
            finish = ParentFinish.of(event)
        except ValidationError as exc:
            self._bad_messages.labels("invalid_parent_finish").inc()
            log.warning("job %s: its end cannot be chained: %s", event.job.job_id, exc)
            return
        if finish is None:
            return
        subject = names.chain_finished_subject(finish.scheduled_job_id)
        await publish(self._publisher, subject, finish, finish.job_id)
