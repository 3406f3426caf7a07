"""What the recorder writes is what the contract's storage schema declares: a field the
recorder starts writing, or renames, must be named in `natscron_shared.contract.storage`
first, where the API, the CLI and the migration read it."""

from datetime import UTC, datetime

from natscron_recorder.items_batch import item_writes
from natscron_recorder.rollup_writer import SCHEDULE_FIELDS
from natscron_recorder.schedule_writer import spec_fields
from natscron_shared.contract.messages import ItemBatch, ScrapedItem
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.run_history import HISTORY_FIELDS
from natscron_shared.contract.storage import ItemDocument, ScheduledJobDocument

AT = datetime(2026, 11, 25, 12, tzinfo=UTC)
SCHEDULED_JOB_FIELDS = (
    ScheduledJobDocument.__required_keys__ | ScheduledJobDocument.__optional_keys__
)


def test_the_run_history_and_next_run_are_declared_fields() -> None:
    next_run = {"next_run_at", "remaining_runs", "next_run_computed_at"}
    assert {*HISTORY_FIELDS, *next_run} <= SCHEDULED_JOB_FIELDS
    assert set(SCHEDULE_FIELDS) - {"_id"} <= SCHEDULED_JOB_FIELDS


def test_the_mirrored_spec_is_a_declared_field_each() -> None:
    spec = ScheduledJob(scheduled_job_id="s", name="s", cron_expression="0 * * * *", scraper="x")
    bookkeeping = {"kv_revision", "created_at", "updated_at", "deleted_at"}
    assert set(spec_fields(spec)) | bookkeeping <= SCHEDULED_JOB_FIELDS


def test_an_item_write_sets_exactly_the_fields_of_an_item_document() -> None:
    batch = ItemBatch(
        job_id="j",
        scheduled_job_id="s",
        batch=0,
        scraped_at=AT,
        items=[ScrapedItem(key="k", data={})],
    )
    ((query, update),) = item_writes([batch])
    written = {"key", *update["$set"], *update["$setOnInsert"]}
    assert written == ItemDocument.__required_keys__
    assert query["key"] == "k"
