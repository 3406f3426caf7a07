"""The specs of KV `scheduled_jobs` as last seen, kept current by a watch.

Every ticker keeps one, leader or not, so a standby that takes over already knows
every schedule and any ticker can answer `jobs.trigger`.

A million schedules must fit in a few hundred MiB, so a spec is kept as the JSON of its
fields that differ from their defaults (about 120 bytes, against 2.2 KiB for the parsed
model), with the little the scheduler reads of every job at once (its priority, when KV
stored it). `get` parses a spec back; the most recently used ones stay parsed, so the
jobs that fire every second or minute are not parsed again each time. While it loads, a
leader takes the specs as they arrive, parsed (`collect_arrivals`), so that placing a
million new jobs parses none of them twice.

It also knows the chains: which schedules other schedules run after (`after`), kept as a
map from each parent to its children, so a run request learns whether its runner must
announce its end (`is_parent`) with one lookup, and a schedule without chains costs nothing
more.
"""

import asyncio
from collections import OrderedDict
from datetime import UTC, datetime

from natscron_shared.contract.enums import Priority
from natscron_shared.contract.models import ScheduledJob

PARSED_SPECS = 16_384
"""Specs kept parsed, the most recently used: a burst of this many jobs due at once is
prepared without parsing any."""


_Filed = tuple[bytes, str, float | None]
"""A spec as the book keeps it: the JSON of its fields that differ from their defaults,
its priority, when KV stored this version (a POSIX timestamp) if known. A plain tuple of
plain values, which the cyclic garbage collector stops walking after one look."""


class ScheduleBook:
    def __init__(self, parsed_specs: int = PARSED_SPECS) -> None:
        self._filed: dict[str, _Filed] = {}
        self._parsed: OrderedDict[str, ScheduledJob] = OrderedDict()
        self._parsed_limit = parsed_specs
        self._changed: set[str] = set()
        self._children: dict[str, set[str]] = {}
        """Parent id -> the ids of the schedules that run after it."""
        self._parents: dict[str, tuple[str, ...]] = {}
        """Child id -> the parents its spec names (only schedules with `after`)."""
        self._arrived: list[ScheduledJob] = []
        self._collecting = False
        self.changes = asyncio.Event()
        """Set when a spec was put or removed since the last `take_changes`, or arrived
        since the last `take_arrivals`."""
        self.loaded = asyncio.Event()
        """Set once the watch has delivered every spec that existed when it started."""
        self.revision = 0
        """The newest KV revision the watch delivered, valid or not (see `watchdog`)."""

    def __len__(self) -> int:
        return len(self._filed)

    def put(self, spec: ScheduledJob, put_at: float | None = None) -> None:
        """`put_at`: when KV stored this version of the spec (POSIX seconds), if known. A
        spec put before
        the book is `loaded` arrives (`take_arrivals`); one put after it is a change."""
        scheduled_job_id = spec.scheduled_job_id
        self._filed[scheduled_job_id] = (
            spec.model_dump_json(exclude_defaults=True).encode(),
            spec.priority.value,
            put_at,
        )
        if scheduled_job_id in self._parsed:
            self._parsed[scheduled_job_id] = spec
        if spec.after or scheduled_job_id in self._parents:
            self._link(scheduled_job_id, tuple(spec.parents))
        if self.loaded.is_set():
            self._changed.add(scheduled_job_id)
            self.changes.set()
        elif self._collecting:
            self._arrived.append(spec)
            self.changes.set()

    def remove(self, scheduled_job_id: str) -> None:
        self._parsed.pop(scheduled_job_id, None)
        if scheduled_job_id in self._parents:
            self._link(scheduled_job_id, ())
        if self._filed.pop(scheduled_job_id, None) is not None:
            self._changed.add(scheduled_job_id)
            self.changes.set()

    def touch(self, scheduled_job_id: str) -> None:
        """Something the job's slots depend on besides its spec changed (the end of its
        last run): a change, as if the spec had been put again, loaded or not. A job the
        book does not hold yet is left alone: it is placed when its spec arrives."""
        if scheduled_job_id in self._filed:
            self._changed.add(scheduled_job_id)
            self.changes.set()

    def get(self, scheduled_job_id: str) -> ScheduledJob | None:
        spec = self._parsed.get(scheduled_job_id)
        if spec is not None:
            self._parsed.move_to_end(scheduled_job_id)
            return spec
        filed = self._filed.get(scheduled_job_id)
        if filed is None:
            return None
        spec = ScheduledJob.model_validate_json(filed[0])
        self._keep_parsed(scheduled_job_id, spec)
        return spec

    def priority(self, scheduled_job_id: str) -> Priority | None:
        filed = self._filed.get(scheduled_job_id)
        return None if filed is None else Priority(filed[1])

    def put_at(self, scheduled_job_id: str) -> datetime | None:
        filed = self._filed.get(scheduled_job_id)
        if filed is None or filed[2] is None:
            return None
        return datetime.fromtimestamp(filed[2], UTC)

    def is_parent(self, scheduled_job_id: str) -> bool:
        """Whether another schedule runs after this one."""
        return scheduled_job_id in self._children

    def children(self, parent_id: str) -> list[str]:
        """The ids of the schedules that run after `parent_id`, sorted."""
        return sorted(self._children.get(parent_id, ()))

    def _link(self, child_id: str, parents: tuple[str, ...]) -> None:
        for parent in self._parents.pop(child_id, ()):
            children = self._children[parent]
            children.discard(child_id)
            if not children:
                del self._children[parent]
        if parents:
            self._parents[child_id] = parents
            for parent in parents:
                self._children.setdefault(parent, set()).add(child_id)

    def __contains__(self, scheduled_job_id: str) -> bool:
        return scheduled_job_id in self._filed

    def ids(self) -> list[str]:
        return list(self._filed)

    def take_changes(self) -> set[str]:
        """The ids put or removed since the last call, once `loaded`, and those touched."""
        changed, self._changed = self._changed, set()
        if not self._arrived:
            self.changes.clear()
        return changed

    def collect_arrivals(self, collecting: bool) -> None:
        """Whether to keep the specs put while loading for `take_arrivals`; dropping
        any kept."""
        self._collecting = collecting
        self._arrived = []

    def take_arrivals(self) -> list[ScheduledJob]:
        """The specs put while loading and collecting, in the order they came, since the
        last call."""
        arrived, self._arrived = self._arrived, []
        if not self._changed:
            self.changes.clear()
        return arrived

    def _keep_parsed(self, scheduled_job_id: str, spec: ScheduledJob) -> None:
        self._parsed[scheduled_job_id] = spec
        self._parsed.move_to_end(scheduled_job_id)
        if len(self._parsed) > self._parsed_limit:
            self._parsed.popitem(last=False)
