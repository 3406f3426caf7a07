"""The leader's background work: one operation per job, a bound, ranks, failures."""

import asyncio
from collections.abc import Mapping

import pytest

from natscron_ticker.background import HAND_BACK_CHUNK, BackgroundWork, Operation
from tests.waiting import eventually


class Operations:
    """Operations that log their start and return their key when released; results are
    checked to arrive once the key is free again."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.results: list[str] = []
        self.failures = 0
        self.release = asyncio.Event()
        self.work: BackgroundWork[str] | None = None

    def new_work(self, limit: int) -> BackgroundWork[str]:
        self.work = BackgroundWork(limit, self.on_done, self.on_failure)
        return self.work

    def operation(self, key: str) -> Operation[str]:
        async def run() -> str:
            self.started.append(key)
            await self.release.wait()
            return key

        return run

    def on_done(self, key: str, result: str) -> None:
        assert self.work is not None and not self.work.holds(key), "released first"
        assert result == key
        self.results.append(result)

    def on_failure(self) -> None:
        self.failures += 1


async def started(ops: Operations, count: int) -> None:
    """Wait, with a deadline, until `count` operations have started."""

    async def how_many() -> int:
        return len(ops.started)

    await eventually(how_many, lambda n: n >= count, what=f"{count} operations started")


async def test_runs_at_most_the_limit_most_urgent_first_and_holds_each_key() -> None:
    ops = Operations()
    work = ops.new_work(2)
    for key, rank in [("a", 1), ("b", 1), ("c", 1), ("d", 0)]:
        work.submit(key, rank, ops.operation(key))
    await started(ops, 2)
    assert ops.started == ["a", "b"]
    assert all(work.holds(key) for key in "abcd")
    with pytest.raises(AssertionError):
        work.submit("c", 0, ops.operation("c"))

    ops.release.set()

    async def results() -> list[str]:
        return ops.results

    await eventually(results, lambda done: len(done) == 4, what="all four operations")
    assert ops.started == ["a", "b", "d", "c"]
    assert sorted(ops.results) == ["a", "b", "c", "d"]
    assert not any(work.holds(key) for key in "abcd")


async def test_a_failure_is_kept_for_the_loop_and_reported() -> None:
    ops = Operations()
    work = ops.new_work(4)

    async def broken() -> str:
        raise ValueError("a cron that never matches")

    async def broken_send() -> None:
        raise ValueError("not a NATS error")

    work.submit("bad", 0, broken)
    work.detach(broken_send())
    await work.close()
    assert ops.failures == 1 and ops.results == []
    with pytest.raises(ValueError, match="never matches"):
        work.raise_failure()


async def test_close_drops_what_waits_and_cancel_stops_what_runs() -> None:
    ops = Operations()
    work = ops.new_work(1)
    work.submit("running", 0, ops.operation("running"))
    work.submit("waiting", 0, ops.operation("waiting"))
    await started(ops, 1)
    work.cancel()
    await work.close()
    assert ops.started == ["running"] and ops.results == []
    work.raise_failure()


async def test_a_big_burst_is_handed_back_in_steps_each_key_held_until_its_own() -> None:
    ops = Operations()
    keys = [f"k{n}" for n in range(HAND_BACK_CHUNK * 2 + 5)]
    last_held_at_first_result: list[bool] = []

    def on_done(key: str, result: str) -> None:
        if not last_held_at_first_result:
            last_held_at_first_result.append(work.holds(keys[-1]))
        ops.on_done(key, result)

    work: BackgroundWork[str] = BackgroundWork(1, on_done, ops.on_failure)
    ops.work = work

    async def burst() -> Mapping[str, str]:
        return {key: key for key in keys}

    work.submit_all(keys, 0, burst)
    await work.close()  # waits for the last step too

    assert ops.results == keys
    assert last_held_at_first_result == [True]
    assert not any(work.holds(key) for key in keys)
