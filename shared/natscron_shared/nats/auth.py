"""How every natscron process authenticates to NATS: one builder, `nats_security`, turns the
`NATSCRON_NATS_*` settings into FastStream's security object; the services' brokers take
it as it is, and plain nats-py clients (CLI, provisioning) its connect options. Both get
the same reply subjects (`inbox_prefix`)."""

import ssl
from typing import Any

from faststream.nats import (
    NatsCredentials,
    NatsNKey,
    NatsSecurity,
    NatsToken,
    NatsUserPassword,
)
from faststream.nats.security import parse_security

from natscron_shared.contract.errors import BadRequestError
from natscron_shared.runtime.settings import Settings

DEFAULT_INBOX_PREFIX = "_INBOX"


class NatsTlsError(BadRequestError):
    code = "bad_tls_files"


def nats_security(settings: Settings) -> NatsSecurity | None:
    """The configured authentication and TLS; None for neither (an open server)."""
    tls = _tls_context(settings)
    if settings.nats_user is not None and settings.nats_password is not None:
        return NatsUserPassword(
            settings.nats_user, settings.nats_password.get_secret_value(), ssl_context=tls
        )
    if settings.nats_token is not None:
        return NatsToken(settings.nats_token.get_secret_value(), ssl_context=tls)
    if settings.nats_nkey_seed_file is not None:
        return NatsNKey.from_file(settings.nats_nkey_seed_file, ssl_context=tls)
    if settings.nats_creds_file is not None:
        return NatsCredentials.from_file(settings.nats_creds_file, ssl_context=tls)
    if tls is not None:
        return NatsSecurity(ssl_context=tls)
    return None


def inbox_prefix(settings: Settings) -> str:
    """Where replies come back: under the user's own prefix when there is a user, which
    nats-server can then let that user alone subscribe to (`nats_permissions`)."""
    if settings.nats_inbox_prefix is not None:
        return settings.nats_inbox_prefix
    if settings.nats_user is not None:
        return f"{DEFAULT_INBOX_PREFIX}.{settings.nats_user}"
    return DEFAULT_INBOX_PREFIX


def connect_options(settings: Settings) -> dict[str, Any]:
    """`nats_security` and `inbox_prefix` as keyword arguments of nats-py's
    `Client.connect`."""
    options: dict[str, Any] = parse_security(nats_security(settings))
    options["inbox_prefix"] = inbox_prefix(settings)
    return {name: value for name, value in options.items() if value is not None}


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A client context trusting `nats_tls_ca` (else the system's CAs), presenting the
    client certificate if one is set; None when no TLS file is set."""
    if settings.nats_tls_ca is None and settings.nats_tls_cert is None:
        return None
    try:
        context = ssl.create_default_context(
            cafile=None if settings.nats_tls_ca is None else str(settings.nats_tls_ca)
        )
        if settings.nats_tls_cert is not None and settings.nats_tls_key is not None:
            context.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    except (ssl.SSLError, OSError) as exc:
        raise NatsTlsError(
            f"cannot use the NATSCRON_NATS_TLS_* files ({exc}): they must be PEM, the key"
            " matching the certificate"
        ) from exc
    return context
