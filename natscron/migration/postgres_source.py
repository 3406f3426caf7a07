"""A PostgreSQL source: seed 003's `schedules` layout or seed 004's crawler layout, told
apart by their tables. Read only, in one repeatable-read transaction, so schedules and runs
are one snapshot; nothing is written to PostgreSQL (what was migrated is remembered on
natscron's side).

psycopg comes with the `postgres` extra (`pip install 'natscron[postgres]'`).
"""

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from natscron.migration import pg_crawler, pg_schedules
from natscron.migration.errors import MigrationInterruptedError, MigrationSourceError
from natscron.migration.records import Definition, Run
from natscron_shared.contract.storage import Document

if TYPE_CHECKING:
    from psycopg import AsyncConnection

COLUMNS_QUERY = (
    "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = ANY(%s)"
)
FETCH_ROWS = 500


@dataclass(frozen=True)
class Layout:
    name: str
    required: Mapping[str, frozenset[str]]
    schedules_query: str
    runs_query: str
    definition: Callable[[Document, ZoneInfo], Definition]
    run: Callable[[Document, ZoneInfo], Run]


SCHEDULES_LAYOUT = Layout(
    pg_schedules.LAYOUT,
    pg_schedules.REQUIRED_COLUMNS,
    pg_schedules.SCHEDULES_QUERY,
    pg_schedules.RUNS_QUERY,
    pg_schedules.schedule_definition,
    pg_schedules.execution_run,
)
CRAWLER_LAYOUT = Layout(
    pg_crawler.LAYOUT,
    pg_crawler.REQUIRED_COLUMNS,
    pg_crawler.SCHEDULES_QUERY,
    pg_crawler.RUNS_QUERY,
    pg_crawler.job_definition,
    lambda row, _: pg_crawler.execution_run(row),
)
TABLES = ("schedules", "jobs", "job_executions")


def layout_of(columns: Mapping[str, set[str]]) -> Layout:
    """The layout the tables' columns show; `MigrationSourceError` naming what is missing."""
    if "schedules" in columns:
        layout = SCHEDULES_LAYOUT
    elif "interval_minutes" in columns.get("jobs", set()):
        layout = CRAWLER_LAYOUT
    else:
        raise MigrationSourceError(
            "the PostgreSQL database has neither the schedules layout (tables schedules and"
            " job_executions) nor the crawler layout (a jobs table with interval_minutes, and"
            " job_executions)"
        )
    for table, required in layout.required.items():
        missing = sorted(required - columns.get(table, set()))
        if missing:
            raise MigrationSourceError(
                f"the {layout.name} layout's table {table} lacks {', '.join(missing)}"
                " (docs/migration.md lists the columns migrate reads)"
            )
    return layout


class PostgresSource:
    def __init__(self, connection: "AsyncConnection[Document]", layout: Layout, zone: ZoneInfo):
        self._connection = connection
        self._layout = layout
        self._zone = zone

    @property
    def layout(self) -> str:
        return self._layout.name

    @property
    def database(self) -> str:
        return self._connection.info.dbname

    async def definitions(self) -> AsyncIterator[Definition]:
        async for row in self._rows("natscron_schedules", self._layout.schedules_query):
            yield self._layout.definition(row, self._zone)

    async def runs(self) -> AsyncIterator[Run]:
        async for row in self._rows("natscron_runs", self._layout.runs_query):
            yield self._layout.run(row, self._zone)

    async def mark_definition(
        self, definition: Definition, scheduled_job_id: str, now: datetime
    ) -> None:
        """PostgreSQL is only read: natscron remembers the schedule itself."""

    async def mark_run(self, run: Run, job_id: str, scheduled_job_id: str, now: datetime) -> None:
        """PostgreSQL is only read: natscron remembers the run itself."""

    async def _rows(self, cursor_name: str, query: str) -> AsyncIterator[Document]:
        """Streamed through a server-side cursor: the runs of years need not fit in memory."""
        async with self._connection.cursor(name=cursor_name) as cursor:
            await cursor.execute(query)
            while rows := await cursor.fetchmany(FETCH_ROWS):
                for row in rows:
                    yield row


@asynccontextmanager
async def postgres_source(url: str, zone: ZoneInfo) -> AsyncIterator[PostgresSource]:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise MigrationSourceError(
            "migrating from PostgreSQL needs psycopg: install natscron's postgres extra"
            " (pip install 'natscron[postgres]')"
        ) from None
    try:
        connection = await psycopg.AsyncConnection.connect(url, row_factory=dict_row)
    except psycopg.Error as exc:
        raise MigrationSourceError(f"cannot connect to the PostgreSQL source: {exc}") from None
    try:
        await connection.set_read_only(True)
        await connection.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        async with connection.cursor() as cursor:
            await cursor.execute(COLUMNS_QUERY, (list(TABLES),))
            columns: dict[str, set[str]] = {}
            for row in await cursor.fetchall():
                columns.setdefault(row["table_name"], set()).add(row["column_name"])
        yield PostgresSource(connection, layout_of(columns), zone)
    except psycopg.Error as exc:
        raise MigrationInterruptedError(
            f"the migration stopped reading PostgreSQL: {type(exc).__name__}: {exc}; what it"
            " wrote is consistent, so run it again once the server answers"
        ) from None
    finally:
        await connection.close()
