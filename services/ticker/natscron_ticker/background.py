"""The leader's background work: per-schedule operations run while its loop goes on.

The loop only decides what is due; firing a burst (publish, wait for acks, save state)
runs here, so a burst of thousands never holds up the next second. Three rules:

- one operation per scheduled job at a time (`holds`), so its state writes never race
  and it is not fired again before its state is saved; an operation may hold many jobs
  (a burst is fired as one, `submit_all`); what it returns for each is handed to
  `on_done` in the same step that releases its key, so a job cannot be seen due again
  while it is still held (a big burst's, `HAND_BACK_CHUNK` keys a step);
- at most `limit` operations at once, most urgent rank first, then in order of
  submission, which bounds memory and the work in flight during a burst;
- the first unexpected error is kept, `on_failure` is called, and the loop raises it
  (`raise_failure`), which fails the service as an error raised in the loop would.

Detached tasks (`detach`) are sends nobody needs to wait for, kept referenced until
they end.
"""

import asyncio
import heapq
import itertools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")
HAND_BACK_CHUNK = 2_000
"""Results of an operation handed to `on_done` in one step; a bigger one is handed back
in steps."""
Operation = Callable[[], Coroutine[Any, Any, T]]
"""The work of one key; returns that key's result."""
BatchOperation = Callable[[], Coroutine[Any, Any, Mapping[str, T]]]
"""The work of many keys; returns the result of each."""


class BackgroundWork(Generic[T]):
    def __init__(
        self, limit: int, on_done: Callable[[str, T], None], on_failure: Callable[[], None]
    ) -> None:
        self._limit = limit
        self._on_done = on_done
        self._on_failure = on_failure
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, tuple[str, ...], BatchOperation[T]]] = []
        self._running: dict[asyncio.Task[Mapping[str, T]], tuple[str, ...]] = {}
        self._held: set[str] = set()
        self._detached: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    def holds(self, key: str) -> bool:
        """Whether an operation for `key` is waiting or running."""
        return key in self._held

    def submit(self, key: str, rank: int, operation: Operation[T]) -> None:
        """Queue `operation` for `key`, which must not be held; lower ranks start first."""

        async def alone() -> Mapping[str, T]:
            return {key: await operation()}

        self.submit_all((key,), rank, alone)

    def submit_all(self, keys: Sequence[str], rank: int, operation: BatchOperation[T]) -> None:
        """Queue one `operation` for all `keys`, none of which may be held; it returns a
        result for each."""
        held = self._held.intersection(keys)
        assert not held, f"{sorted(held)[:3]} already have an operation"
        self._held.update(keys)
        heapq.heappush(self._waiting, (rank, next(self._order), tuple(keys), operation))
        self._start_waiting()

    def detach(self, send: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(send)
        self._detached.add(task)
        task.add_done_callback(self._detached_done)

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def cancel(self) -> None:
        """Drop the waiting operations and cancel the running ones and detached tasks."""
        self._waiting.clear()
        for task in [*self._running, *self._detached]:
            task.cancel()

    async def close(self) -> None:
        """Drop the waiting operations, then wait for the running ones and detached tasks,
        and for what they detach in turn (a big burst's results, handed back in steps)."""
        self._waiting.clear()
        while self._running or self._detached:
            await asyncio.gather(*self._running, *self._detached, return_exceptions=True)

    def _start_waiting(self) -> None:
        while self._waiting and len(self._running) < self._limit:
            _, _, keys, operation = heapq.heappop(self._waiting)
            name = f"ticker-{keys[0]}" if len(keys) == 1 else f"ticker-burst-{len(keys)}"
            task = asyncio.create_task(operation(), name=name)
            self._running[task] = keys
            task.add_done_callback(self._operation_done)

    def _operation_done(self, task: asyncio.Task[Mapping[str, T]]) -> None:
        keys = self._running.pop(task)
        self._keep_failure(task)
        if task.cancelled() or task.exception() is not None:
            self._held.difference_update(keys)
        elif len(keys) <= HAND_BACK_CHUNK:
            self._hand_back(keys, task.result())
        else:
            self.detach(self._hand_back_in_steps(keys, task.result()))
        self._start_waiting()

    def _hand_back(self, keys: Sequence[str], results: Mapping[str, T]) -> None:
        """Release `keys` and hand their results to `on_done`, in one step."""
        self._held.difference_update(keys)
        for key in keys:
            self._on_done(key, results[key])

    async def _hand_back_in_steps(self, keys: Sequence[str], results: Mapping[str, T]) -> None:
        """A big burst's results, `HAND_BACK_CHUNK` keys a step: each key is held until
        its own step (its results in hand, it cannot be due again before), and one step of
        100,000 would hold the loop about 0.2 s. Detached, so `close` waits for it and
        `cancel` drops what is left with the term."""
        for start in range(0, len(keys), HAND_BACK_CHUNK):
            self._hand_back(keys[start : start + HAND_BACK_CHUNK], results)
            await asyncio.sleep(0)

    def _detached_done(self, task: asyncio.Task[None]) -> None:
        self._detached.discard(task)
        self._keep_failure(task)

    def _keep_failure(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled() or self._failure is not None:
            return
        self._failure = task.exception()
        if self._failure is not None:
            self._on_failure()
