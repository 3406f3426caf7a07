"""Tables for people (`-o table`, the default), one per kind of API reply. They take the
reply's JSON, so what they show is what `-o json` prints, and read it as the reply's model
(`natscron_api.views`, the contract's replies), so a renamed field is a type error here."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from natscron.cli.api_client import reply_as
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
from natscron_shared.contract.enums import IntervalAnchor
from natscron_shared.contract.messages import TriggerReply
from natscron_shared.contract.ticker_status import TickerStatus

HIDDEN_IN_DETAIL = frozenset({"params", "labels", "webhooks"})
SUMMARY_COLUMNS = (
    "RUNS",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "SKIPPED",
    "SUCCESS_RATE",
    "DURATION_MS_MEAN",
    "DURATION_MS_P95",
    "ITEMS_SCRAPED",
    "ITEMS_SAVED",
)


def cell(value: Any) -> Text:
    if value is None or value == "":
        return Text("-")
    return Text(str(value))


def when(moment: datetime | None) -> Text:
    """A time from the API as `2026-11-25 10:00:10` (UTC)."""
    if moment is None:
        return Text("-")
    return Text(moment.strftime("%Y-%m-%d %H:%M:%S"))


def _table(*columns: str, caption: str | None = None) -> Table:
    table = Table(box=None, pad_edge=False, caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=column in ("ID", "JOB ID", "SCHEDULE ID"))
    return table


def _page(shown: int, total: int | None, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return f"{shown} of {'more' if total is None else total}; next page: --cursor {cursor}"


def fields(document: Mapping[str, Any], title: str | None = None) -> Table:
    """One record, as its JSON, in `FIELD  VALUE` rows, leaving out empty fields."""
    table = Table(box=None, pad_edge=False, show_header=False, title=title, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for name, value in document.items():
        if value in (None, "", [], {}):
            continue
        is_moment = name.endswith("_at") and isinstance(value, str)
        table.add_row(name, when(datetime.fromisoformat(value)) if is_moment else cell(value))
    return table


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def _schedule_of(job: ScheduledJobView) -> str:
    if job.cron_expression:
        return f"cron {job.cron_expression}"
    if job.interval:
        period = " ".join(
            f"{v:g}{k[0]}" for k, v in job.interval.items() if isinstance(v, float) and v
        )
        if job.interval.get("from") == IntervalAnchor.LAST_RUN:
            return f"{period} after the last run"
        return f"every {period}"
    if job.interval_minutes:
        return f"every {job.interval_minutes:g}m"
    if job.run_at:
        return f"once at {when(job.run_at)}"
    return "-"


def schedules(reply: Any) -> Table:
    page = reply_as(ScheduledJobList, reply)
    table = _table(
        "ID",
        "STATUS",
        "SCHEDULE",
        "TIMEZONE",
        "SCRAPER",
        "NEXT RUN",
        "LAST RUN",
        "LAST STATUS",
        "RUNS",
        caption=_page(len(page.scheduled_jobs), page.total, page.next_cursor),
    )
    for job in page.scheduled_jobs:
        table.add_row(
            cell(job.scheduled_job_id),
            cell(job.status),
            cell(_schedule_of(job)),
            cell(job.timezone),
            cell(job.scraper),
            when(job.next_run_at),
            when(job.last_run_at),
            cell(job.last_run_status),
            cell(job.run_count),
        )
    return table


def _schedule_fields(job: ScheduledJobView) -> Table:
    shown = job.model_dump(mode="json", exclude=set(HIDDEN_IN_DETAIL))
    if job.labels:
        shown["labels"] = _pairs(job.labels)
    if job.params:
        shown["params"] = _pairs(job.params)
    return fields(shown)


def schedule(reply: Any) -> Table:
    return _schedule_fields(reply_as(ScheduledJobView, reply))


def schedule_detail(reply: Any) -> RenderableType:
    detail = reply_as(ScheduledJobDetail, reply)
    runs = detail.job_runs
    listed = _runs(runs, detail.total_runs, None)
    heading = Text(f"\nruns: {len(runs)} newest of {detail.total_runs}", style="bold")
    return Group(_schedule_fields(detail.scheduled_job), heading, listed)


def preview(reply: Any) -> RenderableType:
    shown = reply_as(Preview, reply)
    lines = [
        Text(f"{shown.scheduled_job_id}: {shown.schedule or 'no description'}"),
        Text(f"status {shown.status}, time zone {shown.timezone}"),
    ]
    if not shown.fires:
        lines.append(Text("it does not fire while not active: the times are hypothetical"))
    if shown.remaining_runs is not None:
        lines.append(Text(f"remaining runs: {shown.remaining_runs}"))
    lines.extend(when(moment) for moment in shown.next_fire_times)
    if not shown.next_fire_times:
        lines.append(Text("no further fire times"))
    return Group(*lines)


def control(reply: Any) -> Text:
    result = reply_as(ControlResult, reply)
    return Text(f"{result.scheduled_job_id}: {result.message}")


def bulk(reply: Any) -> Text:
    results = reply_as(BulkControlResult, reply).results
    if not results:
        return Text("no scheduled job matched")
    return Text("\n".join(f"{r.scheduled_job_id}: {r.message}" for r in results))


def jobs(reply: Any) -> Table:
    page = reply_as(ExecutionList, reply)
    return _runs(page.executions, page.total, page.next_cursor)


def _error(error_type: str | None, message: str | None) -> str:
    if error_type and message:
        return f"{error_type}: {message}"
    return error_type or message or ""


def _runs(runs: list[ExecutionView], total: int, cursor: str | None) -> Table:
    table = _table(
        "CREATED",
        "STATUS",
        "JOB ID",
        "TRIGGER",
        "SCRAPED",
        "SAVED",
        "DURATION",
        "ERROR",
        caption=_page(len(runs), total, cursor),
    )
    for run in runs:
        table.add_row(
            when(run.created_at),
            cell(run.status),
            cell(run.job_id),
            cell(run.trigger),
            cell(run.properties_scraped),
            cell(run.properties_saved),
            cell(None if run.duration_ms is None else f"{run.duration_ms} ms"),
            cell(_error(run.error_type, run.error_message)),
        )
    return table


def job(reply: Any) -> RenderableType:
    """The run's fields, then its ended attempts and the newest traceback."""
    run = reply_as(ExecutionView, reply)
    shown = run.model_dump(mode="json", exclude={"params", "metadata", "attempts"})
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


def _attempts(attempts: list[AttemptRecord]) -> Table:
    table = _table("ATTEMPT", "STATUS", "RUNNER", "STARTED", "ENDED", "DURATION", "ERROR")
    for attempt in attempts:
        table.add_row(
            cell(attempt.attempt),
            cell(attempt.status),
            cell(attempt.runner_id),
            when(attempt.started_at),
            when(attempt.completed_at),
            cell(None if attempt.duration_ms is None else f"{attempt.duration_ms} ms"),
            cell(_error(attempt.error_type, attempt.error_message)),
        )
    return table


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


def _summary_row(summary: StatsSummary) -> list[Text]:
    values = (
        summary.runs,
        summary.completed,
        summary.failed,
        summary.cancelled,
        summary.skipped,
        summary.success_rate,
        summary.duration_ms_mean,
        summary.duration_ms_p95,
        summary.items_scraped,
        summary.items_saved,
    )
    return [cell(f"{v:.3g}" if isinstance(v, float) else v) for v in values]


def _summaries(rows: list[tuple[str, StatsSummary]]) -> Table:
    table = _table("", *SUMMARY_COLUMNS)
    for label, summary in rows:
        table.add_row(Text(label, style="bold"), *_summary_row(summary))
    return table


def _windows(stats: WindowedStats) -> list[tuple[str, StatsSummary]]:
    return [
        ("all time", stats.all_time),
        ("this hour", stats.last_1h),
        ("last 24 h", stats.last_24h),
        ("last 7 d", stats.last_7d),
        ("last 30 d", stats.last_30d),
    ]


def job_stats(reply: Any) -> RenderableType:
    stats = reply_as(JobStats, reply)
    rows = [*_windows(stats), (f"last {stats.hours} h", stats.recent)]
    rows += [(hour.period, hour) for hour in stats.hourly]
    last = stats.last_execution
    footer = f"last run: {last.job_id} {last.status}" if last else "no runs yet"
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
    return Text(f"leader: {status.leader}" + (f" since {when(since)}" if since else ""))


def _tickers(tickers: list[TickerStatus]) -> RenderableType:
    if not tickers:
        return Text("tickers: none answered")
    table = _table("TICKER", "LEADING", "SINCE", "SPECS FOLLOWED", "ANSWERED")
    for ticker in tickers:
        table.add_row(
            cell(ticker.ticker_id),
            cell("yes" if ticker.leading else "no"),
            when(ticker.leading_since),
            cell(ticker.schedules_loaded),
            when(ticker.at),
        )
    return table


def _lag(consumers: list[ConsumerLag]) -> Table:
    table = _table("CONSUMER", "STREAM", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING PULLS")
    for consumer in consumers:
        table.add_row(
            cell(consumer.consumer),
            cell(consumer.stream),
            cell(consumer.pending),
            cell(consumer.ack_pending),
            cell(consumer.redelivered),
            cell(consumer.waiting_pulls),
        )
    return table


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
