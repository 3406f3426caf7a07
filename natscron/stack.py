"""Where NATS and MongoDB are: from settings, or from a running embedded stack.

`natscron up` writes `<data_dir>/endpoints.json`, so `natscron trigger`, `jobs`,
`apply` and single services started in another terminal find the same servers.
"""

import json
import os
from dataclasses import asdict
from pathlib import Path

from natscron.errors import StackNotFoundError
from natscron_shared.endpoints import Endpoints
from natscron_shared.settings import Settings

ENDPOINTS_FILE = "endpoints.json"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_stack_endpoints(data_dir: Path, endpoints: Endpoints) -> Path:
    path = data_dir / ENDPOINTS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(endpoints), "pid": os.getpid()}))
    return path


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Settings win; otherwise attach to the embedded stack running under `data_dir`."""
    stack: dict[str, str] = {}
    path = settings.data_dir / ENDPOINTS_FILE
    if (settings.nats_url is None or settings.mongo_url is None) and path.exists():
        recorded = json.loads(path.read_text())
        if _pid_alive(int(recorded["pid"])):
            stack = recorded
    nats_url = settings.nats_url or stack.get("nats_url")
    mongo_url = settings.mongo_url or stack.get("mongo_url")
    if nats_url is None or mongo_url is None:
        raise StackNotFoundError(
            "NATSCRON_NATS_URL / NATSCRON_MONGO_URL are not set and no embedded stack is"
            f" running under {settings.data_dir}: start one with `natscron up`"
        )
    return Endpoints(nats_url=nats_url, mongo_url=mongo_url)
