"""Each source schedule's fate, decided before anything is written: the spec it becomes
(its scraper chosen by the scraper map and checked against the runners, which give its
runner pool), or why it has none: it cannot be converted, its kind is unmapped, another
schedule supersedes it, or it would break a chain (`refuse_broken_chains`)."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from natscron.migration.records import Definition, Scrape
from natscron.migration.scraper_map import ScraperMap
from natscron.migration.templates import TemplateError
from natscron_shared.contract.catalogue import Catalogue, JobRejectedError, check_job
from natscron_shared.contract.chain_graph import parents_of, problems_touching
from natscron_shared.contract.errors import plain_message
from natscron_shared.contract.models import ScheduledJob

PLACEHOLDER_SCRAPER = "unmapped"
"""Checks a spec's own fields before its scraper is known."""


@dataclass(frozen=True)
class Planned:
    definition: Definition
    spec: ScheduledJob | None = None
    problem: str | None = None
    unmapped_kind: str | None = None
    successor: "Planned | None" = None
    """The schedule of the source that supersedes this one."""


def plan(
    definitions: Iterable[Definition], scrapers: ScraperMap, catalogue: Catalogue | None
) -> list[Planned]:
    """In source order; a definition is superseded by one read before it."""
    planned: list[Planned] = []
    by_key: dict[str, Planned] = {}
    for definition in definitions:
        successor = by_key.get(definition.superseded_by or "")
        if successor is not None:
            decided = Planned(definition, successor=successor)
        else:
            decided = _plan_one(definition, scrapers, catalogue)
        planned.append(decided)
        for key in definition.keys:
            by_key.setdefault(key, decided)
    return planned


def _plan_one(definition: Definition, scrapers: ScraperMap, catalogue: Catalogue | None) -> Planned:
    if definition.problem is not None or definition.scrape is None:
        return Planned(definition, problem=definition.problem)
    fields = definition.spec_fields
    try:
        ScheduledJob.model_validate(fields | {"scraper": PLACEHOLDER_SCRAPER})
        chosen = scrapers.choose(definition.scrape)
        if chosen is None:
            return Planned(definition, unmapped_kind=definition.scrape.kind)
        scraper, params = chosen
        spec = ScheduledJob.model_validate(fields | {"scraper": scraper, "params": params})
        if catalogue is not None:
            pool = check_job(catalogue, spec.scraper, spec.params, spec.pool)
            spec = spec.model_copy(update={"pool": pool})
    except ValidationError as exc:
        return Planned(definition, problem=_sentence(exc))
    except TemplateError as exc:
        return Planned(definition, problem=f"the scraper map's params: {exc}")
    except JobRejectedError as exc:
        reason = "runners refuse it: " + "; ".join(map(str, exc.problems))
        return Planned(definition, problem=reason)
    return Planned(definition, spec=spec)


def refuse_broken_chains(
    planned: list[Planned], stored: Mapping[str, Sequence[str]]
) -> list[Planned]:
    """`planned`, with every spec that would run after a schedule neither KV (`stored`: id
    -> the ids it runs after) nor the migration holds, or close a chain, turned into a
    problem naming the chain; again until none is left, as a refused spec is not written."""
    while True:
        specs = [p.spec for p in planned if p.spec is not None and p.successor is None]
        written = parents_of(specs)
        problems = problems_touching({**stored, **written}, written)
        if not problems:
            return planned
        reasons: dict[str, list[str]] = {}
        for problem in problems:
            for scheduled_job_id in problem.scheduled_job_ids & written.keys():
                reasons.setdefault(scheduled_job_id, []).append(str(problem))
        planned = [
            replace(p, spec=None, problem="; ".join(reasons[p.spec.scheduled_job_id]))
            if p.spec is not None and p.spec.scheduled_job_id in reasons
            else p
            for p in planned
        ]


def run_scrape(
    scrapers: ScraperMap, scrape: Scrape | None, spec: ScheduledJob
) -> tuple[str, dict[str, Any]]:
    """The scraper and params of a run: what it scraped itself, mapped like a schedule,
    where the source says and the map can; its schedule's otherwise."""
    if scrape is not None:
        try:
            chosen = scrapers.choose(scrape)
        except TemplateError:
            chosen = None
        if chosen is not None:
            return chosen
    return spec.scraper, spec.params


def _sentence(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, detail['loc'])) or 'definition'}: {plain_message(detail)}"
        for detail in error.errors(include_url=False)
    )
