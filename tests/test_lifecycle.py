import pytest

from natscron_shared.errors import NatscronError
from natscron_shared.lifecycle import Service, ServiceState


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
