"""A host as polite fetching counts it: its name and port, and its token in KV keys."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
_KEPT = re.compile(r"[a-z0-9.-]")


@dataclass(frozen=True)
class Host:
    """`example.com:443`: lower-case name without a trailing dot, and the port (the
    scheme's default when the URL has none). http and https on their default ports are two
    hosts: they are two servers as often as not."""

    name: str
    port: int

    @classmethod
    def of(cls, url: str) -> "Host":
        """Raises ValueError for a URL without a host name or with a bad port."""
        parts = urlsplit(url)
        name = (parts.hostname or "").rstrip(".")
        if not name:
            raise ValueError(f"{url!r} names no host")
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
        if port is None:
            raise ValueError(f"{url!r} has no port and an unknown scheme")
        return cls(name=name, port=port)

    @property
    def token(self) -> str:
        """The host as KV key tokens, `example.com.443`; any character a key cannot hold
        (an IPv6 address's colons) as `=` and two hex digits, so no two hosts share one."""
        escaped = "".join(c if _KEPT.fullmatch(c) else f"={ord(c):02x}" for c in self.name)
        return f"{escaped}.{self.port}"

    def __str__(self) -> str:
        return f"{self.name}:{self.port}"


def origin_of(url: str) -> str:
    """`scheme://host:port`: what one robots.txt covers."""
    parts = urlsplit(url)
    host = Host.of(url)
    name = f"[{host.name}]" if ":" in host.name else host.name
    return f"{parts.scheme.lower()}://{name}:{host.port}"
