"""Services check, never create: what a process needs must already be provisioned."""

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from natscron_shared.contract.errors import NatscronError
from natscron_shared.nats.connection import TRANSIENT_NATS_ERRORS
from natscron_shared.nats.jetstream_layout import kv_stream_name


class NotProvisionedError(NatscronError):
    code = "not_provisioned"


@dataclass(frozen=True)
class Needs:
    """The streams, KV buckets and durable consumers (stream, name) one process uses."""

    streams: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    consumers: tuple[tuple[str, str], ...] = ()


async def _missing(js: JetStreamContext, needs: Needs) -> list[str]:
    missing: list[str] = []
    for kind, name, stream in (
        *(("stream", s, s) for s in needs.streams),
        *(("bucket", b, kv_stream_name(b)) for b in needs.buckets),
    ):
        try:
            await js.stream_info(stream)
        except NotFoundError:
            missing.append(f"{kind} {name}")
    for stream, consumer in needs.consumers:
        try:
            await js.consumer_info(stream, consumer)
        except NotFoundError:
            missing.append(f"consumer {stream}/{consumer}")
    return missing


async def consumer_still_exists(js: JetStreamContext, stream: str, durable: str) -> None:
    """After a failed fetch: a deleted consumer answers fetches as an unavailable service
    would, so ask for it. Raises `NotProvisionedError` if it is gone (retrying cannot
    help); a transient error here leaves the verdict to the next failed fetch."""
    try:
        await js.consumer_info(stream, durable)
    except NotFoundError as exc:
        raise NotProvisionedError(
            f"consumer {stream}/{durable} no longer exists; run `natscron provision`"
        ) from exc
    except TRANSIENT_NATS_ERRORS:
        return


async def require_provisioned(js: JetStreamContext, needs: Needs, who: str, how: str = "") -> None:
    """Raise `NotProvisionedError` naming everything missing, and the command that fixes it
    (`how`: what it must be told, if anything)."""
    missing = await _missing(js, needs)
    if missing:
        raise NotProvisionedError(
            f"JetStream lacks what the {who} needs: {', '.join(missing)}."
            f" Run `natscron provision`{how} against this NATS server first"
            " (compose and Kubernetes run it as a one-shot step before the services)"
        )
