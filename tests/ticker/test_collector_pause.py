"""The collector is off while any big burst runs, and as it was once the last one ends."""

import gc
from collections.abc import Iterator

import pytest

from natscron_ticker.collector_pause import PAUSE_FROM, CollectorPause


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


@pytest.mark.usefixtures("collector_enabled")
def test_off_from_the_first_big_burst_until_the_last_ends() -> None:
    pause = CollectorPause()
    with pause.during(PAUSE_FROM - 1):
        assert gc.isenabled()
    first = pause.during(PAUSE_FROM)
    second = pause.during(PAUSE_FROM * 3)
    first.__enter__()
    assert not gc.isenabled()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


@pytest.mark.usefixtures("collector_enabled")
def test_a_collector_already_off_stays_off_and_an_error_ends_the_pause() -> None:
    pause = CollectorPause()
    gc.disable()
    with pause.during(PAUSE_FROM):
        pass
    assert not gc.isenabled()
    gc.enable()
    with pytest.raises(RuntimeError), pause.during(PAUSE_FROM):
        raise RuntimeError
    assert gc.isenabled()
