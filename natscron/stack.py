"""Where NATS and MongoDB are: from settings, or from a running embedded stack.

`natscron up` writes `<data_dir>/endpoints.json`, so `natscron trigger`, `jobs`,
`apply` and single services started in another terminal find the same servers.
It holds `<data_dir>/up.lock` meanwhile, so one data folder has one `up`.
"""

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from natscron.errors import StackLockedError, StackNotFoundError
from natscron.portable import pid_alive, try_lock
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.settings import Settings

ENDPOINTS_FILE = "endpoints.json"
LOG_FILE = "natscron.log"
"""The services' log under `natscron up`, in the data folder."""
LOCK_FILE = "up.lock"


@contextmanager
def hold_stack_lock(data_dir: Path) -> Iterator[None]:
    """An exclusive lock (`portable.try_lock`) on `<data_dir>/up.lock` with our pid in it,
    or StackLockedError.

    The OS drops the lock when the process dies, even by SIGKILL, so a crash never leaves
    a stale lock; the file stays, as unlinking a lock file races with its next taker.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / LOCK_FILE).open("a+b") as lock:
        if not try_lock(lock):
            lock.seek(0)
            holder = lock.read().strip()
            pid = int(holder) if holder.isdigit() else None
            raise StackLockedError(pid, data_dir.resolve())
        lock.truncate(0)
        lock.write(str(os.getpid()).encode())
        lock.flush()
        yield


def write_stack_endpoints(data_dir: Path, endpoints: Endpoints) -> Path:
    """Written whole or not at all, as other commands may read it at any moment."""
    path = data_dir / ENDPOINTS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({**asdict(endpoints), "pid": os.getpid()}))
    partial.replace(path)
    return path


def _running_stack(data_dir: Path) -> Endpoints | None:
    """The servers of the `natscron up` that wrote `data_dir`'s endpoints file, if it still runs."""
    try:
        recorded = json.loads((data_dir / ENDPOINTS_FILE).read_text())
        stack = Endpoints(nats_url=recorded["nats_url"], mongo_url=recorded["mongo_url"])
        pid = int(recorded["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return stack if pid_alive(pid) else None


def _searched_folders(data_dir: Path) -> list[Path]:
    """An absolute `data_dir` as is; a relative one in the cwd, then in each parent up to
    the root (as git finds `.git`), so commands work from any subfolder of where `up` runs."""
    if data_dir.is_absolute():
        return [data_dir]
    cwd = Path.cwd()
    return [folder / data_dir for folder in (cwd, *cwd.parents)]


def _where_searched(data_dir: Path) -> str:
    if data_dir.is_absolute():
        return f"with data folder {data_dir}"
    return f"with a {data_dir} folder in {Path.cwd()} or any of its parents"


def _find_stack(data_dir: Path) -> Endpoints | None:
    for folder in _searched_folders(data_dir):
        stack = _running_stack(folder)
        if stack is not None:
            return stack
    return None


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Settings win; otherwise attach to the embedded stack `natscron up` runs."""
    if settings.nats_url is not None and settings.mongo_url is not None:
        return Endpoints(nats_url=settings.nats_url, mongo_url=settings.mongo_url)
    stack = _find_stack(settings.data_dir)
    if stack is None:
        raise StackNotFoundError(
            "NATSCRON_NATS_URL / NATSCRON_MONGO_URL are not set and no `natscron up` is running"
            f" {_where_searched(settings.data_dir)}: start one with `natscron up`, or set"
            " NATSCRON_DATA_DIR to the data folder of the one running, or set both URLs"
        )
    return Endpoints(
        nats_url=settings.nats_url or stack.nats_url,
        mongo_url=settings.mongo_url or stack.mongo_url,
    )


def resolve_nats_url(settings: Settings) -> str:
    """For commands that need only NATS: the setting, else the running stack's."""
    if settings.nats_url is not None:
        return settings.nats_url
    return resolve_endpoints(settings).nats_url
