"""docs/asyncapi.yaml is generated from the code; this fails when it is stale."""

from pathlib import Path

import yaml

from natscron.asyncapi import asyncapi_yaml
from natscron_shared.contract.channels import CHANNELS

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_matches_the_code() -> None:
    assert DOCUMENT.read_text() == asyncapi_yaml(), (
        "docs/asyncapi.yaml is stale: run `natscron asyncapi > docs/asyncapi.yaml`"
    )


def test_every_channel_and_payload_is_in_the_document() -> None:
    document = yaml.safe_load(asyncapi_yaml())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert {channel.subject for channel in CHANNELS} <= addresses
    schemas = set(document["components"]["schemas"])
    payloads = {c.payload.__name__ for c in CHANNELS} | {
        reply.__name__ for c in CHANNELS for reply in c.reply
    }
    assert payloads <= schemas
