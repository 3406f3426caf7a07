"""Errors of the command line and the embedded dev stack."""

from natscron_shared.errors import NatscronError


class EmbeddedServerError(NatscronError):
    """An embedded server could not be found or started."""

    code = "embedded_server_error"


class StackNotFoundError(NatscronError):
    """No server URL configured and no running embedded stack to attach to."""

    code = "stack_not_found"
