"""Ticker status: every ticker answers `natscron.ticker.status` (no queue group), so one
request gathers them all (`natscron_shared.nats.ticker_statuses`): which leads and since
when, without reading the lease (the API may not: `nats_permissions`)."""

from datetime import datetime

from pydantic import BaseModel, Field


class TickerStatusProbe(BaseModel):
    """Empty: the question is the subject."""


class TickerStatus(BaseModel):
    ticker_id: str
    leading: bool = Field(description="holds the lease now, and trusts it")
    leading_since: datetime | None = Field(
        description="when it took the lease (its clock); null while it stands by"
    )
    schedules_loaded: int = Field(description="specs it follows (KV scheduled_jobs)")
    presence_subject: str = Field(
        description="where standbys probe it while it holds the lease (natscron.ticker.presence)"
    )
    at: datetime = Field(description="when it answered (its clock)")
