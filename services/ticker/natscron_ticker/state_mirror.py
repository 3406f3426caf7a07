"""Every ticker, leader or not, follows KV `ticker_state` with a watch.

So a standby that takes the lease already knows how far each scheduled job was handled,
and starts firing without reading the bucket. A state a few milliseconds behind the last
leader's writes only makes the new leader publish a slot again, which the deterministic
job id makes a no-op in JetStream.

The leader is the only writer of the bucket, so while it leads it owns the mirror's
values (`take`): it reads and sets them itself, and the watch, which would only bring
back its own writes, some of them older than what it has set since, leaves them alone
until the term ends (`give_back`). One copy of a million states, not two.
"""

import logging

from pydantic import ValidationError

from natscron_shared.contract.ticker_state import SlotState
from natscron_shared.nats.kv_watch import KvMirror
from natscron_ticker.state import StateTable

log = logging.getLogger(__name__)


class StateMirror(KvMirror[SlotState]):
    def __init__(self) -> None:
        super().__init__(_parse)
        self._states = StateTable()
        self._owned = False

    def __len__(self) -> int:
        return len(self._states)

    def get(self, key: str) -> SlotState | None:
        return self._states.get(key)

    def take(self) -> StateTable:
        """The states, for the leader to read and set until `give_back`."""
        self._owned = True
        return self._states

    def give_back(self) -> None:
        """The watch updates the states again: the writes of the term that ended reach it
        in the order they were made, so the last one of each job is what it keeps."""
        self._owned = False

    def put(self, key: str, value: SlotState) -> None:
        if not self._owned:
            self._states[key] = value

    def drop(self, key: str) -> None:
        if not self._owned:
            self._states.pop(key)


def _parse(key: str, value: bytes) -> SlotState | None:
    try:
        return SlotState.from_json(value)
    except ValidationError:
        log.warning("ignoring an unreadable ticker_state entry %r", key)
        return None
