"""The one place natscron reaches into nats-py's private internals, checked against the
version it was tested with.

Why at all: the ticker's `BulkPublisher` encodes a burst's protocol frames ahead of its
slot and writes them a few hundred at a time. nats-py's public paths validate, encode and
queue each message alone at its sending (`Client.publish`, and the public
`JetStreamContext.publish_async` on top of it): on `publish_async` the ticker's slots were
later than on `BulkPublisher` at every rate and in the burst, in the same runs, and missed
every lateness target (bench/RESULTS.md, "publish_async against BulkPublisher").
Writing already-encoded frames needs the connection's transport and outbound buffer, which
nats-py does not expose: `write_frames` is the only code of ours that touches them, and
tests/shared/test_client_internals.py checks each attribute it uses on a connected client,
and that no other module touches nats-py's private attributes.

It lives here rather than in the ticker, its one user, because the nats-py pin it checks
is natscron-shared's.

The check: importing this module raises `UnsupportedNatsPyError` unless the installed
nats-py is exactly `TESTED_NATS_PY`. Exactly, not the same minor: private attributes
carry no compatibility promise, and a patch release has changed them before (2.1.2 changed
what `_flush_queue` holds and what `_flush_pending` returns). natscron pins nats-py to
that version (shared/pyproject.toml, uv.lock), so only an install outside the lock meets
the refusal; moving the pin means running that test file and moving `TESTED_NATS_PY`.
"""

from importlib.metadata import version

import nats.errors
from nats.aio.client import Client

from natscron_shared.contract.errors import NatscronError

TESTED_NATS_PY = "2.16.0"


class UnsupportedNatsPyError(NatscronError):
    code = "unsupported_dependency"


def check_nats_py(installed: str) -> None:
    """Refuse any nats-py but the one whose internals `write_frames` was tested on."""
    if installed != TESTED_NATS_PY:
        raise UnsupportedNatsPyError(
            f"nats-py {installed} is installed, but natscron writes to nats-py's connection"
            f" internals as tested with nats-py {TESTED_NATS_PY} only: install natscron with"
            f" its pinned dependencies (nats-py=={TESTED_NATS_PY})"
        )


check_nats_py(version("nats-py"))


async def write_frames(client: Client, frames: bytes) -> None:
    """Write already-encoded protocol frames (`PUB`, `HPUB`) on the connection, as
    `Client.publish` queues one message: straight to the transport when nothing is
    queued before them, so a burst due now is on the wire before anything else runs;
    else behind what is queued, by the connection's flusher (while reconnecting they wait
    in its buffer, within the `pending_size` limit). Raises what `Client.publish` raises
    for a closed, draining or (reconnecting and) full connection."""
    if client.is_closed:
        raise nats.errors.ConnectionClosedError
    if client.is_draining_pubs:
        raise nats.errors.ConnectionDrainingError
    transport = client._transport
    if client.is_connected and transport is not None and not client._pending:
        transport.write(frames)
        return
    if not client.is_connected and (
        client._max_pending_size <= 0
        or len(frames) + client._pending_data_size > client._max_pending_size
    ):
        raise nats.errors.OutboundBufferLimitError
    await client._send_command(frames)
    if client._flush_queue is not None and client._flush_queue.empty():
        await client._flush_pending()
