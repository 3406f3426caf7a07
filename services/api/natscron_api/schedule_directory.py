"""Every scheduled job's id and name, kept in memory from KV `scheduled_jobs` by a watch:
what lets a listing of 100,000 scheduled jobs read MongoDB one page at a time, and a search
by id or name answer at once.

A MongoDB-protocol server may read every document a filter's index range holds before it
sorts and limits (SecantusDB does: `find().sort(id).limit(51)` over 100,000 documents took
seconds). So a listing never asks for "everything after the cursor": it asks for windows
of ids bounded by this directory (`windows`), each holding about a page. The directory only
bounds the windows: the last one is open-ended, so a document it does not know (written
after a window was chosen, or deleted from KV before the API started) is still listed;
being current only makes the windows narrow.

A key deleted from KV stays here: the recorder keeps its document, `inactive`, and the
listing and search still show it. Those deleted before the API started are read once from
MongoDB (`add_inactive`), by the `(status, scheduled_job_id)` index.
"""

import bisect
import json
import logging
from collections.abc import Iterator

from pymongo.asynchronous.database import AsyncDatabase

from natscron_shared.contract.enums import ScheduledJobStatus
from natscron_shared.contract.storage import Document
from natscron_shared.nats.kv_watch import KvMirror
from natscron_shared.runtime.mongo import scheduled_jobs

log = logging.getLogger(__name__)


def searched_text(scheduled_job_id: str, name: object) -> str:
    """What a search looks in: the id and the name, case-folded."""
    return f"{scheduled_job_id}\n{name if isinstance(name, str) else ''}".casefold()


class ScheduleDirectory(KvMirror[str]):
    """Ids in order, each with its searched text."""

    def __init__(self) -> None:
        super().__init__(self._parse)
        self._ordered: list[str] = []
        self._in_order = True

    @staticmethod
    def _parse(key: str, value: bytes) -> str | None:
        """Only the name is read: json, not the `ScheduledJob` model, so 100,000 specs load
        in a second. A value that is no JSON object still lists its id."""
        try:
            spec = json.loads(value)
        except ValueError:
            spec = None
        return searched_text(key, spec.get("name") if isinstance(spec, dict) else None)

    def put(self, key: str, value: str) -> None:
        if self.get(key) is None:
            if self._in_order and self.loaded.is_set():
                bisect.insort(self._ordered, key)
            else:
                self._in_order = False
        super().put(key, value)

    def drop(self, key: str) -> None:
        """Kept: the recorder keeps the document of a deleted key, inactive."""

    async def add_inactive(self, db: AsyncDatabase[Document]) -> None:
        """The scheduled jobs deleted from KV before the watch began, from MongoDB."""
        found = scheduled_jobs(db).find(
            {"status": ScheduledJobStatus.INACTIVE.value},
            {"_id": 0, "scheduled_job_id": 1, "name": 1},
        )
        added = 0
        async for doc in found:
            scheduled_job_id = doc["scheduled_job_id"]
            if self.get(scheduled_job_id) is None:
                self.put(scheduled_job_id, searched_text(scheduled_job_id, doc.get("name")))
                added += 1
        log.info("schedule directory: %d scheduled jobs, %d of them deleted", len(self), added)

    def ids_after(self, after: str | None) -> list[str]:
        """The ids known, in order, after `after` (all of them for None)."""
        ordered = self._order()
        start = 0 if after is None else bisect.bisect_right(ordered, after)
        return ordered[start:]

    def matching(self, search: str, after: str | None) -> Iterator[str]:
        """The ids after `after`, in order, whose id or name holds `search` (any case)."""
        wanted = search.casefold()
        for scheduled_job_id in self.ids_after(after):
            text = self.get(scheduled_job_id)
            if text is not None and wanted in text:
                yield scheduled_job_id

    def _order(self) -> list[str]:
        if not self._in_order:
            self._ordered = sorted(self.keys())
            self._in_order = True
        return self._ordered
