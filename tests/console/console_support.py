"""The console's tests: `natscron up --demo` started as `make demo` starts it (with bearer
tokens, so that scopes matter), and Debian's Chromium driven by Playwright against `/ui`.

Playwright's own browser download is never used: the browser is the system's `chromium`
(Debian's package; `make test-deps` installs it). axe-core (vendored in `axe/`) is injected
into each page checked. Screenshots go to `test-artifacts/console/`, which git ignores.
"""

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from natscron.embedded import free_port
from natscron.stack import ENDPOINTS_FILE
from natscron_runner.scrapers.chromium import CHROMIUM_ARGS
from natscron_shared.contract import names
from tests.cli.test_cli import NATSCRON, cli_env
from tests.cli.test_up import children_of, still_running
from tests.waiting import eventually

AXE = Path(__file__).parent / "axe" / "axe.min.js"
READ_TOKEN = "console-read-token-0123456789"
WRITE_TOKEN = "console-write-token-0123456789"
GRAFANA_URL = "http://grafana.example:3000"
UP_WITHIN = 90.0
STOP_WITHIN = 30.0
SERIOUS = ("serious", "critical")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
TOKEN_KEY = "natscron.token"


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (`make test-deps` installs it)")
    return found


@dataclass
class DemoStack:
    """`natscron up --demo`: its API's URL, and its NATS server's."""

    api_url: str
    nats_url: str
    process: asyncio.subprocess.Process
    output: Path
    servers: dict[int, str] = field(default_factory=dict)

    def http(self, token: str | None = WRITE_TOKEN) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=30)

    async def spec_in_kv(self, scheduled_job_id: str) -> dict[str, Any] | None:
        """The spec KV holds now (what the ticker follows), or None."""
        client = Client()
        await client.connect(self.nats_url)
        try:
            bucket = await client.jetstream().key_value(names.KV_SCHEDULED_JOBS)
            try:
                entry = await bucket.get(scheduled_job_id)
            except Exception:  # nats-py: KeyNotFoundError or KeyDeletedError
                return None
            spec: dict[str, Any] = json.loads(entry.value or b"{}")
            return spec
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def demo_stack(cwd: Path, tokens: bool = True) -> AsyncIterator[DemoStack]:
    """`natscron up --demo` in `cwd`, with read and write tokens (or open, as `make demo`
    runs it, without `tokens`) and a Grafana URL; stopped (its embedded servers too) at the
    end."""
    output = cwd / "up.out"
    env = cli_env(NATSCRON_API_PORT=str(free_port()), NATSCRON_GRAFANA_URL=GRAFANA_URL)
    if tokens:
        env["NATSCRON_API_TOKENS"] = f"{READ_TOKEN}:read,{WRITE_TOKEN}:write"
    with output.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *NATSCRON, "up", "--demo", cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    stack = DemoStack("", "", process, output)
    try:

        async def printed() -> str:
            return output.read_text()

        text = await eventually(
            printed, lambda text: "Console on" in text, within=UP_WITHIN, what="the console's URL"
        )
        console = re.search(r"Console on (http://\S+)/ui/", text)
        assert console is not None, text
        stack.api_url = console.group(1)
        endpoints = json.loads((cwd / ".natscron" / ENDPOINTS_FILE).read_text())
        stack.nats_url = endpoints["nats_url"]
        stack.servers = children_of(process.pid)
        yield stack
    finally:
        await _stop(stack)


async def _stop(stack: DemoStack) -> None:
    process = stack.process
    try:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), STOP_WITHIN)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for pid in still_running(stack.servers):
            os.kill(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def chromium_browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Tab:
    """A browser tab signed in with a token (or none), and the errors its scripts threw."""

    page: Page
    context: BrowserContext
    errors: list[str]

    async def close(self) -> None:
        await self.context.close()


async def open_tab(
    browser: Browser, token: str | None = WRITE_TOKEN, viewport: dict[str, int] = DESKTOP
) -> Tab:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    if token is not None:
        await context.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {token!r})")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return Tab(page, context, errors)


async def serious_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    await page.evaluate(AXE.read_text())
    violations: list[dict[str, Any]] = await page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
    )
    return [violation for violation in violations if violation["impact"] in SERIOUS]


async def fits(page: Page) -> bool:
    """Nothing makes the page scroll sideways (tables scroll in their own box)."""
    width: bool = await page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    return width
