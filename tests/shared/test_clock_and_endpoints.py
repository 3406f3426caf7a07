import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from natscron.errors import StackLockedError, StackNotFoundError
from natscron.stack import (
    ENDPOINTS_FILE,
    LOCK_FILE,
    hold_stack_lock,
    resolve_endpoints,
    write_stack_endpoints,
)
from natscron_shared.runtime.clock import ManualClock, SystemClock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings

START = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


async def test_manual_clock_wakes_sleepers_only_when_their_time_comes() -> None:
    clock = ManualClock(START)
    sleeper = asyncio.create_task(clock.sleep_until(START + timedelta(seconds=10)))
    await clock.advance(timedelta(seconds=9))
    woken, _ = await asyncio.wait({sleeper}, timeout=0.05)
    assert not woken
    await clock.advance(timedelta(seconds=1))
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() == START + timedelta(seconds=10)


async def test_system_clock_never_wakes_before_its_time() -> None:
    """It ends its timer early on purpose and yields until the time itself."""
    clock = SystemClock()
    for delay_ms in (0.2, 1.0, 3.0, 7.5):
        when = clock.now() + timedelta(milliseconds=delay_ms)
        await asyncio.wait_for(clock.sleep_until(when), 1)
        assert clock.now() >= when


def test_manual_clock_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_settings_urls_win(tmp_path: Path) -> None:
    settings = Settings(nats_url="nats://n:4222", mongo_url="mongodb://m/db", data_dir=tmp_path)
    assert resolve_endpoints(settings) == Endpoints("nats://n:4222", "mongodb://m/db")


def test_running_stack_is_found_and_a_dead_one_is_not(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(StackNotFoundError, match="natscron up"):
        resolve_endpoints(settings)
    stack = Endpoints("nats://127.0.0.1:1", "mongodb://127.0.0.1:2/natscron")
    path = write_stack_endpoints(tmp_path, stack)
    assert resolve_endpoints(settings) == stack
    path.write_text(path.read_text().replace(str(os.getpid()), "999999999"))
    with pytest.raises(StackNotFoundError):
        resolve_endpoints(settings)


def test_a_relative_data_dir_is_found_in_parents_past_a_dead_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = Endpoints("nats://127.0.0.1:1", "mongodb://127.0.0.1:2/natscron")
    write_stack_endpoints(tmp_path / ".natscron", live)
    dead = write_stack_endpoints(tmp_path / "a" / ".natscron", Endpoints("nats://x", "mongodb://x"))
    dead.write_text(dead.read_text().replace(str(os.getpid()), "999999999"))
    (tmp_path / "a" / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a" / "b")
    assert resolve_endpoints(Settings(data_dir=Path(".natscron"))) == live


def test_a_miss_says_which_folders_were_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack_endpoints(tmp_path / ".natscron", Endpoints("nats://n", "mongodb://m"))
    absolute = tmp_path / "a" / ".natscron"
    with pytest.raises(StackNotFoundError, match=re.escape(f"with data folder {absolute}:")):
        resolve_endpoints(Settings(data_dir=absolute))
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".natscron" / ENDPOINTS_FILE).unlink()
    with pytest.raises(
        StackNotFoundError, match=re.escape(f"with a .natscron folder in {tmp_path} or any of")
    ):
        resolve_endpoints(Settings(data_dir=Path(".natscron")))


def test_one_up_per_data_folder_and_the_lock_names_its_holder(tmp_path: Path) -> None:
    with hold_stack_lock(tmp_path):
        holder = f"pid {os.getpid()}, data folder {tmp_path})"
        with pytest.raises(StackLockedError, match=re.escape(holder)), hold_stack_lock(tmp_path):
            pass
    with hold_stack_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
