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
    last_check: datetime | None = Field(
        default=None,
        description="when its loop last looked for due slots while leading (its clock): at"
        " each due slot and each schedule change; null before it led",
    )
    slots_fired: int | None = Field(
        default=None,
        description="slots it published since it started (natscron_ticker_slots_fired_total);"
        " null from a ticker too old to say",
    )
    presence_subject: str = Field(
        description="where standbys probe it while it holds the lease (natscron.ticker.presence)"
    )
    at: datetime = Field(description="when it answered (its clock)")
