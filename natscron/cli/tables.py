"""Tables for people (`-o table`, the default), one per kind of API reply. They take the
reply's JSON, so what they show is what `-o json` prints, and read it as the reply's model
(`natscron_api.views`, the contract's replies), so a renamed field is a type error here.

Times are shown as `moments.moment` writes them: a schedule's in its time zone, the others
in UTC, always with the zone's name. Each listing says which columns it gives up first on a
narrow terminal (`columns.py`)."""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from natscron.cli.api_client import reply_as
from natscron.cli.columns import Abbreviate, Cell, Column, Columns, Drop, Shorten
from natscron.cli.moments import NONE, age, moment, relative
from natscron.cli.output import next_page
from natscron_api.timeline import Explanation
from natscron_api.views import (
    BulkCancelResult,
    BulkControlResult,
    ConsumerLag,
    ControlResult,
    ExecutionList,
    ExecutionView,
    JobStats,
    Preview,
    ScheduledJobDetail,
    ScheduledJobList,
    ScheduledJobView,
    SchedulerMetrics,
    SchedulerStatus,
    StatsSummary,
    WindowedStats,
)
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.cancel import CancelReply
from natscron_shared.contract.enums import IntervalAnchor, JobStatus
from natscron_shared.contract.messages import TriggerReply
from natscron_shared.contract.ticker_status import TickerStatus
from natscron_shared.runtime.clock import Clock, SystemClock

CLOCK: Clock = SystemClock()
"""Ages (`5m`) are counted from its now."""
HIDDEN_IN_DETAIL = frozenset({"params", "labels", "webhooks"})
ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
"""A time as JSON carries it; shown as every other time is."""
RETRYING = "retrying"
ID_WIDTH, NARROW_ID_WIDTH = 32, 24
"""What an id is shortened to (in the middle) when a terminal is too narrow for it whole."""


def cell(value: Any) -> str:
    if value is None or value == "":
        return NONE
    return str(value)


def _ms(value: int | None) -> str:
    return NONE if value is None else f"{value} ms"


def _moment_cell(value: datetime | None, zone: str | None, now: datetime) -> Cell:
    """The time, or its age once its column is abbreviated (an AGE column)."""
    return Cell(moment(value, zone), age(value, now))


def _relative_cell(value: datetime | None, zone: str | None, now: datetime) -> Cell:
    """The time, or once abbreviated how far off it is: `2m ago`, `in 8s`."""
    return Cell(moment(value, zone), relative(value, now))


def _page(shown: int, total: int | None, cursor: str | None) -> list[Text]:
    """The next page's command on one line, never wrapped, so it can be copied whole."""
    if cursor is None:
        return []
    counted = "more" if total is None else total
    return [Text(f"{shown} of {counted}; next page: {next_page(cursor)}")]


def fields(document: Mapping[str, Any], zone: str | None = None) -> Group:
    """One record, as its JSON, in `FIELD  VALUE` lines, leaving out empty fields; times in
    `zone` (UTC when None)."""
    shown = {name: value for name, value in document.items() if value not in (None, "", [], {})}
    width = max((len(name) for name in shown), default=0)
    lines = []
    for name, value in shown.items():
        is_moment = isinstance(value, str) and ISO_MOMENT.match(value)
        text = moment(datetime.fromisoformat(value), zone) if is_moment else cell(value)
        lines.append(Text(f"{name.ljust(width)}  {text}"))
    return Group(*lines)


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _schedule_of(job: ScheduledJobView) -> Cell:
    """In words, and once abbreviated only the expression (`*/10 * * * * *`)."""
    if job.cron_expression:
        return Cell(f"cron {job.cron_expression}", job.cron_expression)
    if job.interval:
        period = " ".join(
            f"{v:g}{k[0]}" for k, v in job.interval.items() if isinstance(v, float) and v
        )
        if job.interval.get("from") == IntervalAnchor.LAST_RUN:
            return Cell(f"{period} after the last run", f"{period} after last")
        return Cell(f"every {period}")
    if job.interval_minutes:
        return Cell(f"every {job.interval_minutes:g}m")
    if job.run_at:
        return Cell(f"once at {moment(job.run_at, job.timezone)}")
    return Cell(NONE)


SCHEDULE_COLUMNS = (
    Column("ID"),
    Column("STATUS"),
    Column("SCHEDULE"),
    Column("TIMEZONE"),
    Column("SCRAPER"),
    Column("NEXT RUN"),
    Column("LAST RUN"),
    Column("LAST STATUS"),
    Column("RUNS"),
)
SCHEDULE_REDUCTIONS = (
    Drop("SCRAPER"),
    Drop("TIMEZONE"),
    Abbreviate("SCHEDULE"),
    Drop("RUNS"),
    Abbreviate("LAST RUN"),
    Abbreviate("NEXT RUN"),
    Shorten("ID", ID_WIDTH),
    Drop("LAST RUN"),
    Shorten("ID", NARROW_ID_WIDTH),
)
"""Times carry their zone, so TIMEZONE goes early; then times become ages."""


def schedules(reply: Any) -> Group:
    page = reply_as(ScheduledJobList, reply)
    now = CLOCK.now()
    rows: list[list[Cell | str]] = [
        [
            job.scheduled_job_id,
            cell(job.status),
            _schedule_of(job),
            job.timezone,
            cell(job.scraper),
            _relative_cell(job.next_run_at, job.timezone, now),
            _relative_cell(job.last_run_at, job.timezone, now),
            cell(job.last_run_status),
            str(job.run_count),
        ]
        for job in page.scheduled_jobs
    ]
    table = Columns(SCHEDULE_COLUMNS, rows, SCHEDULE_REDUCTIONS)
    return Group(table, *_page(len(page.scheduled_jobs), page.total, page.next_cursor))


def _schedule_fields(job: ScheduledJobView) -> Group:
    shown = job.model_dump(mode="json", exclude=set(HIDDEN_IN_DETAIL))
    if job.labels:
        shown["labels"] = _pairs(job.labels)
    if job.params:
        shown["params"] = _pairs(job.params)
    return fields(shown, job.timezone)


def schedule(reply: Any) -> Group:
    return _schedule_fields(reply_as(ScheduledJobView, reply))


def schedule_detail(reply: Any) -> RenderableType:
    detail = reply_as(ScheduledJobDetail, reply)
    runs = detail.job_runs
    zone = detail.scheduled_job.timezone
    heading = Text(f"\nruns: {len(runs)} newest of {detail.total_runs}", style="bold")
    return Group(_schedule_fields(detail.scheduled_job), heading, _runs(runs, zone))


def preview(reply: Any) -> RenderableType:
    """The fire times in the schedule's zone: a DST change shows as the zone's name
    changing (EDT, then EST)."""
    shown = reply_as(Preview, reply)
    lines = [
        Text(f"{shown.scheduled_job_id}: {shown.schedule or 'no description'}"),
        Text(f"status {shown.status}, time zone {shown.timezone}"),
    ]
    if not shown.fires:
        lines.append(Text("it does not fire while not active: the times are hypothetical"))
    if shown.remaining_runs is not None:
        lines.append(Text(f"remaining runs: {shown.remaining_runs}"))
    lines.extend(Text(moment(at, shown.timezone)) for at in shown.next_fire_times)
    if not shown.next_fire_times:
        lines.append(Text("no further fire times"))
    return Group(*lines)


EXPLAIN_COLUMNS = (
    Column("NOMINAL"),
    Column("OUTCOME"),
    Column("DUE"),
    Column("JOB ID"),
    Column("WHY", elastic=16),
)
EXPLAIN_REDUCTIONS = (Drop("DUE"), Shorten("JOB ID", ID_WIDTH), Shorten("JOB ID", NARROW_ID_WIDTH))


def explanation(reply: Any) -> RenderableType:
    """The timeline: one row per nominal slot (its wall time in the schedule's zone), then the
    runs and decisions that belong to no slot."""
    shown = reply_as(Explanation, reply)
    zone = shown.timezone
    counts = ", ".join(f"{count} {outcome.value}" for outcome, count in shown.counts.items())
    lines: list[RenderableType] = [
        Text(f"{shown.scheduled_job_id}: {shown.schedule or 'no slots of its own'}"),
        Text(
            f"slots from {moment(shown.start, zone)} to {moment(shown.end, zone)}, wall times"
            f" in {zone}: {counts or 'none'}"
        ),
        *(Text(f"note: {note}") for note in shown.notes),
    ]
    slots: list[list[Cell | str]] = [
        [
            entry.nominal.replace("T", " ") + (" (2nd)" if entry.second_pass else ""),
            entry.outcome.value,
            moment(entry.slot_at, zone),
            cell(None if entry.run is None else entry.run.job_id),
            entry.why,
        ]
        for entry in shown.slots
    ]
    lines.append(Columns(EXPLAIN_COLUMNS, slots, EXPLAIN_REDUCTIONS))
    if shown.other_runs:
        lines.append(Text("\nother runs", style="bold"))
        runs: list[list[Cell | str]] = [
            [
                run.job_id,
                cell(run.trigger),
                cell(run.status),
                moment(run.fired_at, zone),
                cell(run.why),
            ]
            for run in shown.other_runs
        ]
        columns = (Column("JOB ID"), Column("TRIGGER"), Column("STATUS"), Column("FIRED"))
        lines.append(Columns((*columns, Column("WHY", elastic=16)), runs))
    if shown.other_decisions:
        lines.append(Text("\nother decisions", style="bold"))
        decisions: list[list[Cell | str]] = [
            [
                cell(decision.kind),
                moment(decision.at, zone),
                cell(decision.job_id),
                cell(decision.cause_job_id),
                cell(decision.why or decision.note),
            ]
            for decision in shown.other_decisions
        ]
        columns = (Column("KIND"), Column("AT"), Column("JOB ID"), Column("CAUSE"))
        lines.append(Columns((*columns, Column("WHY", elastic=16)), decisions))
    return Group(*lines)


def control(reply: Any) -> Text:
    result = reply_as(ControlResult, reply)
    return Text(f"{result.scheduled_job_id}: {result.message}")


def bulk(reply: Any) -> Text:
    results = reply_as(BulkControlResult, reply).results
    if not results:
        return Text("no scheduled job matched")
    return Text("\n".join(f"{r.scheduled_job_id}: {r.message}" for r in results))


def jobs(reply: Any) -> RenderableType:
    page = reply_as(ExecutionList, reply)
    if not page.executions:
        return Text("no runs match")
    pages = _page(len(page.executions), page.total, page.next_cursor)
    return Group(_runs(page.executions, None), *pages)


def _error(error_type: str | None, message: str | None) -> str:
    if error_type and message:
        return f"{error_type}: {message}"
    return error_type or message or ""


def is_retrying(run: ExecutionView) -> bool:
    """Pending again after a failed attempt: waiting for its retry's backoff, or queued."""
    return run.status == JobStatus.PENDING and run.attempt > 1


def _status(run: ExecutionView) -> str:
    return RETRYING if is_retrying(run) else run.status


def retry_note(run: ExecutionView, now: datetime, exact: bool = False) -> str:
    """Which attempt comes and when (`in 20s`, or the time too when `exact`), then why the
    one before failed."""
    due = run.not_before
    if due is None or due <= now:
        when = "queued"
    else:
        when = f"at {moment(due)} ({relative(due, now)})" if exact else relative(due, now)
    failed = _error(run.error_type, run.error_message)
    before = f"; attempt {run.attempt - 1}: {failed}" if failed else ""
    return f"attempt {run.attempt} {when}{before}"


def _note(run: ExecutionView, now: datetime) -> str:
    if is_retrying(run):
        return retry_note(run, now)
    return _error(run.error_type, run.error_message)


RUN_COLUMNS = (
    Column("CREATED", short_header="AGE"),
    Column("STATUS"),
    Column("JOB ID"),
    Column("TRIGGER"),
    Column("SCRAPED"),
    Column("SAVED"),
    Column("DURATION"),
    Column("ERROR", elastic=16),
)
RUN_REDUCTIONS = (
    Drop("TRIGGER"),
    Drop("SAVED"),
    Drop("SCRAPED"),
    Abbreviate("CREATED"),
    Drop("ERROR"),
    Shorten("JOB ID", ID_WIDTH),
    Drop("DURATION"),
    Shorten("JOB ID", NARROW_ID_WIDTH),
)
"""The status, when, and the whole id (to copy) stay longest; the ERROR column takes the
room that is left."""


def _runs(runs: list[ExecutionView], zone: str | None) -> Columns:
    now = CLOCK.now()
    rows: list[list[Cell | str]] = [
        [
            _moment_cell(run.created_at, zone, now),
            _status(run),
            run.job_id,
            cell(run.trigger),
            cell(run.properties_scraped),
            cell(run.properties_saved),
            _ms(run.duration_ms),
            cell(_note(run, now)),
        ]
        for run in runs
    ]
    return Columns(RUN_COLUMNS, rows, RUN_REDUCTIONS)


def job(reply: Any) -> RenderableType:
    """The run's fields, then its ended attempts and the newest traceback."""
    run = reply_as(ExecutionView, reply)
    shown = run.model_dump(mode="json", exclude={"params", "metadata", "attempts"})
    if is_retrying(run):
        shown["status"] = f"{RETRYING}: {retry_note(run, CLOCK.now(), exact=True)}"
    if run.params:
        shown["params"] = _pairs(run.params)
    if run.metadata:
        shown["metadata"] = _pairs(run.metadata)
    parts: list[RenderableType] = [fields(shown)]
    if run.attempts:
        parts += [Text("\nattempts:", style="bold"), _attempts(run.attempts)]
        traced = [attempt for attempt in run.attempts if attempt.traceback]
        if traced:
            last = traced[-1]
            heading = Text(f"\ntraceback of attempt {last.attempt}:", style="bold")
            parts += [heading, Text(last.traceback or "")]
    return Group(*parts)


ATTEMPT_COLUMNS = (
    Column("ATTEMPT"),
    Column("STATUS"),
    Column("RUNNER"),
    Column("STARTED", short_header="AGE"),
    Column("ENDED"),
    Column("DURATION"),
    Column("ERROR", elastic=16),
)
ATTEMPT_REDUCTIONS = (Drop("ENDED"), Drop("RUNNER"), Abbreviate("STARTED"))


def _attempts(attempts: list[AttemptRecord]) -> Columns:
    now = CLOCK.now()
    rows: list[list[Cell | str]] = [
        [
            str(attempt.attempt),
            attempt.status,
            cell(attempt.runner_id),
            _moment_cell(attempt.started_at, None, now),
            moment(attempt.completed_at),
            _ms(attempt.duration_ms),
            cell(_error(attempt.error_type, attempt.error_message)),
        ]
        for attempt in attempts
    ]
    return Columns(ATTEMPT_COLUMNS, rows, ATTEMPT_REDUCTIONS)


def started(reply: Any) -> Text:
    """A trigger's or retry's reply: the new job id first, for scripts."""
    answer = reply_as(TriggerReply, reply)
    return Text(f"{answer.job_id} {answer.status}: {answer.message}")


def cancelled(reply: Any) -> Text:
    answer = reply_as(CancelReply, reply)
    return Text(f"{answer.job_id} {answer.found}: {answer.message}")


def bulk_cancelled(reply: Any) -> Text:
    results = reply_as(BulkCancelResult, reply).results
    if not results:
        return Text("no job matched")
    return Text("\n".join(f"{r.job_id} {r.outcome}: {r.message}" for r in results))


SUMMARY_COLUMNS = (
    Column(""),
    Column("RUNS"),
    Column("COMPLETED", short_header="OK"),
    Column("FAILED"),
    Column("CANCELLED"),
    Column("SKIPPED"),
    Column("SUCCESS_RATE", short_header="SUCCESS"),
    Column("DURATION_MS_MEAN", short_header="MEAN MS"),
    Column("DURATION_MS_P95", short_header="P95 MS"),
    Column("ITEMS_SCRAPED", short_header="SCRAPED"),
    Column("ITEMS_SAVED", short_header="SAVED"),
)
SUMMARY_REDUCTIONS = (
    Abbreviate("DURATION_MS_MEAN"),
    Abbreviate("DURATION_MS_P95"),
    Abbreviate("SUCCESS_RATE"),
    Abbreviate("ITEMS_SCRAPED"),
    Abbreviate("ITEMS_SAVED"),
    Abbreviate("COMPLETED"),
    Drop("SKIPPED"),
    Drop("CANCELLED"),
    Drop("ITEMS_SAVED"),
)


def percent(rate: float | None) -> str:
    """A success rate (0-1) as a percentage: `100%`, `87.5%`."""
    return NONE if rate is None else f"{rate * 100:.3g}%"


def _summary_row(label: str, summary: StatsSummary) -> list[str]:
    mean = summary.duration_ms_mean
    return [
        label,
        str(summary.runs),
        str(summary.completed),
        str(summary.failed),
        str(summary.cancelled),
        str(summary.skipped),
        percent(summary.success_rate),
        NONE if mean is None else f"{mean:.3g}",
        cell(summary.duration_ms_p95),
        str(summary.items_scraped),
        str(summary.items_saved),
    ]


def _summaries(rows: list[tuple[str, StatsSummary]]) -> Columns:
    table = [_summary_row(label, summary) for label, summary in rows]
    return Columns(SUMMARY_COLUMNS, table, SUMMARY_REDUCTIONS)


def _windows(stats: WindowedStats) -> list[tuple[str, StatsSummary]]:
    return [
        ("all time", stats.all_time),
        ("this hour", stats.last_1h),
        ("last 24 h", stats.last_24h),
        ("last 7 d", stats.last_7d),
        ("last 30 d", stats.last_30d),
    ]


def _hour(period: str) -> str:
    """A UTC hour of the statistics (`2026-11-25T17`) as every other time is shown."""
    return moment(datetime.strptime(period, "%Y-%m-%dT%H").replace(tzinfo=UTC))


def job_stats(reply: Any) -> RenderableType:
    stats = reply_as(JobStats, reply)
    rows = [*_windows(stats), (f"last {stats.hours} h", stats.recent)]
    rows += [(_hour(hour.period), hour) for hour in stats.hourly]
    last = stats.last_execution
    footer = f"last run: {last.job_id} {_status(last)}" if last else "no runs yet"
    return Group(Text(stats.scheduled_job_id, style="bold"), _summaries(rows), Text(footer))


def metrics(reply: Any) -> RenderableType:
    shown = reply_as(SchedulerMetrics, reply)
    counts = shown.scheduled_jobs
    return Group(
        Text(
            f"scheduled jobs: {counts.total} ({counts.active} active, {counts.paused}"
            f" paused, {counts.inactive} inactive)"
        ),
        Text(f"jobs now: {shown.jobs.queued} queued, {shown.jobs.running} running"),
        _summaries([*_windows(shown), ("ad hoc, all time", shown.adhoc_all_time)]),
    )


def _leader(status: SchedulerStatus) -> Text:
    if not status.leader:
        return Text("leader: none (no ticker holds the lease)")
    since = status.leader_since
    return Text(f"leader: {status.leader}" + (f" since {moment(since)}" if since else ""))


TICKER_COLUMNS = (
    Column("TICKER"),
    Column("LEADING"),
    Column("SINCE", short_header="FOR"),
    Column("SPECS FOLLOWED", short_header="SPECS"),
    Column("ANSWERED"),
)
TICKER_REDUCTIONS = (
    Drop("ANSWERED"),
    Abbreviate("SPECS FOLLOWED"),
    Abbreviate("SINCE"),
    Shorten("TICKER", ID_WIDTH),
)


def _tickers(tickers: list[TickerStatus]) -> RenderableType:
    if not tickers:
        return Text("tickers: none answered")
    now = CLOCK.now()
    rows: list[list[Cell | str]] = [
        [
            ticker.ticker_id,
            "yes" if ticker.leading else "no",
            _moment_cell(ticker.leading_since, None, now),
            str(ticker.schedules_loaded),
            moment(ticker.at),
        ]
        for ticker in tickers
    ]
    return Columns(TICKER_COLUMNS, rows, TICKER_REDUCTIONS)


LAG_COLUMNS = (
    Column("CONSUMER"),
    Column("STREAM"),
    Column("PENDING"),
    Column("ACK PENDING"),
    Column("REDELIVERED"),
    Column("WAITING PULLS"),
)
LAG_REDUCTIONS = (Drop("WAITING PULLS"), Drop("STREAM"), Shorten("CONSUMER", ID_WIDTH))


def _lag(consumers: list[ConsumerLag]) -> Columns:
    rows = [
        [
            consumer.consumer,
            consumer.stream,
            str(consumer.pending),
            str(consumer.ack_pending),
            str(consumer.redelivered),
            str(consumer.waiting_pulls),
        ]
        for consumer in consumers
    ]
    return Columns(LAG_COLUMNS, rows, LAG_REDUCTIONS)


def _pools(pools: dict[str, list[str]]) -> str:
    offers = [f"{pool} ({', '.join(scrapers)})" for pool, scrapers in sorted(pools.items())]
    return "; ".join(offers) or "none"


def status(reply: Any) -> RenderableType:
    shown = reply_as(SchedulerStatus, reply)
    return Group(
        _leader(shown),
        _tickers(shown.tickers),
        Text(f"schedules loaded: {shown.schedules_loaded}"),
        Text(f"runners: {', '.join(shown.runners) or 'none'}"),
        Text(f"scrapers: {', '.join(shown.scrapers) or 'none'}"),
        Text(f"runner pools: {_pools(shown.pools)}"),
        _lag([*shown.lanes, *shown.recorder]),
    )
