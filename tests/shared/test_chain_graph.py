"""The chains between schedules as a graph: unknown parents and cycles are found and named,
the spec refuses what it can tell alone, and a delete is checked for the schedules it would
leave running after nothing."""

import pytest
from pydantic import ValidationError

from natscron_shared.contract.chain_graph import after_deleting, chain_problems, check_chains
from natscron_shared.contract.enums import ChainOn, JobStatus
from natscron_shared.contract.errors import InvalidChainError
from natscron_shared.contract.models import ScheduledJob


def spec(scheduled_job_id: str, *after: str, **fields: object) -> ScheduledJob:
    links = [{"scheduled_job_id": parent} for parent in after]
    return ScheduledJob.model_validate(
        {"scheduled_job_id": scheduled_job_id, "name": scheduled_job_id, "scraper": "noop"}
        | {"after": links}
        | fields
    )


def test_cycles_are_named_from_their_smallest_id_and_unknown_parents_found() -> None:
    graph = {
        "a": ["b"],
        "b": ["a"],
        "solo": ["ghost"],
        "e": ["f"],
        "f": ["g"],
        "g": ["e", "a"],
        "fine": ["solo"],
    }
    assert [str(p) for p in chain_problems(graph)] == [
        "solo runs after ghost, which is not a scheduled job",
        "a chain leads back to itself: a -> b -> a",
        "a chain leads back to itself: e -> g -> f -> e",
    ]
    assert chain_problems({"x": [], "y": ["x"], "z": ["x", "y"]}) == []


def test_a_long_chain_is_checked_without_recursion() -> None:
    graph = {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(5_000)}
    assert chain_problems(graph) == []
    graph["n0"] = ["n4999"]
    (problem,) = chain_problems(graph)
    assert str(problem).endswith("-> n4999 -> n0")


def test_a_write_is_refused_only_for_problems_it_touches() -> None:
    broken_elsewhere = {"old": ["gone"], "a": []}
    check_chains(broken_elsewhere, [spec("b", "a")])
    with pytest.raises(InvalidChainError, match="c runs after nope"):
        check_chains(broken_elsewhere, [spec("c", "nope")])
    with pytest.raises(InvalidChainError, match="a -> b -> a"):
        check_chains({"a": [], "b": ["a"]}, [spec("a", "b", cron_expression="* * * * *")])


def test_deleting_a_parent_needs_its_children_deleted_or_changed_with_it() -> None:
    graph = {"a": [], "b": [], "c": ["a", "b"]}
    assert [str(p) for p in after_deleting(graph, {"a"})] == [
        "c runs after a: change or delete c first, or delete both"
    ]
    assert after_deleting(graph, {"a", "b", "c"}) == []
    check_chains(graph, [spec("c", "b")], deleted={"a"})  # c no longer runs after a
    with pytest.raises(InvalidChainError, match="c runs after b"):
        check_chains(graph, [], deleted={"b"})


def test_the_spec_takes_after_instead_of_a_schedule_and_refuses_what_it_can_tell() -> None:
    chained = spec("b", "a")
    assert (chained.cron_expression, chained.parents) == (None, ["a"])
    assert chained.after[0].on is ChainOn.SUCCESS
    both = spec("b", "a", cron_expression="0 2 * * *")
    assert both.cron_expression == "0 2 * * *"
    yaml_on = ScheduledJob.model_validate(
        {"scheduled_job_id": "b", "name": "b", "scraper": "noop"}
        | {"after": [{"scheduled_job_id": "a", True: "failure"}]}
    )
    assert yaml_on.after[0].on is ChainOn.FAILURE
    for bad, message in (
        ({}, "give exactly one of"),
        ({"after": [{"scheduled_job_id": "b"}]}, r"cannot run after itself \(b -> b\)"),
        ({"after": [{"scheduled_job_id": "a"}] * 2}, "names a more than once"),
        ({"after": [{"scheduled_job_id": "a", "on": "sometimes"}]}, "success"),
    ):
        with pytest.raises(ValidationError, match=message):
            ScheduledJob.model_validate(
                {"scheduled_job_id": "b", "name": "b", "scraper": "noop"} | bad
            )


@pytest.mark.parametrize(
    ("on", "statuses"),
    [
        (ChainOn.SUCCESS, {JobStatus.COMPLETED}),
        (ChainOn.FAILURE, {JobStatus.FAILED}),
        (ChainOn.COMPLETION, {JobStatus.COMPLETED, JobStatus.FAILED}),
    ],
)
def test_which_final_statuses_qualify(on: ChainOn, statuses: set[JobStatus]) -> None:
    final = {s for s in JobStatus if s.is_terminal}
    assert {s for s in final if on.qualifies(s)} == statuses
