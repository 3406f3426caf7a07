"""The web console's files at `/ui`: a small single-page application (ES modules, Preact
and htm vendored, no build step) that calls this API with the token the tab signed in with.
The files are open, as `/docs` is; every data call is authenticated like any other
(docs/console.md says why it is built this way).

A strict Content-Security-Policy keeps any script but these files out of the page, which
holds a bearer token: the one inline script, the import map, is allowed by its hash.
"""

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

CONSOLE_DIR = Path(__file__).parent / "console"
PATH = "/ui"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def content_security_policy(index_html: str) -> str:
    """Scripts from this origin, and the page's import map by its hash; no inline style."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in IMPORT_MAP.findall(index_html)
    )
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src 'self' {hashes}".rstrip(),
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def serve_console(app: FastAPI) -> None:
    policy = content_security_policy((CONSOLE_DIR / "index.html").read_text())
    headers = {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }

    @app.get(PATH, include_in_schema=False)
    async def console_root() -> RedirectResponse:
        return RedirectResponse(f"{PATH}/")

    @app.middleware("http")
    async def console_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if request.url.path.startswith(f"{PATH}/"):
            response.headers.update(headers)
        return response

    app.mount(PATH, StaticFiles(directory=CONSOLE_DIR, html=True), name="console")
