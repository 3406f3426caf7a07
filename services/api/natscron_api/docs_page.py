"""`/docs` without the internet: Swagger UI from the package, not from a CDN, so the API's
docs work on an air-gapped cluster.

`swagger_ui/` holds swagger-ui-dist `SWAGGER_UI_VERSION` as npm publishes it (the bundle,
its CSS and favicon, unchanged), with its licence (Apache-2.0), NOTICE and the licences of
what the bundle includes. The page is FastAPI's own, pointed at those files; the online
validator (a call to swagger.io) is turned off.
"""

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).parent / "swagger_ui"
DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"


def serve_docs(app: FastAPI, openapi_url: str) -> None:
    """`/docs` and its assets under `/docs/assets/`, open like `/openapi.json`."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
    version = f"?v={SWAGGER_UI_VERSION}"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - docs",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js{version}",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css{version}",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
