"""Tables for people (`-o table`, the default), one per kind of API reply. They take the
reply's JSON, so what they show is what `-o json` prints."""

from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

HIDDEN_IN_DETAIL = frozenset({"params", "labels", "webhooks"})


def cell(value: Any) -> Text:
    if value is None or value == "":
        return Text("-")
    return Text(str(value))


def when(value: str | None) -> Text:
    """An ISO time from the API as `2026-11-25 10:00:10` (UTC)."""
    if not value:
        return Text("-")
    return Text(datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S"))


def _table(*columns: str, caption: str | None = None) -> Table:
    table = Table(box=None, pad_edge=False, caption=caption, caption_justify="left")
    for column in columns:
        table.add_column(column, no_wrap=column in ("ID", "JOB ID", "SCHEDULE ID"))
    return table


def _page(shown: int, total: int, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return f"{shown} of {total}; next page: --cursor {cursor}"


def fields(document: dict[str, Any], title: str | None = None) -> Table:
    """One record as `FIELD  VALUE` rows, leaving out empty fields."""
    table = Table(box=None, pad_edge=False, show_header=False, title=title, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for name, value in document.items():
        if value in (None, "", [], {}):
            continue
        shown = when(value) if name.endswith("_at") and isinstance(value, str) else cell(value)
        table.add_row(name, shown)
    return table


def _schedule_of(doc: dict[str, Any]) -> str:
    if doc.get("cron_expression"):
        return f"cron {doc['cron_expression']}"
    if doc.get("interval"):
        return "every " + " ".join(f"{v:g}{k[0]}" for k, v in doc["interval"].items() if v)
    if doc.get("interval_minutes"):
        return f"every {doc['interval_minutes']:g}m"
    if doc.get("run_at"):
        return f"once at {when(doc['run_at'])}"
    return "-"


def schedules(reply: dict[str, Any]) -> Table:
    items = reply["scheduled_jobs"]
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
        caption=_page(len(items), reply["total"], reply.get("next_cursor")),
    )
    for doc in items:
        table.add_row(
            cell(doc["scheduled_job_id"]),
            cell(doc.get("status")),
            cell(_schedule_of(doc)),
            cell(doc.get("timezone")),
            cell(doc.get("scraper")),
            when(doc.get("next_run_at")),
            when(doc.get("last_run_at")),
            cell(doc.get("last_run_status")),
            cell(doc.get("run_count")),
        )
    return table


def schedule(doc: dict[str, Any]) -> Table:
    shown = {k: v for k, v in doc.items() if k not in HIDDEN_IN_DETAIL}
    for name in ("labels", "params"):
        if doc.get(name):
            shown[name] = ", ".join(f"{k}={v}" for k, v in doc[name].items())
    return fields(shown)


def schedule_detail(reply: dict[str, Any]) -> RenderableType:
    runs = reply["job_runs"]
    listed = jobs({"executions": runs, "total": reply["total_runs"], "next_cursor": None})
    heading = Text(f"\nruns: {len(runs)} newest of {reply['total_runs']}", style="bold")
    return Group(schedule(reply["scheduled_job"]), heading, listed)


def preview(reply: dict[str, Any]) -> RenderableType:
    lines = [
        Text(f"{reply['scheduled_job_id']}: {reply.get('schedule') or 'no description'}"),
        Text(f"status {reply['status']}, time zone {reply['timezone']}"),
    ]
    if not reply["fires"]:
        lines.append(Text("it does not fire while not active: the times are hypothetical"))
    if reply.get("remaining_runs") is not None:
        lines.append(Text(f"remaining runs: {reply['remaining_runs']}"))
    lines.extend(when(moment) for moment in reply["next_fire_times"])
    if not reply["next_fire_times"]:
        lines.append(Text("no further fire times"))
    return Group(*lines)


def control(reply: dict[str, Any]) -> Text:
    return Text(f"{reply['scheduled_job_id']}: {reply['message']}")


def bulk(reply: dict[str, Any]) -> Text:
    if not reply["results"]:
        return Text("no scheduled job matched")
    return Text("\n".join(f"{r['scheduled_job_id']}: {r['message']}" for r in reply["results"]))


def jobs(reply: dict[str, Any]) -> Table:
    items = reply["executions"]
    table = _table(
        "CREATED",
        "STATUS",
        "JOB ID",
        "TRIGGER",
        "SCRAPED",
        "SAVED",
        "DURATION",
        "ERROR",
        caption=_page(len(items), reply["total"], reply.get("next_cursor")),
    )
    for doc in items:
        duration = doc.get("duration_ms")
        error = doc.get("error_type") or ""
        if doc.get("error_message"):
            error = f"{error}: {doc['error_message']}" if error else doc["error_message"]
        table.add_row(
            when(doc.get("created_at")),
            cell(doc.get("status")),
            cell(doc["job_id"]),
            cell(doc.get("trigger")),
            cell(doc.get("properties_scraped")),
            cell(doc.get("properties_saved")),
            cell(None if duration is None else f"{duration} ms"),
            cell(error),
        )
    return table


def job(doc: dict[str, Any]) -> Table:
    shown = {k: v for k, v in doc.items() if k != "params"}
    if doc.get("params"):
        shown["params"] = ", ".join(f"{k}={v}" for k, v in doc["params"].items())
    return fields(shown)


def started(reply: dict[str, Any]) -> Text:
    """A trigger's or retry's reply: the new job id first, for scripts."""
    return Text(f"{reply['job_id']} {reply['status']}: {reply['message']}")


def cancelled(reply: dict[str, Any]) -> Text:
    return Text(f"{reply['job_id']} {reply['found']}: {reply['message']}")


SUMMARY_COLUMNS = (
    "runs",
    "completed",
    "failed",
    "cancelled",
    "skipped",
    "success_rate",
    "duration_ms_mean",
    "duration_ms_p95",
    "items_scraped",
    "items_saved",
)


def _summaries(rows: list[tuple[str, dict[str, Any]]]) -> Table:
    table = _table("", *(name.upper() for name in SUMMARY_COLUMNS))
    for label, summary in rows:
        values = [summary.get(name) for name in SUMMARY_COLUMNS]
        table.add_row(
            Text(label, style="bold"),
            *(cell(f"{v:.3g}" if isinstance(v, float) else v) for v in values),
        )
    return table


def job_stats(reply: dict[str, Any]) -> RenderableType:
    rows = [("all time", reply["all_time"]), (f"last {reply['hours']} h", reply["recent"])]
    rows += [(hour["period"], hour) for hour in reply["hourly"]]
    last = reply.get("last_execution")
    footer = f"last run: {last['job_id']} {last['status']}" if last else "no runs yet"
    return Group(Text(reply["scheduled_job_id"], style="bold"), _summaries(rows), Text(footer))


def metrics(reply: dict[str, Any]) -> RenderableType:
    counts = reply["scheduled_jobs"]
    return Group(
        Text(
            f"scheduled jobs: {counts['total']} ({counts['active']} active, {counts['paused']}"
            f" paused, {counts['inactive']} inactive)"
        ),
        Text(f"jobs now: {reply['jobs']['queued']} queued, {reply['jobs']['running']} running"),
        _summaries(
            [
                ("all time", reply["all_time"]),
                ("last 24 h", reply["last_24h"]),
                ("ad hoc", reply["adhoc_all_time"]),
            ]
        ),
    )


def _leader(reply: dict[str, Any]) -> Text:
    leader = reply.get("leader")
    if not leader:
        return Text("leader: none (no ticker holds the lease)")
    since = reply.get("leader_since")
    return Text(f"leader: {leader}" + (f" since {when(since)}" if since else ""))


def _tickers(tickers: list[dict[str, Any]]) -> RenderableType:
    if not tickers:
        return Text("tickers: none answered")
    table = _table("TICKER", "LEADING", "SINCE", "SPECS FOLLOWED", "ANSWERED")
    for ticker in tickers:
        table.add_row(
            cell(ticker["ticker_id"]),
            cell("yes" if ticker["leading"] else "no"),
            when(ticker.get("leading_since")),
            cell(ticker["schedules_loaded"]),
            when(ticker.get("at")),
        )
    return table


def status(reply: dict[str, Any]) -> RenderableType:
    lag = _table("CONSUMER", "STREAM", "PENDING", "ACK PENDING", "REDELIVERED", "WAITING PULLS")
    for consumer in (*reply["lanes"], *reply["recorder"]):
        lag.add_row(
            cell(consumer["consumer"]),
            cell(consumer["stream"]),
            cell(consumer["pending"]),
            cell(consumer["ack_pending"]),
            cell(consumer["redelivered"]),
            cell(consumer["waiting_pulls"]),
        )
    return Group(
        _leader(reply),
        _tickers(reply.get("tickers") or []),
        Text(f"schedules loaded: {reply['schedules_loaded']}"),
        Text(f"runners: {', '.join(reply['runners']) or 'none'}"),
        Text(f"scrapers: {', '.join(reply['scrapers']) or 'none'}"),
        lag,
    )
