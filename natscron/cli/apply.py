"""`natscron apply -f schedules.yaml`: validate all, check all against the scraper
catalogue (which also gives each its runner pool), compare with KV `scheduled_jobs`, then
write what changed. Nothing is written
unless every spec passes, and the chains (`after`) of the file over what KV holds name only
existing schedules and never lead back to themselves; `--dry-run` only shows the changes,
`--prune` also deletes the scheduled jobs the file does not name (not one that a schedule
staying behind runs after)."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from natscron.cli.connect import nats_client
from natscron.schedule_file import check_schedules, load_schedules
from natscron.stack import resolve_nats_url
from natscron_shared.contract import names
from natscron_shared.contract.chain_graph import check_chains
from natscron_shared.contract.errors import BadRequestError, InvalidChainError
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.nats import schedule_bucket
from natscron_shared.nats.jetstream_check import Needs, require_provisioned
from natscron_shared.nats.kv_watch import current_values
from natscron_shared.nats.schedule_bucket import put_schedules
from natscron_shared.nats.scrapers_bucket import load_catalogue
from natscron_shared.runtime.settings import Settings

NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS, names.KV_SCRAPERS))
UNCHECKED_NEEDS = Needs(buckets=(names.KV_SCHEDULED_JOBS,))


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass
class Change:
    scheduled_job_id: str
    action: Action
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Field name -> (in KV, in the file), for `updated`."""

    def as_json(self) -> dict[str, Any]:
        return {
            "scheduled_job_id": self.scheduled_job_id,
            "action": self.action.value,
            "fields": {name: {"from": old, "to": new} for name, (old, new) in self.fields.items()},
        }

    def line(self) -> str:
        text = f"{self.scheduled_job_id}: {self.action.value}"
        if self.fields:
            diffs = "; ".join(
                f"{name}: {_show(old)} -> {_show(new)}" for name, (old, new) in self.fields.items()
            )
            text += f" ({diffs})"
        return text


@dataclass
class Plan:
    path: Path
    changes: list[Change]
    dry_run: bool

    def counts(self) -> dict[Action, int]:
        return {action: sum(c.action is action for c in self.changes) for action in Action}

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "dry_run": self.dry_run,
            "changes": [change.as_json() for change in self.changes],
        }

    def report(self) -> str:
        lines = [change.line() for change in self.changes]
        counts = ", ".join(f"{n} {action.value}" for action, n in self.counts().items() if n)
        if self.dry_run:
            lines.append(f"dry run, nothing written: would be {counts or 'no change'}")
        else:
            applied = [c.scheduled_job_id for c in self.changes if c.action is not Action.DELETED]
            lines.append(f"applied {len(applied)} scheduled job(s): {', '.join(applied)}")
            lines.append(counts)
        return "\n".join(lines)


def _show(value: Any) -> str:
    return "(unset)" if value is None else json.dumps(value, sort_keys=True)


def diff(current: dict[str, Any] | None, spec: ScheduledJob) -> Change:
    wanted = spec.model_dump(mode="json")
    if current is None:
        return Change(spec.scheduled_job_id, Action.CREATED)
    changed = {
        name: (current.get(name), wanted.get(name))
        for name in sorted(set(current) | set(wanted))
        if current.get(name) != wanted.get(name)
    }
    action = Action.UPDATED if changed else Action.UNCHANGED
    return Change(spec.scheduled_job_id, action, changed)


def _stored(values: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """KV's specs as JSON documents, in the shape the file's would be written in."""
    stored: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        try:
            stored[key] = ScheduledJob.model_validate_json(value).model_dump(mode="json")
        except ValueError:
            stored[key] = {}
    return stored


def _chains(stored: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """What each stored spec runs after."""
    return {
        key: [link["scheduled_job_id"] for link in spec.get("after") or ()]
        for key, spec in stored.items()
    }


def _keeping_pool(spec: ScheduledJob, current: dict[str, Any] | None) -> ScheduledJob:
    """Unchecked, a spec that names no pool keeps the one it has in KV: nothing says which
    pool offers its scraper, and the default pool may not."""
    if spec.pool is not None or not current or current.get("pool") is None:
        return spec
    return spec.model_copy(update={"pool": current["pool"]})


async def apply_file(
    path: Path,
    settings: Settings,
    unchecked: bool = False,
    dry_run: bool = False,
    prune: bool = False,
    confirm: Callable[[list[str]], bool] | None = None,
) -> Plan:
    """Checked, each spec is written with the runner pool it runs in (`check_schedules`).
    `unchecked` skips the catalogue: for when no runner is up, or not yet one with the
    scrapers the file names. `confirm` is asked before `prune` deletes anything; without it
    pruning is refused."""
    specs = load_schedules(path)
    async with nats_client(resolve_nats_url(settings), settings) as client:
        js = client.jetstream()
        await require_provisioned(js, UNCHECKED_NEEDS if unchecked else NEEDS, "apply command")
        bucket = await js.key_value(names.KV_SCHEDULED_JOBS)
        stored = _stored(await current_values(bucket))
        if unchecked:
            specs = [_keeping_pool(spec, stored.get(spec.scheduled_job_id)) for spec in specs]
        else:
            specs = check_schedules(path, specs, await load_catalogue(js))
        changes = [diff(stored.get(spec.scheduled_job_id), spec) for spec in specs]
        named = {spec.scheduled_job_id for spec in specs}
        gone = sorted(set(stored) - named) if prune else []
        changes += [Change(scheduled_job_id, Action.DELETED) for scheduled_job_id in gone]
        try:
            check_chains(_chains(stored), specs, gone)
        except InvalidChainError as exc:
            raise InvalidChainError(f"{path}: {exc.detail}; nothing was written") from None
        plan = Plan(path, changes, dry_run)
        if dry_run:
            return plan
        if gone and (confirm is None or not confirm(gone)):
            raise BadRequestError(
                f"--prune would delete {len(gone)} scheduled job(s) not in {path}:"
                f" {', '.join(gone)}; nothing was written (confirm, or pass --yes)"
            )
        writes = (Action.CREATED, Action.UPDATED)
        written = {c.scheduled_job_id for c in changes if c.action in writes}
        await put_schedules(js, [spec for spec in specs if spec.scheduled_job_id in written])
        if gone:
            await schedule_bucket.delete(bucket, gone)
    return plan
