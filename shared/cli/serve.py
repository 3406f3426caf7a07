"""`natscron ticker|runner|recorder`: one service alone, as in a container."""

from shared.endpoints import resolve_endpoints
from shared.lifecycle import Service, run_until_signalled
from shared.settings import Settings


def build_service(name: str, settings: Settings) -> Service:
    endpoints = resolve_endpoints(settings)
    if name == "ticker":
        from services.ticker import TickerService

        return TickerService(settings, endpoints)
    if name == "runner":
        from services.runner import RunnerService

        return RunnerService(settings, endpoints)
    from services.recorder import RecorderService

    return RecorderService(settings, endpoints)


async def serve(name: str, settings: Settings) -> None:
    await run_until_signalled(
        [build_service(name, settings)], settings.http_host, settings.http_port
    )
