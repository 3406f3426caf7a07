"""The three services started in-process against the test's real servers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from natscron_recorder import RecorderService
from natscron_runner import RunnerService
from natscron_shared.nats.connection import JetStreamPublisher
from natscron_shared.runtime.endpoints import Endpoints
from natscron_shared.runtime.lifecycle import Service
from natscron_shared.runtime.settings import Settings
from natscron_ticker import TickerService


@asynccontextmanager
async def running_stack(settings: Settings, endpoints: Endpoints) -> AsyncIterator[list[Service]]:
    services: list[Service] = [
        RecorderService(settings, endpoints),
        RunnerService(settings, endpoints),
        TickerService(settings, endpoints),
    ]
    try:
        for service in services:
            await service.start()
        yield services
    finally:
        for service in reversed(services):
            await service.stop()


async def publish(
    js: JetStreamContext, subject: str, model: BaseModel, msg_id: str | None = None
) -> None:
    """Publish as a service would, with the msg id as `Nats-Msg-Id`, without its metrics."""
    await JetStreamPublisher(js, CollectorRegistry()).publish(subject, model, msg_id)
