"""Job ids (seed 001's naming). Scheduled ids are deterministic per (job, slot):
the id is the JetStream `Nats-Msg-Id`, so a slot published twice is stored once."""

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def scheduled_job_run_id(scheduled_job_id: str, slot: datetime) -> str:
    digest = hashlib.sha256(f"{scheduled_job_id}|{slot.timestamp():.6f}".encode()).hexdigest()
    return f"scheduled_{scheduled_job_id}_{_epoch(slot)}_{digest[:6]}"


def triggered_job_id(scheduled_job_id: str, now: datetime) -> str:
    return f"triggered_{scheduled_job_id}_{_epoch(now)}_{secrets.token_hex(3)}"


def adhoc_job_id(now: datetime) -> str:
    return f"adhoc_{_epoch(now)}_{secrets.token_hex(3)}"


def retry_job_id(now: datetime) -> str:
    return f"retry_{_epoch(now)}_{secrets.token_hex(3)}"


def chained_job_id(scheduled_job_id: str, parent_job_ids: Iterable[str], finished: datetime) -> str:
    """A chained run: one id per set of parent runs (order does not matter), so a replayed
    or duplicated end of a parent's run starts the child once. `finished`, when the newest
    of them ended, only makes the id sort in time."""
    runs = "|".join(sorted(parent_job_ids))
    digest = hashlib.sha256(f"{scheduled_job_id}|{runs}".encode()).hexdigest()
    return f"chained_{scheduled_job_id}_{_epoch(finished)}_{digest[:12]}"
