"""`natscron provision`: create or update natscron's streams, buckets and consumers."""

from collections.abc import Callable

from natscron.cli.connect import nats_client
from natscron.provisioning.provision import Action, Change, provision
from natscron.stack import resolve_nats_url
from natscron_shared.nats.jetstream_layout import jetstream_layout
from natscron_shared.runtime.settings import Settings


async def provision_from_settings(settings: Settings, say: Callable[[str], None]) -> list[Change]:
    """Provision the NATS server the settings name, printing one line per object: the
    runner pools are those of NATSCRON_RUNNER_POOLS."""
    layout = jetstream_layout(
        settings.jetstream_replicas,
        settings.lease_ttl_seconds,
        settings.claim_ttl_seconds,
        settings.runner_pools,
        settings.runner_ack_wait_seconds,
    )
    async with nats_client(resolve_nats_url(settings), settings) as client:
        changes = await provision(client.jetstream(), layout, lambda change: say(str(change)))
    changed = sum(change.action is not Action.UNCHANGED for change in changes)
    say(f"{changed} of {len(changes)} changed")
    return changes
