"""Who may call the API: bearer tokens carrying the scopes `read` and `write`.

Two kinds of token, either or both configured:

- JWTs verified with `NATSCRON_API_JWT_KEY`: an HS256 secret (at least 32 bytes), or a PEM
  public key (RSA: RS256/384/512; EC: the ES algorithm of its curve; Ed25519: EdDSA). The
  token must carry `exp`; its scopes are the space-separated `scope` claim (a list is
  accepted too); `sub` names the caller.
- Static tokens from `NATSCRON_API_TOKENS`: `TOKEN:SCOPE[,TOKEN:SCOPE]`, each token at least
  16 characters, compared in constant time.

`write` includes `read`. Without either setting the API refuses to start, unless
`NATSCRON_API_AUTH=none` opens it on purpose (the demo); setting both is refused as a
contradiction. Misconfiguration is a `BadRequestError`, so `natscron api` exits 2.
"""

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from natscron_api.errors import ApiError
from natscron_shared.contract.errors import BadRequestError
from natscron_shared.runtime.settings import Settings

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
MIN_STATIC_TOKEN_CHARS = 16
MIN_RSA_BITS = 2048
LEEWAY_SECONDS = 30
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"


SCOPE_WORDS = frozenset(scope.value for scope in Scope)


def granted(scopes: set[str]) -> frozenset[Scope]:
    """The scopes a token's words grant: `write` includes `read`; unknown words grant none."""
    found = {Scope(word) for word in scopes if word in SCOPE_WORDS}
    if Scope.WRITE in found:
        found.add(Scope.READ)
    return frozenset(found)


@dataclass(frozen=True)
class Principal:
    """The caller: a name for logs and `cancelled_by`, and what it may do."""

    name: str
    scopes: frozenset[Scope]


ANONYMOUS = Principal("anonymous", frozenset(Scope))


class Unauthorized(ApiError):
    """No usable token: HTTP 401 with a `WWW-Authenticate: Bearer` challenge."""

    def __init__(self, message: str, invalid_token: bool = False) -> None:
        super().__init__("unauthorized", message)
        self.invalid_token = invalid_token


class Forbidden(ApiError):
    def __init__(self, scope: Scope) -> None:
        super().__init__("forbidden", f"this endpoint needs a token with the {scope} scope")
        self.scope = scope


@dataclass(frozen=True)
class _StaticToken:
    token: bytes
    principal: Principal


@dataclass(frozen=True)
class _JwtKey:
    key: Any
    algorithms: tuple[str, ...]


class Authenticator:
    """Checks bearer tokens against the configured keys and tokens."""

    def __init__(self, jwt_key: str | None, tokens: str | None, open_access: bool) -> None:
        self.open = open_access
        if open_access and (jwt_key or tokens):
            raise BadRequestError(
                "NATSCRON_API_AUTH=none opens the API, yet NATSCRON_API_JWT_KEY or"
                " NATSCRON_API_TOKENS is set: unset one or the other"
            )
        if not open_access and not (jwt_key or tokens):
            raise BadRequestError(
                "the API needs NATSCRON_API_JWT_KEY or NATSCRON_API_TOKENS to check bearer"
                " tokens; set NATSCRON_API_AUTH=none to run it without authentication"
            )
        self._jwt = _jwt_key(jwt_key) if jwt_key else None
        self._tokens = _static_tokens(tokens) if tokens else ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "Authenticator":
        key, tokens = settings.api_jwt_key, settings.api_tokens
        return cls(
            key.get_secret_value() if key else None,
            tokens.get_secret_value() if tokens else None,
            settings.api_auth == "none",
        )

    @property
    def methods(self) -> list[str]:
        """What is configured, for the log line at start."""
        if self.open:
            return ["none"]
        found = [f"jwt ({', '.join(self._jwt.algorithms)})"] if self._jwt else []
        return found + ([f"{len(self._tokens)} static token(s)"] if self._tokens else [])

    def authenticate(self, token: str | None) -> Principal:
        """The caller of `token` (the part after `Bearer `), or `Unauthorized`."""
        if self.open:
            return ANONYMOUS
        if not token:
            raise Unauthorized("this endpoint needs a bearer token (Authorization: Bearer ...)")
        static = self._static(token)
        if static is not None:
            return static
        if self._jwt is None or token.count(".") != 2:
            raise Unauthorized("the bearer token is not one this API knows", invalid_token=True)
        return self._decode(token, self._jwt)

    def _static(self, token: str) -> Principal | None:
        given = token.encode()
        found = None
        for entry in self._tokens:  # all compared, so timing says nothing about which
            if hmac.compare_digest(entry.token, given):
                found = entry.principal
        return found

    def _decode(self, token: str, key: _JwtKey) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(key.algorithms),
                options={"require": ["exp"], "enforce_minimum_key_length": True},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}", invalid_token=True) from None
        words = claims.get("scope", "")
        listed = words.split() if isinstance(words, str) else words
        scopes = {str(word) for word in listed} if isinstance(listed, list) else set()
        return Principal(str(claims.get("sub") or "jwt"), granted(scopes))


def _jwt_key(text: str) -> _JwtKey:
    text = text.strip()
    if not text.startswith("-----BEGIN"):
        secret = text.encode()
        if len(secret) < MIN_SECRET_BYTES:
            raise BadRequestError(
                f"NATSCRON_API_JWT_KEY: an HS256 secret needs at least {MIN_SECRET_BYTES} bytes"
                f" (got {len(secret)})"
            )
        return _JwtKey(secret, ("HS256",))
    if "PRIVATE KEY" in text.split("\n", 1)[0]:
        raise BadRequestError("NATSCRON_API_JWT_KEY: give the public key, not the private one")
    try:
        public = load_pem_public_key(text.replace("\\n", "\n").encode())
    except ValueError as exc:
        raise BadRequestError(f"NATSCRON_API_JWT_KEY is not a PEM public key: {exc}") from None
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise BadRequestError(
                f"NATSCRON_API_JWT_KEY: an RSA key needs at least {MIN_RSA_BITS} bits"
            )
        return _JwtKey(public, ("RS256", "RS384", "RS512"))
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name in EC_ALGORITHMS:
        return _JwtKey(public, (EC_ALGORITHMS[public.curve.name],))
    if isinstance(public, ed25519.Ed25519PublicKey):
        return _JwtKey(public, ("EdDSA",))
    raise BadRequestError(
        "NATSCRON_API_JWT_KEY: only RSA, EC (P-256, P-384, P-521) and Ed25519 public keys"
        " are supported"
    )


def _static_tokens(text: str) -> Sequence[_StaticToken]:
    entries = []
    for number, pair in enumerate(filter(None, (p.strip() for p in text.split(","))), 1):
        token, colon, scope = pair.rpartition(":")
        if not colon or scope not in SCOPE_WORDS:
            raise BadRequestError(
                f"NATSCRON_API_TOKENS entry {number}: write TOKEN:read or TOKEN:write"
            )
        if len(token) < MIN_STATIC_TOKEN_CHARS:
            raise BadRequestError(
                f"NATSCRON_API_TOKENS entry {number}: a token needs at least"
                f" {MIN_STATIC_TOKEN_CHARS} characters"
            )
        principal = Principal(f"static token {number}", granted({scope}))
        entries.append(_StaticToken(token.encode(), principal))
    if not entries:
        raise BadRequestError("NATSCRON_API_TOKENS holds no TOKEN:SCOPE pair")
    return entries
