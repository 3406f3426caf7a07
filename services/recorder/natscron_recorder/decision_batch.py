"""Recording DECISIONS messages: one `decisions` document per decision key, every record of
it merged in (`natscron_shared.contract.decisions`).

A record sets the fields it has and leaves those it lacks, so the records of one decision
merge alike in any order, and a redelivered one changes nothing: a pause published open and
then closed ends closed, whichever came first. One unordered bulk upsert per batch, no
transaction: each write stands alone.
"""

from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from natscron_recorder.guarded import guarded_bulk_upsert
from natscron_shared.contract.decisions import Decision
from natscron_shared.contract.storage import DECISIONS, Document

MERGED_FIELDS = ("until", "slots", "note")
"""What a later record of the same decision may add (the others make its key)."""


def decision_write(decision: Decision) -> tuple[Document, Document]:
    """The upsert of one record: by key, setting what it says and only that."""
    fields = decision.model_dump()
    fields["kind"] = decision.kind.value
    merged = {name: fields.pop(name) for name in MERGED_FIELDS}
    at: datetime = fields.pop("at")
    update: Document = {
        "$setOnInsert": {
            **fields,
            **{name: None for name, value in merged.items() if value is None},
            "starts_at": decision.after or decision.slot or at,
        },
        "$set": {name: value for name, value in merged.items() if value is not None},
        "$min": {"at": at},
    }
    ends_at = decision.until or decision.slot or (None if decision.after else at)
    if ends_at is not None:
        update["$max"] = {"ends_at": ends_at}
    if not update["$set"]:
        del update["$set"]
    return {"_id": decision.key}, update


class DecisionWriter:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def record(self, decisions: list[Decision]) -> int:
        """Upsert every record; how many there were."""
        await guarded_bulk_upsert(self._db[DECISIONS], [decision_write(d) for d in decisions])
        return len(decisions)
