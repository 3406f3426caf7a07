"""`natscron migrate` refuses a converted spec that would break a chain, naming it, before
anything is written: one running after a schedule neither KV nor the migration holds, or
closing a chain with what KV holds. The legacy sources have no dependencies of their own,
so this guards definitions that bring `after` in their spec fields."""

from typing import Any

from natscron.migration.plan import plan, refuse_broken_chains
from natscron.migration.records import Definition, Origin, Scrape
from natscron.migration.scraper_map import ScraperMap


def definition(scheduled_job_id: str, *after: str) -> Definition:
    fields: dict[str, Any] = {"scheduled_job_id": scheduled_job_id, "name": scheduled_job_id}
    if after:
        fields["after"] = [{"scheduled_job_id": parent} for parent in after]
    else:
        fields["cron_expression"] = "0 2 * * *"
    return Definition(
        Origin("mongodb:scheduled_jobs", scheduled_job_id),
        scheduled_job_id,
        (scheduled_job_id,),
        spec_fields=fields,
        scrape=Scrape("crawl", {}, {}, own_scraper="noop"),
    )


def test_migrated_specs_that_break_a_chain_are_refused_and_the_rest_planned() -> None:
    planned = plan(
        [
            definition("x"),
            definition("y", "x"),
            definition("loop", "kv_child"),
            definition("z", "q"),
        ],
        ScraperMap(),
        None,
    )
    stored = {"kv_child": ["loop"], "kept": []}
    decided = {p.definition.origin.legacy_id: p for p in refuse_broken_chains(planned, stored)}
    assert decided["x"].spec is not None and decided["y"].spec is not None
    assert decided["loop"].spec is None
    assert decided["loop"].problem == "a chain leads back to itself: kv_child -> loop -> kv_child"
    assert decided["z"].problem == "z runs after q, which is not a scheduled job"


def test_a_refused_parent_refuses_its_children_in_turn() -> None:
    planned = plan([definition("p", "missing"), definition("c", "p")], ScraperMap(), None)
    decided = {p.definition.origin.legacy_id: p for p in refuse_broken_chains(planned, {})}
    assert decided["p"].problem == "p runs after missing, which is not a scheduled job"
    assert decided["c"].problem == "c runs after p, which is not a scheduled job"
