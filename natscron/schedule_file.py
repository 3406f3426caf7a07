"""Reading `schedules.yaml`: every spec is validated before anything is written."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from natscron_shared.contract.catalogue import (
    Catalogue,
    JobRejectedError,
    NoRunnersError,
    check_job,
    no_runners_message,
)
from natscron_shared.contract.errors import BadRequestError, plain_message
from natscron_shared.contract.models import ScheduledJob
from natscron_shared.contract.suggestions import did_you_mean


class ScheduleFileError(BadRequestError):
    """The file is unreadable or a spec in it is invalid; the message names file and field."""


def _location(path: Path, index: int, loc: tuple[int | str, ...]) -> str:
    field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return f"{path}: scheduled_jobs[{index}]{field}"


def _message(error: ErrorDetails) -> str:
    """Pydantic's message, plain; a misspelt field of the spec gets the closest real one."""
    message = plain_message(error)
    loc = error["loc"]
    if error["type"] == "extra_forbidden" and len(loc) == 1 and isinstance(loc[0], str):
        message += did_you_mean(loc[0], ScheduledJob.model_fields)
    return message


def parse_schedules(path: Path, document: Any) -> list[ScheduledJob]:
    entries = document.get("scheduled_jobs") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise ScheduleFileError(
            f"{path}: expected a list of scheduled jobs, or a mapping with a 'scheduled_jobs' list"
        )
    specs: list[ScheduledJob] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        try:
            specs.append(ScheduledJob.model_validate(entry))
        except ValidationError as exc:
            problems.extend(
                f"{_location(path, index, tuple(error['loc']))}: {_message(error)}"
                for error in exc.errors()
            )
    ids = [spec.scheduled_job_id for spec in specs]
    problems.extend(
        f"{path}: scheduled_job_id {dup!r} appears more than once"
        for dup in sorted({i for i in ids if ids.count(i) > 1})
    )
    if problems:
        raise ScheduleFileError("\n".join(problems))
    return specs


def check_schedules(
    path: Path, specs: list[ScheduledJob], catalogue: Catalogue
) -> list[ScheduledJob]:
    """Every spec's scraper and params against what the live runners advertise, each with
    the runner pool it runs in (the one it names, or its scraper's): raise one
    `ScheduleFileError` naming each bad field with its schedule, or `NoRunnersError`."""
    if not catalogue:
        raise NoRunnersError(no_runners_message("apply with --unchecked"))
    problems: list[str] = []
    checked: list[ScheduledJob] = []
    for index, spec in enumerate(specs):
        try:
            pool = check_job(catalogue, spec.scraper, spec.params, spec.pool)
        except JobRejectedError as exc:
            problems.extend(
                f"{path}: scheduled_jobs[{index}].{problem.field}"
                f" (scheduled job {spec.scheduled_job_id!r}): {problem.message}"
                for problem in exc.problems
            )
        else:
            checked.append(spec.model_copy(update={"pool": pool}))
    if problems:
        raise ScheduleFileError("\n".join(problems))
    return checked


def load_schedules(path: Path) -> list[ScheduledJob]:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScheduleFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScheduleFileError(f"{path}: not valid YAML: {exc}") from exc
    return parse_schedules(path, document)
