"""`NATSCRON_NATS_URL` as every NATS client takes it: one server, or several seed servers
of one cluster separated by commas (`nats://a:4222,nats://b:4222,nats://c:4222`).

The client connects to the first of them that answers and learns the rest of the cluster
from it, so a process starts while a node is down. Each entry is checked here, so a typo
is refused with a sentence naming it rather than a bare "cannot connect to NATS".
"""

from urllib.parse import SplitResult, urlsplit

SCHEMES = ("nats", "tls", "ws", "wss")
WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})


def seed_servers(urls: str) -> list[str]:
    """The servers of a comma-separated list (spaces around commas allowed), each with its
    scheme (`nats://` when it has none, as nats-py assumes). Raises ValueError naming the
    first bad entry, or saying why the list as a whole cannot be used."""
    entries = [entry.strip() for entry in urls.split(",")]
    servers = [_checked(entry, position, len(entries)) for position, entry in enumerate(entries)]
    kinds = {urlsplit(server).scheme in WEBSOCKET_SCHEMES for server in servers}
    if len(kinds) > 1:
        raise ValueError(
            f"{shown(urls)!r} mixes websocket (ws://, wss://) and plain (nats://, tls://)"
            " servers: give servers of one kind"
        )
    with_credentials = [server for server in servers if _has_credentials(server)]
    if with_credentials and len(with_credentials) < len(servers):
        without = next(server for server in servers if not _has_credentials(server))
        raise ValueError(
            f"{shown(with_credentials[0])!r} carries credentials but {shown(without)!r} does not:"
            " give them in every URL, or once in the NATSCRON_NATS_* settings"
        )
    return servers


def any_credentials(urls: str) -> bool:
    """Whether a (checked) list of servers carries a user or token in its URLs."""
    return any(_has_credentials(server) for server in seed_servers(urls))


def shown(urls: str) -> str:
    """The servers without their credentials, for messages and logs."""
    return ",".join(_without_credentials(entry.strip()) for entry in urls.split(","))


def _checked(entry: str, position: int, count: int) -> str:
    where = f"entry {position + 1} of {count}" if count > 1 else "the URL"
    if not entry:
        raise ValueError(f"{where} is empty: separate the servers with single commas")
    server = entry if "://" in entry else f"nats://{entry}"
    problem = _problem(server)
    if problem is not None:
        raise ValueError(f"{where}, {shown(entry)!r}, is not a NATS server URL: {problem}")
    return server


def _problem(server: str) -> str | None:
    """What is wrong with one server URL, or None."""
    if any(character.isspace() for character in server):
        return "it contains a space"
    try:
        parts = urlsplit(server)
        port = parts.port
    except ValueError as exc:
        return f"{exc}; write scheme://host:port"
    if parts.scheme not in SCHEMES:
        return f"its scheme must be one of {', '.join(s + '://' for s in SCHEMES)}"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 is no server's port"
    if parts.query or parts.fragment:
        return "it has a query or fragment, which NATS does not use"
    if parts.scheme not in WEBSOCKET_SCHEMES and parts.path not in ("", "/"):
        return f"it has a path ({parts.path!r}), which a nats:// or tls:// URL has not"
    return None


def _has_credentials(server: str) -> bool:
    parts: SplitResult = urlsplit(server)
    return bool(parts.username or parts.password)


def _without_credentials(entry: str) -> str:
    scheme, separator, rest = entry.rpartition("://")
    host = rest.rpartition("@")[2]
    return f"{scheme}{separator}***@{host}" if "@" in rest else entry
