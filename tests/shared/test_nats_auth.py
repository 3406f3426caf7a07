"""NATSCRON_NATS_* authentication: contradictions refused with a sentence, and each way to
authenticate (token, nkey, user + password over mutual TLS) accepted by a real nats-server,
through the CLI's client and the services' broker alike."""

import datetime as dt
import ipaddress
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nkeys  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr, ValidationError

from natscron.cli.connect import nats_client
from natscron.embedded import EmbeddedServer, start_nats
from natscron_shared.nats.auth import NatsTlsError, connect_options
from natscron_shared.nats.connection import new_broker
from natscron_shared.runtime.settings import Settings

pytestmark = pytest.mark.integration

URL = "nats://127.0.0.1:4222"


@pytest.fixture
def seed_file(tmp_path: Path) -> Path:
    path = tmp_path / "user.nk"
    path.write_bytes(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    return path


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ({"nats_user": "runner"}, "NATSCRON_NATS_USER and NATSCRON_NATS_PASSWORD go together"),
        ({"nats_password": "pw"}, "NATSCRON_NATS_USER and NATSCRON_NATS_PASSWORD go together"),
        (
            {"nats_user": "runner", "nats_password": "pw", "nats_token": "t"},
            "not NATSCRON_NATS_USER/PASSWORD and NATSCRON_NATS_TOKEN",
        ),
        (
            {"nats_token": "t", "nats_nkey_seed_file": "SEED"},
            "not NATSCRON_NATS_TOKEN and NATSCRON_NATS_NKEY_SEED_FILE",
        ),
        ({"nats_tls_cert": "SEED"}, "NATSCRON_NATS_TLS_CERT and NATSCRON_NATS_TLS_KEY go together"),
        ({"nats_url": None, "nats_token": "t"}, "need NATSCRON_NATS_URL"),
        (
            {"nats_url": "nats://me:pw@127.0.0.1:4222", "nats_token": "t"},
            "NATSCRON_NATS_URL carries credentials and so does NATSCRON_NATS_TOKEN",
        ),
        ({"nats_creds_file": "/no/such/file.creds"}, "nats_creds_file"),
    ],
)
def test_contradictory_or_incomplete_settings_are_refused(
    given: dict[str, Any], said: str, seed_file: Path
) -> None:
    values = {"nats_url": URL, **given}
    values = {k: seed_file if v == "SEED" else v for k, v in values.items()}
    with pytest.raises(ValidationError) as refused:
        Settings(**values)
    assert said in str(refused.value)


def test_no_credentials_mean_the_default_inbox_only() -> None:
    assert connect_options(Settings(nats_url=URL)) == {"inbox_prefix": "_INBOX"}


def test_a_user_gets_replies_under_its_own_inbox_unless_told_otherwise() -> None:
    user = Settings(nats_url=URL, nats_user="runner", nats_password=SecretStr("pw"))
    options = connect_options(user)
    assert (options["user"], options["password"]) == ("runner", "pw")
    assert options["inbox_prefix"] == "_INBOX.runner"
    chosen = user.model_copy(update={"nats_inbox_prefix": "replies.runner"})
    assert connect_options(chosen)["inbox_prefix"] == "replies.runner"
    with pytest.raises(ValidationError, match="nats_inbox_prefix"):
        Settings(nats_url=URL, nats_inbox_prefix="_INBOX.>")


def test_unreadable_tls_files_are_a_clear_error(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(NatsTlsError, match="cannot use the NATSCRON_NATS_TLS_\\* files"):
        connect_options(Settings(nats_url=URL, nats_tls_ca=garbage))


async def server_with(tmp_path: Path, config: str) -> EmbeddedServer:
    path = tmp_path / "auth-test.conf"
    path.write_text(config)
    return await start_nats(tmp_path, config=path)


async def both_clients_connect(settings: Settings) -> None:
    """The CLI's client and a service's broker, as the settings say."""
    assert settings.nats_url is not None
    async with nats_client(settings.nats_url, settings) as client:
        await client.flush(timeout=5)
        assert client.is_connected
    broker = new_broker(settings, settings.nats_url, "natscron-auth-test")
    try:
        await broker.connect()
        assert broker.connection.is_connected
    finally:
        await broker.stop()


@pytest.fixture
async def token_server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = await server_with(tmp_path, 'authorization { token: "s3cret-token" }\n')
    yield server
    await server.stop()


async def test_a_token_authenticates(token_server: EmbeddedServer) -> None:
    settings = Settings(nats_url=token_server.url, nats_token=SecretStr("s3cret-token"))
    await both_clients_connect(settings)


@pytest.fixture
def public_nkey(seed_file: Path) -> str:
    public: bytes = nkeys.from_seed(bytearray(seed_file.read_bytes())).public_key
    return public.decode()


@pytest.fixture
async def nkey_server(tmp_path: Path, public_nkey: str) -> AsyncIterator[EmbeddedServer]:
    public = public_nkey
    server = await server_with(tmp_path, f"authorization {{ users = [{{ nkey: {public} }}] }}\n")
    yield server
    await server.stop()


async def test_an_nkey_seed_file_authenticates(
    nkey_server: EmbeddedServer, seed_file: Path
) -> None:
    await both_clients_connect(Settings(nats_url=nkey_server.url, nats_nkey_seed_file=seed_file))


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey] | None,
    ip: str | None = None,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(folder: Path, name: str, cert: x509.Certificate, key: Any) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by it."""
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _certificate("natscron test CA", ca_key, None)
    ca_path, _ = _write(tmp_path, "ca", ca, ca_key)
    server = _certificate("nats", server_key, ("natscron test CA", ca_key), ip="127.0.0.1")
    server_cert, server_key_path = _write(tmp_path, "server", server, server_key)
    client = _certificate("runner", client_key, ("natscron test CA", ca_key))
    client_cert, client_key_path = _write(tmp_path, "client", client, client_key)
    return {
        "ca": ca_path,
        "server_cert": server_cert,
        "server_key": server_key_path,
        "client_cert": client_cert,
        "client_key": client_key_path,
    }


@pytest.fixture
async def tls_server(tmp_path: Path, pki: dict[str, Path]) -> AsyncIterator[EmbeddedServer]:
    server = await server_with(
        tmp_path,
        f"""tls {{
  cert_file: "{pki["server_cert"]}"
  key_file: "{pki["server_key"]}"
  ca_file: "{pki["ca"]}"
  verify: true
}}
authorization {{ users = [{{ user: runner, password: "pw" }}] }}
""",
    )
    yield server
    await server.stop()


async def test_user_and_password_over_mutual_tls(
    tls_server: EmbeddedServer, pki: dict[str, Path]
) -> None:
    settings = Settings(
        nats_url=tls_server.url,
        nats_user="runner",
        nats_password=SecretStr("pw"),
        nats_tls_ca=pki["ca"],
        nats_tls_cert=pki["client_cert"],
        nats_tls_key=pki["client_key"],
    )
    await both_clients_connect(settings)
