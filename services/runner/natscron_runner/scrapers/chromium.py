"""One Chromium per runner process, launched on first use; every job gets a fresh context.

Chromium is the system's (Debian's `chromium`, or `NATSCRON_CHROMIUM_PATH`): Playwright
only drives it, and its own browser download is never used. Job contexts are off the record
and share nothing (no cookies, cache or storage), so no state leaks from one job to the next.

The browser runs on a throwaway profile whose preferences allow third-party cookies, as
Chrome does by default: this build blocks them in off-the-record contexts, and a cookie
scan that cannot see them misses what a visitor's browser gets. Job contexts inherit it.
"""

import asyncio
import contextlib
import json
import logging
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright, async_playwright

log = logging.getLogger(__name__)

CHROMIUM_ARGS = (
    # The container is the sandbox: Chromium's own needs user namespaces, which pods and
    # root (as in CI) do not get.
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LAUNCH_TIMEOUT_MS = 30_000
PROFILE_PREFERENCES = {"profile": {"cookie_controls_mode": 0, "block_third_party_cookies": False}}
"""`cookie_controls_mode` 0: never block third-party cookies (not even off the record)."""


def new_profile() -> tempfile.TemporaryDirectory[str]:
    profile = tempfile.TemporaryDirectory(prefix="natscron-chromium-")
    preferences = Path(profile.name) / "Default" / "Preferences"
    preferences.parent.mkdir()
    preferences.write_text(json.dumps(PROFILE_PREFERENCES))
    return profile


class Chromium:
    """The runner's browser: `context()` gives a job its own, closed when the job ends
    (completed, failed, cancelled or timed out)."""

    def __init__(self, executable: str) -> None:
        self._executable = executable
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._profile_context: BrowserContext | None = None

    async def _running(self) -> Browser:
        async with self._lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            if self._browser is not None:
                log.warning("Chromium went away; launching it again")
                await self._close_browser()
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            self._profile = new_profile()
            profile_context = await self._playwright.chromium.launch_persistent_context(
                self._profile.name,
                executable_path=self._executable,
                args=list(CHROMIUM_ARGS),
                timeout=LAUNCH_TIMEOUT_MS,
            )
            browser = profile_context.browser
            assert browser is not None, "a persistent context has its browser"
            self._browser = browser
            self._profile_context = profile_context
            log.info("launched Chromium %s (%s)", browser.version, self._executable)
            return browser

    @contextlib.asynccontextmanager
    async def context(self, **options: Any) -> AsyncIterator[BrowserContext]:
        browser = await self._running()
        context = await browser.new_context(**options)
        try:
            yield context
        finally:
            with contextlib.suppress(Exception):
                await context.close()

    def job_contexts(self) -> int:
        """Job contexts open in the browser now (a cancelled or timed-out job leaves none)."""
        if self._browser is None or not self._browser.is_connected():
            return 0
        return sum(context is not self._profile_context for context in self._browser.contexts)

    async def _close_browser(self) -> None:
        if self._browser is not None:
            with contextlib.suppress(Exception):
                await self._browser.close()
            self._browser = None
            self._profile_context = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    async def close(self) -> None:
        async with self._lock:
            await self._close_browser()
            if self._playwright is not None:
                with contextlib.suppress(Exception):
                    await self._playwright.stop()
                self._playwright = None
