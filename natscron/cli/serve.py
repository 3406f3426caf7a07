"""`natscron ticker|runner|recorder|api`: one service alone, as in a container."""

from natscron.stack import resolve_endpoints
from natscron_shared.runtime.lifecycle import Service, run_until_signalled
from natscron_shared.runtime.settings import Settings


def build_service(name: str, settings: Settings) -> Service:
    endpoints = resolve_endpoints(settings)
    if name == "ticker":
        from natscron_ticker import TickerService

        return TickerService(settings, endpoints)
    if name == "runner":
        from natscron_runner import RunnerService

        return RunnerService(settings, endpoints)
    if name == "api":
        from natscron_api import ApiService

        return ApiService(settings, endpoints)
    from natscron_recorder import RecorderService

    return RecorderService(settings, endpoints)


async def serve(name: str, settings: Settings) -> None:
    await run_until_signalled(
        [build_service(name, settings)], settings.http_host, settings.http_port
    )
