"""The chains between schedules as a graph, checked wherever specs are written or deleted
(`natscron apply`, the API, `natscron migrate`): every parent a schedule runs after must
exist, and no chain may lead back to where it started. A problem names its chain, as
`a -> b -> a` (an arrow goes from a parent to the schedule that runs after it)."""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from natscron_shared.contract.errors import InvalidChainError
from natscron_shared.contract.models import ScheduledJob


@dataclass(frozen=True)
class ChainProblem:
    scheduled_job_ids: frozenset[str]
    """Every schedule the problem involves."""
    message: str

    def __str__(self) -> str:
        return self.message


def parents_of(specs: Iterable[ScheduledJob]) -> dict[str, list[str]]:
    """Each spec's id and the ids it runs after: the graph `chain_problems` checks."""
    return {spec.scheduled_job_id: spec.parents for spec in specs}


def chain_problems(graph: Mapping[str, Sequence[str]]) -> list[ChainProblem]:
    """The unknown parents and the cycles of `graph` (every schedule's id -> the ids it
    runs after), sorted."""
    problems = [
        ChainProblem(
            frozenset((child, parent)),
            f"{child} runs after {parent}, which is not a scheduled job",
        )
        for child, parents in sorted(graph.items())
        for parent in parents
        if parent not in graph
    ]
    for cycle in _cycles(graph):
        problems.append(
            ChainProblem(
                frozenset(cycle), f"a chain leads back to itself: {' -> '.join(cycle + [cycle[0]])}"
            )
        )
    return problems


def problems_touching(
    graph: Mapping[str, Sequence[str]], touched: Collection[str]
) -> list[ChainProblem]:
    """The problems that involve a schedule of `touched` (those being written or deleted):
    a graph already broken elsewhere refuses nothing new."""
    return [p for p in chain_problems(graph) if not p.scheduled_job_ids.isdisjoint(touched)]


def after_deleting(
    graph: Mapping[str, Sequence[str]], deleted: Collection[str]
) -> list[ChainProblem]:
    """What deleting `deleted` would break: schedules left running after one of them,
    each named with the parent it would lose."""
    remaining = {i: parents for i, parents in graph.items() if i not in deleted}
    return [
        ChainProblem(
            problem.scheduled_job_ids,
            f"{child} runs after {parent}: change or delete {child} first, or delete both",
        )
        for problem in chain_problems(remaining)
        for child, parent in _orphaned(problem, remaining, deleted)
    ]


def check_chains(
    stored: Mapping[str, Sequence[str]],
    written: Iterable[ScheduledJob] = (),
    deleted: Collection[str] = (),
) -> None:
    """Raise `InvalidChainError` if writing `written` and deleting `deleted`, over the
    schedules `stored` now (id -> the ids it runs after), would leave a schedule running
    after one that does not exist or a chain leading back to itself."""
    written = list(written)
    after = parents_of(written)
    merged = {i: p for i, p in stored.items() if i not in deleted} | after
    problems = problems_touching(merged, after) + after_deleting(
        {**stored, **after}, set(deleted) - set(after)
    )
    if problems:
        raise InvalidChainError("; ".join(dict.fromkeys(str(p) for p in problems)))


def _orphaned(
    problem: ChainProblem, remaining: Mapping[str, Sequence[str]], deleted: Collection[str]
) -> list[tuple[str, str]]:
    if len(problem.scheduled_job_ids) != 2:
        return []
    pairs = [(c, p) for c in problem.scheduled_job_ids for p in problem.scheduled_job_ids]
    return [(c, p) for c, p in pairs if c in remaining and p in deleted and p in remaining[c]]


def _cycles(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of schedules (Tarjan's algorithm, iterative),
    each from its smallest id, following parents to children."""
    children: dict[str, list[str]] = {node: [] for node in graph}
    for child, parents in graph.items():
        for parent in parents:
            if parent in graph:
                children[parent].append(child)
    for node in children:
        children[node].sort()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if position < len(children[node]):
                work.append((node, position + 1))
                following = children[node][position]
                if following not in index:
                    work.append((following, 0))
                elif following in on_stack:
                    low[node] = min(low[node], index[following])
                continue
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return sorted(_cycle_in(set(group), children) for group in groups)


def _cycle_in(group: set[str], children: Mapping[str, list[str]]) -> list[str]:
    """A shortest way round from the group's smallest id back to it (breadth first)."""
    start = min(group)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for child in children[node]:
                if child not in group:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return list(reversed(path))
                if child not in came_from:
                    came_from[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{sorted(group)} holds no cycle")
