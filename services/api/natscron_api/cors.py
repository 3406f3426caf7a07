"""CORS, so the seeds' browser frontends can call the API from their own origins
(`NATSCRON_API_CORS_ORIGINS`; none by default, and then no CORS header is ever sent).

Starlette's `CORSMiddleware` answers preflights and adds the headers to every answer, errors
included. A preflight from an origin not allowed gets our error shape (403
`origin_not_allowed`) and no `Access-Control-*` header at all, where Starlette would still
list the allowed methods and headers; an ordinary request from it gets none either (nothing
is exposed and credentials are not used, so Starlette adds no header for it).
"""

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from natscron_api.views import ErrorResponse

ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type")
PREFLIGHT_MAX_AGE_SECONDS = 600


class _Cors(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        origin = request_headers["origin"]
        if not self.is_allowed_origin(origin):
            refusal = ErrorResponse.of(
                "origin_not_allowed",
                f"pages of {origin} may not call this API (NATSCRON_API_CORS_ORIGINS)",
            )
            return JSONResponse(refusal.model_dump(), status_code=403)
        return super().preflight_response(request_headers)


def allow_origins(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer preflights and add CORS headers for `origins` (`*`: any); none: nothing."""
    if not origins:
        return
    app.add_middleware(
        _Cors,
        allow_origins=list(origins),
        allow_methods=list(ALLOWED_METHODS),
        allow_headers=list(ALLOWED_HEADERS),
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
    )
