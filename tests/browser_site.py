"""A local website for the browser scrapers' tests and benchmark (asyncio streams, no web
framework): pages whose items only JavaScript renders, a "load more" button, a search form,
failing pages, a site with a consent banner whose cookies come only after "accept", and a
robots.txt that disallows `/private`.

Cookies ignore ports, so first and third party are two host names of one server:
`127.0.0.1` (the site) and `localhost` (the "tracker"). Every request is logged with the
host it named.
"""

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

PAGE_ITEMS = 5
JS_PAGES = 2
LOAD_MORE_STEP = 3
LOAD_MORE_TOTAL = 9
FIRST_PARTY_HOST = "127.0.0.1"
THIRD_PARTY_HOST = "localhost"
ROBOTS_TXT = "User-agent: *\nDisallow: /private\n"

Headers = list[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "text/html; charset=utf-8"
    headers: Headers = field(default_factory=list)


def _html(body: str, head: str = "") -> str:
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def item_key(page: int, index: int) -> str:
    return f"p{page}-{index}"


def _items(page: int) -> list[dict[str, str]]:
    return [
        {"id": item_key(page, index), "title": f"Item {index} of page {page}"}
        for index in range(PAGE_ITEMS)
    ]


RENDER_ITEMS = """
const list = document.getElementById("list");
function add(items) {
  for (const item of items) {
    const li = document.createElement("li");
    li.className = "item";
    li.dataset.id = item.id;
    li.innerHTML = `<span class="title">${item.title}</span>`;
    list.appendChild(li);
  }
}
"""


def js_listing_page(page: int) -> str:
    """Items (and the link to the next page) appear only once a script fetched them."""
    next_link = (
        f'const a = document.createElement("a"); a.className = "next";'
        f' a.href = "/js/{page + 1}"; a.textContent = "next"; document.body.appendChild(a);'
        if page < JS_PAGES
        else ""
    )
    script = f"""{RENDER_ITEMS}
fetch("/api/items?page={page}").then(r => r.json()).then(items => {{ add(items); {next_link} }});
"""
    return _html(f'<h1>Page {page}</h1><ul id="list"></ul><script>{script}</script>')


def load_more_page() -> str:
    script = f"""{RENDER_ITEMS}
let offset = 0;
const more = document.getElementById("more");
function load() {{
  fetch(`/api/more?offset=${{offset}}`).then(r => r.json()).then(items => {{
    add(items); offset += items.length;
    if (offset >= {LOAD_MORE_TOTAL}) more.remove();
  }});
}}
more.addEventListener("click", load);
load();
"""
    return _html(
        f'<ul id="list"></ul><button id="more">Load more</button><script>{script}</script>'
    )


def search_page() -> str:
    script = f"""{RENDER_ITEMS}
document.getElementById("go").addEventListener("click", () => {{
  const q = document.getElementById("q").value;
  add([{{id: "found-" + q, title: "Found " + q}}]);
}});
"""
    return _html(
        f'<input id="q"><button id="go">Search</button><ul id="list"></ul><script>{script}</script>'
    )


CONSENT_SCRIPT = """
document.getElementById("accept").addEventListener("click", () => {
  document.cookie = "consent=yes; path=/; max-age=31536000; SameSite=Lax";
  document.getElementById("banner").remove();
  const tracker = document.createElement("script");
  tracker.src = "%s/tracker.js";
  document.head.appendChild(tracker);
});
"""
TRACKER_SCRIPT = 'document.cookie = "_ga=GA1.1; path=/; max-age=63072000";'


class BrowserTestSite:
    """`start()`, then `url` (first party) and `third_party_url`; `requests` logs
    (host, path) of every request."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.requests: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{FIRST_PARTY_HOST}:{self.port}"

    @property
    def third_party_url(self) -> str:
        return f"http://{THIRD_PARTY_HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, FIRST_PARTY_HOST, 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def paths(self, host: str = FIRST_PARTY_HOST) -> list[str]:
        return [path for named, path in self.requests if named == host]

    def answer(self, target: str) -> Answer:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        path = parts.path
        if path == "/robots.txt":
            return Answer(200, ROBOTS_TXT, "text/plain")
        if path.startswith("/js/") and path[4:].isdigit() and 1 <= int(path[4:]) <= JS_PAGES:
            return Answer(200, js_listing_page(int(path[4:])))
        if path == "/api/items":
            page = int(query.get("page", ["1"])[0])
            return Answer(200, json.dumps(_items(page)), "application/json")
        if path == "/load-more":
            return Answer(200, load_more_page())
        if path == "/api/more":
            offset = int(query.get("offset", ["0"])[0])
            end = min(offset + LOAD_MORE_STEP, LOAD_MORE_TOTAL)
            items = [{"id": f"more-{n}", "title": f"More {n}"} for n in range(offset, end)]
            return Answer(200, json.dumps(items), "application/json")
        if path == "/search":
            return Answer(200, search_page())
        if path == "/broken":
            return Answer(500, _html("<h1 style='color:red'>Something broke</h1>" * 20))
        return self._cookie_pages(path)

    def _cookie_pages(self, path: str) -> Answer:
        if path == "/consent":
            body = (
                '<div id="banner">We use cookies <button id="accept">Accept</button></div>'
                '<a href="/consent/about">about</a> <a href="#top">top</a>'
                f' <a href="{self.third_party_url}/elsewhere">elsewhere</a>'
                f"<script>{CONSENT_SCRIPT % self.third_party_url}</script>"
            )
            session = "session=s1; Path=/; HttpOnly; SameSite=Lax"
            return Answer(200, _html(body), headers=[("Set-Cookie", session)])
        if path == "/consent/about":
            cookie = "visited_about=1; Path=/consent; Max-Age=3600"
            body = '<a href="/consent/deep">deeper</a> <a href="/consent">home</a>'
            return Answer(200, _html(body), headers=[("Set-Cookie", cookie)])
        if path == "/consent/deep":
            return Answer(200, _html("deep"), headers=[("Set-Cookie", "deep=1; Path=/")])
        if path == "/consent/custom":
            return Answer(200, _html("custom"), headers=[("Set-Cookie", "custom=1; Path=/")])
        if path == "/tracker.js":
            cookie = "tracker=t1; Path=/; Max-Age=86400; SameSite=None; Secure"
            return Answer(200, TRACKER_SCRIPT, "text/javascript", headers=[("Set-Cookie", cookie)])
        return Answer(404, _html("<h1>not found</h1>"))

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.split("\r\n")
            _, target, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            host = headers.get("host", "").rsplit(":", 1)[0]
            self.requests.append((host, urlsplit(target).path))
            answer = self.answer(target)
            body = answer.body.encode()
            lines = [
                f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}",
                f"Content-Type: {answer.content_type}",
                f"Content-Length: {len(body)}",
                "Cache-Control: no-store",
                "Connection: close",
                *(f"{name}: {value}" for name, value in answer.headers),
            ]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
