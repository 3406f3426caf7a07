"""A `jobs` document is a function of the most advanced event of its job.

Events are ordered by `(attempt, status.rank)`, and a terminal status is final. Every
event carries the whole request and every field of its attempt (absent ones as None),
so the stored document is what its most advanced event says, plus the records of its
ended attempts (`attempts`, folded from every event that ended one) and what the item
batches added (`properties_saved`, `saved_batches`), whatever order, batching or
duplication the events arrived in.
"""

from natscron_shared.contract.job_fields import progress
from natscron_shared.contract.messages import JobEvent


def most_advanced(events: list[JobEvent]) -> JobEvent:
    return max(events, key=lambda event: (progress(event), event.at))
