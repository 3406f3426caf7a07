"""Errors of the command line and the embedded dev stack."""

from pathlib import Path

from natscron_shared.contract.errors import BadRequestError, NatscronError


class EmbeddedServerError(NatscronError):
    """An embedded server could not be found or started."""

    code = "embedded_server_error"


class StackNotFoundError(NatscronError):
    """No server URL configured and no running embedded stack to attach to."""

    code = "stack_not_found"


class StackLockedError(BadRequestError):
    """Another `natscron up` holds the data folder. A BadRequestError so that the command
    exits with status 2: the fix is in the user's hands, not a failure of natscron."""

    code = "stack_locked"

    def __init__(self, pid: int | None, data_dir: Path) -> None:
        holder = "" if pid is None else f"pid {pid}, "
        super().__init__(
            f"`natscron up` is already running here ({holder}data folder {data_dir});"
            " stop it first or set NATSCRON_DATA_DIR to another folder"
        )
        self.pid = pid
        self.data_dir = data_dir
