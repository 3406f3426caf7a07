"""Every ticker, leader or not, follows KV `ticker_state` with a watch.

So a standby that takes the lease already knows how far each scheduled job was handled,
and starts firing without reading the bucket. A state a few milliseconds behind the last
leader's writes only makes the new leader publish a slot again, which the deterministic
job id makes a no-op in JetStream.
"""

import logging

from pydantic import ValidationError

from natscron_shared.kv_watch import KvMirror
from natscron_ticker.state import SlotState

log = logging.getLogger(__name__)


class StateMirror(KvMirror[SlotState]):
    def __init__(self) -> None:
        super().__init__(_parse)


def _parse(key: str, value: bytes) -> SlotState | None:
    try:
        return SlotState.model_validate_json(value)
    except ValidationError:
        log.warning("ignoring an unreadable ticker_state entry %r", key)
        return None
