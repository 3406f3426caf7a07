"""What the tables print, as a new user reads them: on an 80- and a 120-column terminal,
and piped. Columns that matter stay whole (a status, a time with its zone, a cron
expression, a job id), the next page's command is one line, and piped text is unpadded."""

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from rich.console import Console, RenderableType

from natscron.cli import backfill, output, tables
from natscron.cli.columns import Column, Columns, Drop, Shorten, middle_cut
from natscron.cli.moments import age, moment, relative
from natscron_api.timeline import ExplainedDecision, ExplainedRun, Explanation
from natscron_api.views import (
    ExecutionList,
    ExecutionView,
    HourlyStats,
    JobStats,
    Preview,
    ScheduledJobList,
    ScheduledJobListItem,
    StatsSummary,
)
from natscron_shared.contract.attempts import AttemptRecord
from natscron_shared.contract.backfill import BackfillReply
from natscron_shared.runtime.clock import ManualClock

NOW = datetime(2026, 12, 5, 11, 10, tzinfo=UTC)
CURSOR = "eyJsIjoiam9icyIsImsiOlsiMjAyNi0xMi0wNVQxMToxMDowMFoiLCJzY2hlZHVsZWRfZGVtbyJdfQ" * 2
AUSTIN = "demo-austin-for-sale"
PIPED = None


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(tables, "CLOCK", ManualClock(NOW))
    yield
    output.remember_invocation([])


def drawn(renderable: RenderableType, width: int | None) -> list[str]:
    """As `natscron` prints it: on a terminal `width` wide, or piped when None."""
    out = io.StringIO()
    console = Console(
        width=width or output.PIPE_WIDTH,
        file=out,
        force_terminal=width is not None,
        color_system=None,
        highlight=False,
    )
    console.print(renderable, soft_wrap=True)
    return out.getvalue().splitlines()


def run(job_id: str, status: str, minutes_ago: int, **fields: object) -> ExecutionView:
    return ExecutionView.model_validate(
        {
            "job_id": job_id,
            "status": status,
            "trigger": "scheduled",
            "created_at": NOW - timedelta(minutes=minutes_ago),
            "properties_scraped": 36,
            "properties_saved": 36,
            "duration_ms": 41,
            **fields,
        }
    )


RUNS = ExecutionList(
    executions=[
        run(f"scheduled_{AUSTIN}_1795600810_3fa2c1", "completed", 1),
        run(f"triggered_{AUSTIN}_1795600790_9b0e44", "cancelled", 2),
        run(
            f"scheduled_{AUSTIN}_1795600780_5d1a20",
            "pending",
            3,
            attempt=4,
            not_before=NOW + timedelta(seconds=20),
            error_type="TimeoutError",
            error_message="the site did not answer",
        ),
    ],
    total=345,
    next_cursor=CURSOR,
    limit=3,
    offset=0,
).model_dump(mode="json")


def schedule_view(
    scheduled_job_id: str, cron: str, zone: str, **fields: object
) -> ScheduledJobListItem:
    return ScheduledJobListItem.model_validate(
        {
            "scheduled_job_id": scheduled_job_id,
            "status": "active",
            "cron_expression": cron,
            "timezone": zone,
            "scraper": "http",
            **fields,
        }
    )


SCHEDULES = ScheduledJobList(
    scheduled_jobs=[
        schedule_view(
            AUSTIN,
            "*/10 * * * * *",
            "UTC",
            next_run_at=NOW + timedelta(seconds=8),
            last_run_at=NOW - timedelta(seconds=2),
            last_run_status="completed",
            run_count=360,
        ),
        schedule_view(
            "ny-dst-0230",
            "30 2 * * *",
            "America/New_York",
            next_run_at=datetime(2026, 12, 6, 7, 30, tzinfo=UTC),
            last_run_at=datetime(2026, 12, 5, 7, 30, tzinfo=UTC),
            last_run_status="cancelled",
            run_count=3,
        ),
    ],
    total=2,
).model_dump(mode="json")


@pytest.mark.parametrize("width", [80, 120])
def test_runs_fit_the_terminal_with_status_id_and_when_whole(width: int) -> None:
    output.remember_invocation(["jobs", "list", "--limit", "3"])
    lines = drawn(tables.jobs(RUNS), width)
    table, page = lines[:-1], lines[-1]

    assert all(len(line) <= width for line in table), table
    statuses = [line.split()[3 if width == 120 else 1] for line in table[1:]]
    assert statuses == ["completed", "cancelled", "retrying"]
    for job in RUNS["executions"]:
        assert job["job_id"] in "\n".join(table)
    if width == 120:  # whole times, with their zone; the error gets the room left
        assert table[0].split()[:4] == ["CREATED", "STATUS", "JOB", "ID"]
        assert table[1].startswith("2026-12-05 11:09:00 UTC  completed")
        assert "attempt 4 in 20s" in table[3]
    else:  # the time as an age, as kubectl's AGE
        assert table[0].split()[:2] == ["AGE", "STATUS"]
        assert table[1].startswith("60s  completed")
    assert page == f"3 of 345; next page: natscron jobs list --limit 3 --cursor {CURSOR}"


def test_piped_runs_are_whole_and_unpadded() -> None:
    output.remember_invocation(["jobs", "--cursor", "old", "--limit", "3"])
    lines = drawn(tables.jobs(RUNS), PIPED)

    assert lines[0].split() == [
        "CREATED", "STATUS", "JOB", "ID", "TRIGGER", "SCRAPED", "SAVED", "DURATION", "ERROR"
    ]  # fmt: skip
    assert all(line == line.rstrip() for line in lines)
    assert max(len(line) for line in lines[:-1]) < 200
    assert lines[3].endswith("attempt 4 in 20s; attempt 3: TimeoutError: the site did not answer")
    assert lines[-1].endswith(f"next page: natscron jobs --limit 3 --cursor {CURSOR}")


@pytest.mark.parametrize("width", [80, 120, PIPED])
def test_schedules_keep_the_cron_expression_and_times_carry_their_zone(
    width: int | None,
) -> None:
    lines = drawn(tables.schedules(SCHEDULES), width)
    text = "\n".join(lines)

    assert all(len(line) <= (width or 250) for line in lines)
    assert "*/10 * * * * *" in lines[1] and "30 2 * * *" in lines[2]
    if width == 80:
        assert lines[1].split()[-4:] == ["8s", "2s", "ago", "completed"]
    else:  # 02:30 in New York, not 07:30 unlabelled
        assert "2026-12-06 02:30:00 EST" in lines[2] and "2026-12-05 02:30:00 EST" in lines[2]
        assert "2026-12-05 11:10:08 UTC" in lines[1]
    if width is PIPED:
        assert "America/New_York" in text and "http" in text and "360" in text


def test_a_narrow_terminal_shortens_ids_in_the_middle_last() -> None:
    columns = (Column("ID"), Column("STATUS"), Column("NOTE", elastic=6))
    rows = [["a-rather-long-schedule-identifier_1795600810_3fa2c1", "completed", "fine"]]
    table = Columns(columns, rows, (Drop("NOTE"), Shorten("ID", 20)))

    assert table.lines(80)[1].split() == [rows[0][0], "completed", "fine"]
    assert table.lines(62)[1].split() == [rows[0][0], "completed"]
    assert table.lines(40)[1].split() == ["a-rather-…810_3fa2c1", "completed"]
    assert middle_cut("scheduled_x_1795600810_3fa2c1", 12) == "sched…3fa2c1"


def test_preview_shows_fire_times_in_the_zone_across_dst() -> None:
    reply = Preview(
        scheduled_job_id="ny-dst-0230",
        status="active",
        fires=True,
        schedule="at 02:30 every day, America/New_York",
        timezone="America/New_York",
        next_fire_times=[
            datetime(2026, 10, 31, 6, 30, tzinfo=UTC),
            datetime(2026, 11, 1, 7, 30, tzinfo=UTC),
        ],
        remaining_runs=None,
    ).model_dump(mode="json")

    assert drawn(tables.preview(reply), 80)[2:] == [
        "2026-10-31 02:30:00 EDT",
        "2026-11-01 02:30:00 EST",
    ]


def test_a_job_shows_every_time_in_one_format_and_its_retry() -> None:
    reply = run(
        "scheduled_x_1",
        "pending",
        3,
        attempt=4,
        scheduled_for=NOW - timedelta(minutes=3),
        not_before=NOW + timedelta(seconds=20),
        error_type="TimeoutError",
        error_message="no answer",
        attempts=[
            AttemptRecord(
                attempt=3,
                status="failed",
                runner_id="runner-1",
                started_at=NOW - timedelta(seconds=40),
                completed_at=NOW - timedelta(seconds=10),
                duration_ms=30000,
            )
        ],
    ).model_dump(mode="json")
    lines = drawn(tables.job(reply), PIPED)
    text = "\n".join(lines)

    assert "status              retrying: attempt 4 at 2026-12-05 11:10:20 UTC (in 20s);" in text
    assert "scheduled_for       2026-12-05 11:07:00 UTC" in text
    assert "not_before          2026-12-05 11:10:20 UTC" in text
    assert "T11:" not in text and "+00:00" not in text
    assert "2026-12-05 11:09:20 UTC  2026-12-05 11:09:50 UTC  30000 ms" in text


def test_success_rates_are_percentages_and_hours_are_times() -> None:
    summary = StatsSummary(runs=8, completed=7, failed=1, success_rate=0.875)
    perfect = StatsSummary(runs=3, completed=3, success_rate=1.0)
    stats = JobStats(
        scheduled_job_id=AUSTIN,
        all_time=summary,
        last_1h=perfect,
        last_24h=summary,
        last_7d=summary,
        last_30d=summary,
        recent=summary,
        hours=24,
        hourly=[HourlyStats(period="2026-12-05T10", **perfect.model_dump())],
    ).model_dump(mode="json")
    lines = drawn(tables.job_stats(stats), 80)

    assert all(len(line) <= 80 for line in lines)
    assert "SUCCESS" in lines[1]
    assert lines[2].split()[:6] == ["all", "time", "8", "7", "1", "87.5%"]
    assert lines[3].split()[:6] == ["this", "hour", "3", "3", "0", "100%"]
    assert lines[-2].startswith("2026-12-05 10:00:00 UTC")


def test_a_dry_run_backfill_marks_the_slots_that_ran() -> None:
    slots = [NOW - timedelta(seconds=20), NOW - timedelta(seconds=10)]
    reply = BackfillReply(
        scheduled_job_id=AUSTIN,
        slots=slots,
        existing=slots[:1],
        published=0,
        skipped_existing=1,
        dry_run=True,
        message="Dry run: 1 of 2 slots would be published; 1 already had a run",
    ).model_dump(mode="json")

    assert drawn(backfill._table(reply), 80) == [
        "2026-12-05 11:09:40 UTC  already ran",
        "2026-12-05 11:09:50 UTC",
        "Dry run: 1 of 2 slots would be published; 1 already had a run",
    ]


def test_an_empty_listing_says_so() -> None:
    empty = ExecutionList(executions=[], total=0, limit=20, offset=0)
    assert drawn(tables.jobs(empty.model_dump(mode="json")), 80) == ["no runs match"]


def test_moments_carry_their_zone_and_ages_their_direction() -> None:
    assert moment(NOW) == "2026-12-05 11:10:00 UTC"
    assert moment(NOW, "Asia/Dubai") == "2026-12-05 15:10:00 +04"
    assert moment(NOW, "Not/AZone") == "2026-12-05 11:10:00 UTC"
    assert moment(None) == "-"
    assert age(NOW - timedelta(seconds=90), NOW) == "90s"
    assert age(NOW - timedelta(hours=3), NOW) == "3h"
    assert age(NOW + timedelta(days=3), NOW) == "in 3d"
    assert relative(NOW - timedelta(minutes=5), NOW) == "5m ago"


def test_a_chained_schedule_explained_lists_its_runs_and_decisions_with_their_why() -> None:
    held = "job scheduled_a_2 ended and started no chained run: a's run ended failed"
    reply = Explanation(
        scheduled_job_id="b",
        timezone="UTC",
        schedule=None,
        start=NOW - timedelta(hours=1),
        end=NOW,
        now=NOW,
        spec_revision=3,
        counts={},
        slots=[],
        other_runs=[
            ExplainedRun(
                job_id="chained_b_1",
                trigger="chain",
                status="completed",
                fired_at=NOW - timedelta(minutes=30),
                why="chained from job scheduled_a_1",
            )
        ],
        other_decisions=[
            ExplainedDecision(
                kind="chain_held",
                at=NOW - timedelta(minutes=20),
                cause_job_id="scheduled_a_2",
                note="a's run ended failed",
                why=held,
            )
        ],
    ).model_dump(mode="json")

    lines = drawn(tables.explanation(reply), PIPED)
    assert lines[0] == "b: no slots of its own"
    assert "wall times in UTC: none" in lines[1]
    runs = lines.index("other runs")
    assert lines[runs + 1].split() == ["JOB", "ID", "TRIGGER", "STATUS", "FIRED", "WHY"]
    assert lines[runs + 2].startswith("chained_b_1")
    assert lines[runs + 2].endswith("chained from job scheduled_a_1")
    decisions = lines.index("other decisions")
    assert lines[decisions + 2].startswith("chain_held")
    assert lines[decisions + 2].endswith(held)
