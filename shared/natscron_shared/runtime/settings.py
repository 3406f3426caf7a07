"""Configuration from `NATSCRON_*` environment variables."""

import re
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from natscron_shared.contract.pools import DEFAULT_POOL, PoolName
from natscron_shared.nats.seed_servers import any_credentials, seed_servers

ORIGIN = re.compile(r"^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")
"""What a browser sends in `Origin`: a scheme, a host (or an IPv6 literal) and a port."""


def cors_origins(text: str) -> list[str]:
    """`https://a.example,http://localhost:3000` -> the origins; `*` alone allows any."""
    origins = [origin.strip() for origin in text.split(",") if origin.strip()]
    if origins == ["*"]:
        return origins
    bad = [origin for origin in origins if not ORIGIN.match(origin)]
    if bad or not origins:
        raise ValueError(
            f"NATSCRON_API_CORS_ORIGINS: {bad[0] if bad else text!r} is not an origin; write"
            " scheme://host[:port] without a path (https://app.example.com), comma-separated,"
            " or * alone"
        )
    return origins


class Settings(BaseSettings):
    """Unset URLs mean the embedded default (see `shared.embedded`)."""

    model_config = SettingsConfigDict(
        env_prefix="NATSCRON_", extra="ignore", hide_input_in_errors=True
    )
    """Inputs stay out of errors: a URL may carry a password."""

    nats_url: str | None = Field(
        default=None,
        description="the NATS server, or several seed servers of one cluster separated by"
        " commas (nats://a:4222,nats://b:4222): a process starts while one of them is down",
    )
    # How to authenticate to NATSCRON_NATS_URL: one of user + password, token, nkey seed
    # file, or JWT creds file; and TLS files. `check_nats_connection` rejects mixtures.
    nats_user: str | None = Field(default=None, description="NATS user (with nats_password)")
    nats_password: SecretStr | None = Field(default=None, description="password of nats_user")
    nats_token: SecretStr | None = Field(default=None, description="NATS authentication token")
    nats_nkey_seed_file: FilePath | None = Field(
        default=None, description="file holding an NKey seed (SU...) to sign the server's nonce"
    )
    nats_creds_file: FilePath | None = Field(
        default=None, description="a JWT credentials file (user JWT and NKey seed)"
    )
    nats_tls_ca: FilePath | None = Field(
        default=None,
        description="CA certificates (PEM) the NATS server's certificate must chain to",
    )
    nats_tls_cert: FilePath | None = Field(
        default=None, description="client certificate (PEM), with nats_tls_key"
    )
    nats_tls_key: FilePath | None = Field(
        default=None, description="private key (PEM) of nats_tls_cert"
    )
    nats_inbox_prefix: str | None = Field(
        default=None,
        pattern=r"^[^\s*>.]+(\.[^\s*>.]+)*$",
        description="subjects this process receives its replies under; default"
        " `_INBOX.<nats_user>` with a user (so NATS can keep each user to its own replies),"
        " else `_INBOX`",
    )
    mongo_url: str | None = None
    data_dir: Path = Path(".natscron")
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=0, ge=0, le=65535, description="0 picks a free port")
    lease_ttl_seconds: float = Field(
        default=10.0, ge=1.0, description="TTL of the ticker lease bucket, set by `provision`"
    )
    claim_ttl_seconds: float = Field(
        default=10.0,
        ge=1.0,
        description="TTL of KV `running`, set by `provision`: a dead runner's claims (the"
        " running jobs, the one run of a `forbid`/`replace` schedule) lapse after it",
    )
    runner_ack_wait_seconds: float = Field(
        default=10.0,
        ge=3.0,
        description="ack wait of the runners' JOBS consumers, set by `provision`: a dead"
        " runner's jobs run elsewhere after it; a live one renews it with a progress ack"
        " every third of it, so it may be short",
    )
    jetstream_replicas: int = Field(
        default=1, ge=1, le=5, description="copies of each stream and bucket, set by `provision`"
    )
    runner_concurrency: int = Field(default=4, ge=1)
    # Polite fetching (the runner's scrapers; a schedule's params may ask for more).
    user_agent: str = Field(
        default="natscron/0.1",
        min_length=1,
        max_length=512,
        description="the User-Agent of scrapers' requests, unless a schedule names its own;"
        " robots.txt groups are matched against it",
    )
    host_max_in_flight: int = Field(
        default=2,
        ge=1,
        le=64,
        description="requests in flight to one host (name and port) from all runners together",
    )
    host_max_requests_per_second: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="requests started per second to one host from all runners together;"
        " unset: no limit but a schedule's own (the stricter of the two applies)",
    )
    host_max_backoff_seconds: float = Field(
        default=300.0,
        ge=1,
        le=3600,
        description="the longest a 429 or 503 (its Retry-After, or the doubling backoff)"
        " holds every runner off a host",
    )
    robots_cache_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=7 * 24 * 3600,
        description="how long a runner keeps a host's robots.txt before fetching it again",
    )
    runner_id: str | None = None
    runner_pool: PoolName = Field(
        default=DEFAULT_POOL,
        description="the runner pool a runner takes jobs from and advertises its scrapers in",
    )
    runner_pools: Annotated[tuple[PoolName, ...], NoDecode] = Field(
        default=(DEFAULT_POOL,),
        description="the runner pools `provision` (and `up`) create consumers for, separated"
        " by commas (default,browser); the default pool always is one",
    )
    chromium_path: Path | None = Field(
        default=None,
        description="the Chromium the runner's browser scrapers launch; default `chromium`"
        " on the PATH (without one, the runner does not offer `browser` and `cookie_scan`)",
    )
    ticker_id: str | None = None
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    recorder_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="messages the recorder writes at a time"
    )
    recorder_batch_max_wait_seconds: float = Field(
        default=1.0, gt=0, le=30, description="how long an idle fetch waits for messages"
    )
    recorder_hold_seconds: float = Field(
        default=2.0,
        ge=0,
        le=20,
        description="how long the recorder holds a job's pending and running events (unacked)"
        " waiting for its final one, so that a short job is written once",
    )
    recorder_flush_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="how often the recorder writes the run history and statistics it added"
        " up (one update per scheduled job)",
    )
    history_runs: int = Field(
        default=100, ge=1, description="runs kept per scheduled job (or history_days, more)"
    )
    history_days: float = Field(
        default=30.0,
        ge=15.0,
        description="days of runs kept; over the EVENTS stream's 14 days, so a replayed"
        " event can never recreate (and count again) a run already deleted",
    )
    retention_interval_seconds: float = Field(default=600.0, gt=0)
    log_level: str = "INFO"
    webhook_concurrency: int = Field(
        default=32, ge=1, le=1000, description="events whose webhook calls run at once"
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="how long one webhook call may take"
    )
    webhook_max_attempts: int = Field(
        default=6,
        ge=1,
        le=20,
        description="calls of one webhook per event before giving up (retried on connection"
        " errors, timeouts, 408, 429 and 5xx)",
    )
    webhook_backoff_seconds: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="pause after the first failed webhook call, doubled after each further one",
    )
    # The API (`natscron api`): its own address, and who may call it.
    api_host: str = Field(default="0.0.0.0", description="address of the API")
    api_port: int = Field(default=8000, ge=0, le=65535, description="port of the API; 0: free")
    api_auth: Literal["bearer", "none"] = Field(
        default="bearer",
        description="`none` opens every endpoint (the demo); `bearer` needs a token, and a"
        " NATSCRON_API_JWT_KEY or NATSCRON_API_TOKENS to check it with",
    )
    api_jwt_key: SecretStr | None = Field(
        default=None,
        description="verifies JWTs: an HS256 secret (at least 32 bytes), or a PEM public key"
        " (RS256 or ES256 family)",
    )
    api_tokens: SecretStr | None = Field(
        default=None, description="static bearer tokens: TOKEN:SCOPE[,TOKEN:SCOPE]"
    )
    api_cors_origins: str | None = Field(
        default=None,
        description="origins whose browser pages may call the API, comma-separated"
        " (https://app.example.com,http://localhost:3000), or `*` for any; unset: no CORS"
        " headers, so browsers keep pages of other origins out",
    )
    grafana_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="Grafana's base URL (http or https): the console's system page links"
        " its natscron dashboards there; unset: no links",
    )

    @field_validator("runner_pools", mode="before")
    @classmethod
    def split_pools(cls, pools: object) -> object:
        """`default,browser` from the environment; a sequence as it is."""
        if isinstance(pools, str):
            return tuple(pool.strip() for pool in pools.split(",") if pool.strip())
        return pools

    @field_validator("nats_url")
    @classmethod
    def check_nats_url(cls, urls: str | None) -> str | None:
        """Each seed server a URL a NATS client can use (`seed_servers` says why not)."""
        if urls is not None:
            seed_servers(urls)
        return urls

    @field_validator("api_cors_origins")
    @classmethod
    def check_cors_origins(cls, origins: str | None) -> str | None:
        """Each an origin as browsers send it: scheme, host and port only, no path."""
        if origins is not None:
            cors_origins(origins)
        return origins

    @property
    def api_cors_origin_list(self) -> list[str]:
        return [] if self.api_cors_origins is None else cors_origins(self.api_cors_origins)

    @model_validator(mode="after")
    def check_nats_connection(self) -> Self:
        """One way to authenticate at most, each complete, and only to a configured server."""
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError(
                "NATSCRON_NATS_USER and NATSCRON_NATS_PASSWORD go together: set both or neither"
            )
        if (self.nats_tls_cert is None) != (self.nats_tls_key is None):
            raise ValueError(
                "NATSCRON_NATS_TLS_CERT and NATSCRON_NATS_TLS_KEY go together: set both or neither"
            )
        methods = self.nats_auth_methods()
        if len(methods) > 1:
            raise ValueError(f"set one way to authenticate to NATS, not {' and '.join(methods)}")
        if self.nats_url is None and (methods or self.nats_tls_ca or self.nats_tls_cert):
            raise ValueError(
                "NATS credentials and TLS settings need NATSCRON_NATS_URL: the embedded"
                " nats-server (NATSCRON_NATS_URL unset) has neither"
            )
        if methods and self.nats_url is not None and any_credentials(self.nats_url):
            raise ValueError(
                f"NATSCRON_NATS_URL carries credentials and so does {methods[0]}: keep one of them"
            )
        return self

    def nats_auth_methods(self) -> list[str]:
        """The ways to authenticate to NATS that are set, by their variables."""
        given = {
            "NATSCRON_NATS_USER/PASSWORD": self.nats_user or self.nats_password,
            "NATSCRON_NATS_TOKEN": self.nats_token,
            "NATSCRON_NATS_NKEY_SEED_FILE": self.nats_nkey_seed_file,
            "NATSCRON_NATS_CREDS_FILE": self.nats_creds_file,
        }
        return [name for name, value in given.items() if value is not None]
