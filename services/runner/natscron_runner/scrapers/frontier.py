"""The crawl's frontier: the pages still to fetch (breadth first, each with its depth),
every URL ever queued, the page being fetched, and the counts; and its JSON state, which
the crawl checkpoints before each fetch.

Bounded, so that its state fits a KV value: at most `max_pages` URLs wait in the queue
(a link found beyond that is not queued; it may be queued later, when there is room), and
the URLs seen are kept as 64-bit digests (16 hex digits), one per URL fetched or queued.
"""

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

STATE_VERSION = 1
MAX_EXAMPLES = 3


def url_digest(url: str) -> str:
    return hashlib.blake2b(url.encode(), digest_size=8).hexdigest()


@dataclass
class Frontier:
    max_queue: int
    queue: deque[tuple[str, int]] = field(default_factory=deque)
    seen: set[str] = field(default_factory=set)
    in_flight: tuple[str, int] | None = None
    """The page whose fetch began and whose links and items are not in yet."""
    fetched: int = 0
    produced: int = 0
    disallowed: list[str] = field(default_factory=list)
    """The first few URLs robots.txt disallowed (the error of a run that fetched nothing)."""
    disallowed_count: int = 0

    @classmethod
    def start(cls, seeds: list[str], max_queue: int) -> "Frontier":
        frontier = cls(max_queue=max(max_queue, len(seeds)))
        for seed in seeds:
            frontier.offer(seed, 0)
        return frontier

    def offer(self, url: str, depth: int) -> bool:
        """Queue `url` unless it was seen already or the queue is full."""
        digest = url_digest(url)
        if digest in self.seen or len(self.queue) >= self.max_queue:
            return False
        self.seen.add(digest)
        self.queue.append((url, depth))
        return True

    def mark_seen(self, url: str) -> None:
        """A URL reached otherwise (a redirect's target): never queue it."""
        self.seen.add(url_digest(url))

    def next(self) -> tuple[str, int]:
        return self.queue.popleft()

    def put_back(self, url: str, depth: int) -> None:
        """A page that could not be fetched this time comes first next time."""
        self.queue.appendleft((url, depth))
        self.in_flight = None

    def note_disallowed(self, url: str) -> None:
        self.disallowed_count += 1
        if len(self.disallowed) < MAX_EXAMPLES:
            self.disallowed.append(url)

    def trim(self) -> int:
        """Drop the newest half of the queue (a state too big to store); how many."""
        dropped = len(self.queue) - len(self.queue) // 2
        for _ in range(dropped):
            self.queue.pop()
        return dropped

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "max_queue": self.max_queue,
            "queue": [[url, depth] for url, depth in self.queue],
            "seen": sorted(self.seen),
            "in_flight": None if self.in_flight is None else list(self.in_flight),
            "fetched": self.fetched,
            "produced": self.produced,
            "disallowed": self.disallowed,
            "disallowed_count": self.disallowed_count,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Frontier":
        """Raises ValueError for a state this code did not write."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"crawl state version {state.get('version')!r} is not {STATE_VERSION}")
        try:
            in_flight = state["in_flight"]
            return cls(
                max_queue=int(state["max_queue"]),
                queue=deque((str(url), int(depth)) for url, depth in state["queue"]),
                seen={str(digest) for digest in state["seen"]},
                in_flight=None if in_flight is None else (str(in_flight[0]), int(in_flight[1])),
                fetched=int(state["fetched"]),
                produced=int(state["produced"]),
                disallowed=[str(url) for url in state["disallowed"]],
                disallowed_count=int(state["disallowed_count"]),
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"unreadable crawl state: {type(exc).__name__}: {exc}") from exc
