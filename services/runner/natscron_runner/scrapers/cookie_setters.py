"""Who set each cookie: requests whose responses carried `Set-Cookie`, and scripts that
wrote `document.cookie`.

An init script, run in every frame before the page's own scripts, wraps the
`document.cookie` setter so each write reports itself and the JavaScript stack it came
from; the first script URL on that stack is the setter (an inline script's is the
document's own URL). Responses are read off the browser context's `response` events.
"""

import asyncio
import contextlib
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, Response
from playwright.async_api import Error as PlaywrightError

log = logging.getLogger(__name__)

BINDING = "__natscronCookieWrite"
HOOK_SCRIPT = f"""
(() => {{
  const cookie = Object.getOwnPropertyDescriptor(Document.prototype, "cookie");
  if (!cookie || !cookie.set) return;
  const report = window["{BINDING}"];
  Object.defineProperty(Document.prototype, "cookie", {{
    configurable: true,
    enumerable: cookie.enumerable,
    get() {{ return cookie.get.call(this); }},
    set(value) {{
      try {{ report(String(value), String(new Error().stack || "")); }} catch (e) {{}}
      cookie.set.call(this, value);
    }},
  }});
}})();
"""
SCRIPT_URL = re.compile(r"(https?://[^\s()]+?):\d+:\d+")
HEADERS_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, order=True)
class Setter:
    kind: str
    """`response` (a Set-Cookie header) or `script` (a document.cookie write)."""
    url: str

    def as_data(self) -> dict[str, str]:
        return {"type": self.kind, "url": self.url}


def _name_and_domain(cookie_text: str, url: str) -> tuple[str, str]:
    """The cookie's name, and the domain it is for: its `Domain` attribute, else the host."""
    first, *attributes = cookie_text.split(";")
    name = first.split("=", 1)[0].strip() if "=" in first else ""
    domain = urlsplit(url).hostname or ""
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        if key.strip().lower() == "domain" and value.strip():
            domain = value.strip()
    return name, domain.lstrip(".").lower()


def script_of(stack: str, document_url: str) -> str:
    """The first script URL on a JavaScript stack; the document's for an inline script."""
    match = SCRIPT_URL.search(stack)
    return match.group(1) if match else document_url


class CookieSetters:
    """Collects setters while pages load; `of(name, domain)` lists those of one cookie."""

    def __init__(self) -> None:
        self._setters: dict[tuple[str, str], set[Setter]] = defaultdict(set)
        self._reading: set[asyncio.Task[None]] = set()

    async def install(self, context: BrowserContext) -> None:
        await context.expose_binding(BINDING, self._on_write)
        await context.add_init_script(HOOK_SCRIPT)
        context.on("response", self._on_response)

    def _on_write(self, source: dict[str, Any], cookie_text: str, stack: str) -> None:
        frame_url = str(getattr(source.get("frame"), "url", "") or "")
        name, domain = _name_and_domain(cookie_text, frame_url)
        if name:
            self._setters[(name, domain)].add(Setter("script", script_of(stack, frame_url)))

    def _on_response(self, response: Response) -> None:
        task = asyncio.create_task(self._read(response))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _read(self, response: Response) -> None:
        try:
            async with asyncio.timeout(HEADERS_TIMEOUT_SECONDS):
                headers = await response.header_values("set-cookie")
        except (PlaywrightError, TimeoutError):
            log.debug("no headers for %s", response.url)
            return
        for header in headers:
            for line in header.split("\n"):
                name, domain = _name_and_domain(line, response.url)
                if name:
                    self._setters[(name, domain)].add(Setter("response", response.url))

    async def caught_up(self) -> None:
        """Wait for the responses seen so far to be read."""
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._reading, return_exceptions=True)

    def of(self, name: str, domain: str) -> list[Setter]:
        return sorted(self._setters.get((name, domain.lstrip(".").lower()), ()))

    async def close(self) -> None:
        for task in self._reading:
            task.cancel()
        await asyncio.gather(*self._reading, return_exceptions=True)
