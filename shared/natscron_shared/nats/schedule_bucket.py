"""KV `scheduled_jobs`, the source of truth the ticker watches: write specs, and pause,
resume and delete scheduled jobs: one, many by id, or all those a label selector picks.

A schedule another one runs after (`after`) is not deleted unless that one goes too: its
delete is `refused`, naming the schedule that runs after it (`chain_graph.after_deleting`).
Finding them reads every spec, so a delete costs a read of the bucket.

Each change is a compare-and-set on the entry's revision, so an edit made in between is
never overwritten: the change is made again on the newer value. The ticker and the
recorder follow the bucket, so a change here is all it takes.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue
from pydantic import ValidationError

from natscron_shared.contract import names
from natscron_shared.contract.chain_graph import after_deleting
from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.errors import BadRequestError
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats.connection import to_json
from natscron_shared.nats.kv_watch import current_values

MAX_CAS_ATTEMPTS = 5
LABEL_PAIR_SEPARATOR = ","

Outcome = Literal["paused", "resumed", "deleted", "unchanged", "not_found", "refused"]
Change = Callable[[ScheduledJob], ScheduledJob | None]
"""The changed spec, or None when there is nothing to change."""


@dataclass(frozen=True)
class ControlResult:
    scheduled_job_id: str
    outcome: Outcome
    message: str


def parse_selector(text: str) -> dict[str, str]:
    """`team=sold,env=prod` -> {"team": "sold", "env": "prod"} (every pair must match)."""
    selector: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(LABEL_PAIR_SEPARATOR))):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise BadRequestError(f"bad label selector {pair!r}: write key=value[,key=value]")
        selector[key.strip()] = value.strip()
    if not selector:
        raise BadRequestError("an empty label selector would pick every scheduled job")
    return selector


def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


async def select(bucket: KeyValue, selector: Mapping[str, str]) -> list[str]:
    """The ids of the scheduled jobs whose labels match `selector`, sorted."""
    chosen = []
    for key, value in (await current_values(bucket)).items():
        try:
            spec = ScheduledJob.model_validate_json(value)
        except ValidationError:
            continue
        if matches(spec.labels, selector):
            chosen.append(key)
    return sorted(chosen)


async def pause(
    bucket: KeyValue, ids: Iterable[str], reason: str | None, now: datetime
) -> list[ControlResult]:
    """Active jobs become paused, with the reason and the moment."""

    def change(spec: ScheduledJob) -> ScheduledJob | None:
        if spec.status is not ScheduledJobStatus.ACTIVE:
            return None
        return spec.model_copy(
            update={"status": ScheduledJobStatus.PAUSED, "paused_reason": reason, "paused_at": now}
        )

    return [await _change(bucket, i, change, "paused", "not active") for i in ids]


async def resume(bucket: KeyValue, ids: Iterable[str]) -> list[ControlResult]:
    """Paused jobs become active again; their pause note is cleared."""

    def change(spec: ScheduledJob) -> ScheduledJob | None:
        if spec.status is not ScheduledJobStatus.PAUSED:
            return None
        return spec.model_copy(
            update={"status": ScheduledJobStatus.ACTIVE, "paused_reason": None, "paused_at": None}
        )

    return [await _change(bucket, i, change, "resumed", "not paused") for i in ids]


async def stored_chains(bucket: KeyValue) -> dict[str, list[str]]:
    """Every key of the bucket and the ids its spec runs after (none for a value that is
    not a spec): the graph `chain_graph` checks."""
    graph: dict[str, list[str]] = {}
    for key, value in (await current_values(bucket)).items():
        try:
            graph[key] = ScheduledJob.model_validate_json(value).parents
        except ValidationError:
            graph[key] = []
    return graph


async def delete(bucket: KeyValue, ids: Iterable[str]) -> list[ControlResult]:
    """The spec leaves KV; the recorder keeps its document and history, marked inactive.
    One that a schedule staying behind runs after is `refused`."""
    ids = list(dict.fromkeys(ids))
    graph = await stored_chains(bucket)
    refused: dict[str, list[str]] = {}
    for problem in after_deleting(graph, set(ids) & graph.keys()):
        for parent in problem.scheduled_job_ids & set(ids):
            refused.setdefault(parent, []).append(str(problem))
    results = []
    for scheduled_job_id in ids:
        read = await _read(bucket, scheduled_job_id)
        if read is None:
            results.append(_not_found(scheduled_job_id))
            continue
        if scheduled_job_id in refused:
            reasons = "; ".join(refused[scheduled_job_id])
            results.append(ControlResult(scheduled_job_id, "refused", f"not deleted: {reasons}"))
            continue
        await bucket.delete(scheduled_job_id)
        results.append(ControlResult(scheduled_job_id, "deleted", "deleted; history kept"))
    return results


async def _change(
    bucket: KeyValue,
    scheduled_job_id: str,
    change: Change,
    done: Outcome,
    unchanged_because: str,
) -> ControlResult:
    for _ in range(MAX_CAS_ATTEMPTS):
        read = await _read(bucket, scheduled_job_id)
        if read is None:
            return _not_found(scheduled_job_id)
        spec, revision = read
        changed = change(spec)
        if changed is None:
            return ControlResult(
                scheduled_job_id, "unchanged", f"{unchanged_because} ({spec.status.value})"
            )
        try:
            await bucket.update(scheduled_job_id, to_json(changed), last=revision)
        except KeyWrongLastSequenceError:
            continue
        return ControlResult(scheduled_job_id, done, done)
    raise BadRequestError(f"{scheduled_job_id} kept changing; try again")


async def _read(bucket: KeyValue, scheduled_job_id: str) -> tuple[ScheduledJob, int] | None:
    try:
        entry = await bucket.get(scheduled_job_id)
    except KeyNotFoundError:
        return None
    if entry.operation in (KV_DEL, KV_PURGE) or entry.revision is None:
        return None
    try:
        return ScheduledJob.model_validate_json(entry.value or b""), entry.revision
    except ValidationError:
        return None


def _not_found(scheduled_job_id: str) -> ControlResult:
    return ControlResult(scheduled_job_id, "not_found", "no such scheduled job")


async def put_schedules(js: JetStreamContext, specs: list[ScheduledJob]) -> None:
    bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
    for spec in specs:
        await bucket.put(spec.scheduled_job_id, to_json(spec))
