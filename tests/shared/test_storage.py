"""The storage schema in the contract stays in step with what fills the documents: the spec
model, the statistics' counters and the indexes name fields the documents declare."""

from typing import get_type_hints

from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.job_stats import COUNTERS, DURATION_COUNTS
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.storage import (
    DECISIONS,
    INDEXES,
    ITEMS,
    JOB_STATS,
    JOBS,
    RECORDER_FLUSHES,
    SCHEDULED_JOBS,
    AttemptFields,
    DecisionDocument,
    ItemDocument,
    JobDocument,
    JobStatsDocument,
    RecorderFlushDocument,
    ScheduledJobDocument,
)

DOCUMENTS = {
    SCHEDULED_JOBS: ScheduledJobDocument,
    JOBS: JobDocument,
    JOB_STATS: JobStatsDocument,
    ITEMS: ItemDocument,
    DECISIONS: DecisionDocument,
    RECORDER_FLUSHES: RecorderFlushDocument,
}


def fields_of(collection: str) -> set[str]:
    return set(get_type_hints(DOCUMENTS[collection]))


def test_a_scheduled_job_document_holds_every_field_of_the_spec() -> None:
    assert set(ScheduledJob.model_fields) <= fields_of(SCHEDULED_JOBS)


def test_only_the_ids_are_sure_in_documents_that_several_writers_create() -> None:
    assert ScheduledJobDocument.__required_keys__ == {"scheduled_job_id"}
    assert JobDocument.__required_keys__ == {"job_id"}
    assert JobStatsDocument.__required_keys__ == {"_id", "scope", "period"}
    assert ItemDocument.__optional_keys__ == frozenset()


def test_the_statistics_read_only_fields_of_a_job_stats_document() -> None:
    summed = {"duration_ms_sum", "duration_count", "duration_ms_min", "duration_ms_max"}
    read = {*COUNTERS, *summed, *DURATION_COUNTS, "items_scraped", "items_saved"}
    assert read <= fields_of(JOB_STATS)


def test_a_job_document_keeps_every_field_of_an_attempt_record() -> None:
    assert set(get_type_hints(AttemptFields)) == set(AttemptRecord.model_fields)


def test_a_decision_document_holds_every_field_of_a_decision_record() -> None:
    assert set(Decision.model_fields) <= fields_of(DECISIONS)


def test_every_index_is_on_fields_of_its_documents() -> None:
    assert set(INDEXES) <= set(DOCUMENTS)
    for collection, indexes in INDEXES.items():
        for index in indexes:
            assert {field for field, _ in index.keys} <= fields_of(collection), index
            assert all(order in (1, -1) for _, order in index.keys)


def test_the_unique_indexes_are_the_keys_guarded_upserts_rely_on() -> None:
    unique = {
        collection: keys
        for collection, indexes in INDEXES.items()
        if (keys := [index.keys for index in indexes if index.unique])
    }
    assert unique == {
        JOBS: [(("job_id", 1),)],
        SCHEDULED_JOBS: [(("scheduled_job_id", 1),)],
        ITEMS: [(("key", 1),)],
    }
