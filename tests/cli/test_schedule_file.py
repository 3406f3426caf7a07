"""`natscron apply` input: every problem is named by file, entry and field."""

from pathlib import Path

import pytest

from natscron.schedule_file import ScheduleFileError, load_schedules

VALID = """
scheduled_jobs:
  - scheduled_job_id: daily-for-sale
    name: Daily FOR_SALE
    cron_expression: "0 13 * * *"
    timezone: America/Indiana/Indianapolis
    scraper: http
    params: {locations: ["Indianapolis, IN"], listing_type: for_sale, limit: 10000}
  - scheduled_job_id: every-ten-seconds
    name: Ten seconds
    cron_expression: "*/10 * * * * *"
    scraper: noop
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedules.yaml"
    path.write_text(text)
    return path


def test_valid_file_gives_specs(tmp_path: Path) -> None:
    specs = load_schedules(write(tmp_path, VALID))
    assert [s.scheduled_job_id for s in specs] == ["daily-for-sale", "every-ten-seconds"]
    assert specs[0].params["listing_type"] == "for_sale"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            VALID.replace('"0 13 * * *"', '"61 * * * *"'),
            "scheduled_jobs[0].cron_expression",
            id="invalid-cron",
        ),
        pytest.param(
            VALID.replace("America/Indiana/Indianapolis", "Mars/Olympus"),
            "scheduled_jobs[0].timezone",
            id="unknown-zone",
        ),
        pytest.param(
            VALID.replace('cron_expression: "*/10 * * * * *"', "interval_minutes: -1"),
            "scheduled_jobs[1].interval_minutes",
            id="negative-interval",
        ),
        pytest.param(
            VALID.replace('    cron_expression: "*/10 * * * * *"\n', ""),
            "exactly one of cron_expression",
            id="no-schedule",
        ),
        pytest.param(
            VALID.replace("every-ten-seconds", "daily-for-sale"),
            "appears more than once",
            id="duplicate-id",
        ),
        pytest.param(VALID.replace("scraper: noop", "scrapr: noop"), "scrapr", id="typo-field"),
        pytest.param(
            VALID.replace('cron_expression: "*/10', 'cron: "*/10'),
            "scheduled_jobs[1].cron: Extra inputs are not permitted (did you mean"
            " 'cron_expression'?)",
            id="misspelt-schedule-field",
        ),
        pytest.param(
            VALID.replace('"0 13 * * *"', '"5-1 * * * *"'),
            "scheduled_jobs[0].cron_expression: cron expression '5-1 * * * *': minute '5-1':"
            " range '5-1' runs backwards",
            id="value-error-said-plainly",
        ),
        pytest.param("scheduled_jobs: [\n", "not valid YAML", id="broken-yaml"),
        pytest.param("just text", "expected a list", id="not-a-list"),
    ],
)
def test_bad_file_names_file_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScheduleFileError) as caught:
        load_schedules(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)
    assert "Value error" not in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScheduleFileError, match="cannot read"):
        load_schedules(tmp_path / "nope.yaml")
