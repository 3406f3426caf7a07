import asyncio

import httpx
from prometheus_client import CollectorRegistry, Counter

from natscron_shared.runtime.health_server import HealthServer


async def test_serves_metrics_health_and_readiness() -> None:
    registry = CollectorRegistry()
    Counter("natscron_test_things", "things", registry=registry).inc(3)
    problems: list[str] = []
    reasons = ["still loading"]
    server = HealthServer(
        registry, lambda: problems, lambda: problems + reasons, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            assert "natscron_test_things_total 3.0" in metrics.text
            assert (await http.get("/healthz")).status_code == 200
            not_ready = await http.get("/readyz")
            assert (not_ready.status_code, not_ready.text) == (503, "still loading\n")
            reasons.clear()
            assert (await http.get("/readyz?verbose=1")).status_code == 200
            problems.append("ticker loop 'watch' died: KeyError: 'x'")
            unhealthy = await http.get("/healthz")
            assert unhealthy.status_code == 503 and "loop 'watch' died" in unhealthy.text
            assert (await http.get("/readyz")).status_code == 503
            assert (await http.get("/nope")).status_code == 404
            assert (await http.post("/metrics")).status_code == 405
    finally:
        await server.stop()


async def test_garbage_request_does_not_break_the_server() -> None:
    server = HealthServer(CollectorRegistry(), list, list, host="127.0.0.1", port=0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"\x00\xff garbage\r\n\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await server.stop()
