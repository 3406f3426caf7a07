"""The AsyncAPI document of natscron's message contract, rendered by FastStream from
`natscron_shared.contract.channels` (`natscron asyncapi > docs/asyncapi.yaml`)."""

from typing import Any

import yaml
from faststream.nats import NatsBroker
from faststream.specification import AsyncAPI

from natscron_shared.contract.channels import CHANNELS, Channel

TITLE = "natscron"
VERSION = "1"
REPLY_SUBJECT = "_INBOX.{request}"
"""Where NATS request/reply sends an answer: the requester's own inbox subject."""
DESCRIPTION = (
    "The messages between natscron's ticker, runners and recorder over NATS JetStream,"
    " and the requests the API and CLI send them (trigger, cancel, backfill, status)."
    " Subjects with {placeholders} are one subject per job, scheduled job or runner pool."
)


def _document(broker: NatsBroker, channel: Channel) -> None:
    """Register `channel` on a broker that is never connected, only described."""
    title = f"{channel.subject} ({channel.sender} -> {channel.receiver})"
    if channel.reply:

        async def answer(request: Any) -> Any: ...

        answer.__annotations__ = {"request": channel.payload, "return": channel.reply[0]}
        broker.subscriber(channel.subject, title=title, description=channel.description)(answer)
        for reply in channel.reply:
            broker.publisher(
                REPLY_SUBJECT,
                schema=reply,
                title=f"{channel.subject} reply: {reply.__name__}"
                f" ({channel.receiver} -> requester)",
                description=f"One possible answer to a request on {channel.subject}.",
            )
        return
    broker.publisher(
        channel.subject, schema=channel.payload, title=title, description=channel.description
    )


def asyncapi_yaml() -> str:
    broker = NatsBroker()
    for channel in CHANNELS:
        _document(broker, channel)
    spec = AsyncAPI(
        broker, title=TITLE, version=VERSION, description=DESCRIPTION, schema_version="3.0.0"
    )
    # FastStream orders channels by hash; sorted keys make the committed file stable.
    document: str = yaml.safe_dump(spec.to_specification().to_jsonable(), sort_keys=True)
    return document
