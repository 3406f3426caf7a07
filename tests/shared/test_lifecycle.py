import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from typing import TypeVarTuple

import pytest

from natscron_shared.contract.errors import NatscronError
from natscron_shared.runtime.lifecycle import (
    Service,
    ServiceFailedError,
    ServiceState,
    StartupTimeoutError,
    bounded,
    run_until_signalled,
)
from tests.waiting import eventually


class Recording(Service):
    name = "recording"

    def __init__(self, fail_start: bool = False) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail_start = fail_start

    async def _start(self) -> None:
        self.calls.append("start")
        if self.fail_start:
            raise RuntimeError("cannot connect")

    async def _stop(self) -> None:
        self.calls.append("stop")


async def test_states_and_idempotent_stop() -> None:
    service = Recording()
    assert not service.is_ready()
    await service.start()
    assert (service.state, service.is_ready()) == (ServiceState.RUNNING, True)
    await service.stop()
    await service.stop()
    assert service.state is ServiceState.STOPPED
    assert service.calls == ["start", "stop"]


async def test_cannot_start_twice() -> None:
    service = Recording()
    await service.start()
    with pytest.raises(NatscronError, match="cannot start from state running"):
        await service.start()
    await service.stop()


async def test_failed_start_cleans_up_and_ends_stopped() -> None:
    service = Recording(fail_start=True)
    with pytest.raises(RuntimeError):
        await service.start()
    assert service.state is ServiceState.STOPPED
    assert service.calls == ["start", "stop"]


class Looping(Service):
    """Runs one loop that fails when told to."""

    name = "looping"

    def __init__(self) -> None:
        super().__init__()
        self.fail = asyncio.Event()

    async def _start(self) -> None:
        self.supervise("work", self._work())

    async def _work(self) -> None:
        await self.fail.wait()
        raise RuntimeError("the dependency went away")

    async def _stop(self) -> None:
        pass


async def test_a_dead_loop_fails_the_service_and_run_until_signalled_raises() -> None:
    service = Looping()
    running = asyncio.create_task(run_until_signalled([service], "127.0.0.1", 0))
    await eventually(lambda: _ready(service), what="service running")
    assert service.health_problems() == []
    service.fail.set()
    with pytest.raises(ServiceFailedError, match="looping loop 'work' died: RuntimeError"):
        await asyncio.wait_for(running, 10)
    assert service.state is ServiceState.STOPPED
    assert service.health_problems() == [
        "looping loop 'work' died: RuntimeError: the dependency went away"
    ]


async def test_loops_ending_on_stop_are_no_failure() -> None:
    service = Looping()
    await service.start()
    await service.stop()
    assert service.failure is None and not service.failed.is_set()


async def test_startup_waits_are_bounded_and_say_what_they_waited_for() -> None:
    with pytest.raises(StartupTimeoutError, match="waiting for the KV scheduled_jobs watch"):
        await bounded(asyncio.Event().wait(), "the KV scheduled_jobs watch", seconds=0.05)


async def _ready(service: Service) -> bool:
    return service.is_ready()


class Stubborn(Service):
    """A loop that swallows its first cancellation, as a request inside Python 3.11's
    `asyncio.wait_for` can when the reply arrives at the same moment."""

    name = "stubborn"

    async def _start(self) -> None:
        self.supervise("lease", self._lease())

    async def _lease(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await asyncio.Event().wait()

    async def _stop(self) -> None:
        pass


async def test_a_loop_that_swallows_a_cancel_does_not_hang_the_stop() -> None:
    service = Stubborn()
    await service.start()
    await asyncio.wait_for(service.stop(), 2)
    assert service.state is ServiceState.STOPPED and service.failure is None


Ts = TypeVarTuple("Ts")


class NoLoopSignals(asyncio.SelectorEventLoop):
    """An event loop that cannot handle signals itself, as Windows' cannot."""

    def add_signal_handler(self, sig: int, callback: Callable[[*Ts], object], *args: *Ts) -> None:
        raise NotImplementedError

    def remove_signal_handler(self, sig: int) -> bool:
        raise NotImplementedError


def test_ctrl_c_stops_the_services_where_the_loop_cannot_handle_signals() -> None:
    async def interrupted() -> list[str]:
        service = Recording()
        running = asyncio.create_task(run_until_signalled([service], "127.0.0.1", 0))
        await eventually(lambda: _ready(service), what="service running")
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(running, 10)
        return service.calls

    before = signal.getsignal(signal.SIGINT)
    with asyncio.Runner(loop_factory=NoLoopSignals) as runner:
        assert runner.run(interrupted()) == ["start", "stop"]
    assert signal.getsignal(signal.SIGINT) is before
