"""URL normalisation: when two links are one page, for the crawl's de-duplication.

`normalise_url` applies, in order:

1. only `http` and `https` URLs with a host; anything else (mailto:, javascript:, a URL
   with user:password@) is no page to crawl (None);
2. scheme and host lower-cased, a trailing dot dropped from the host, IDN hosts as their
   punycode (xn--) form;
3. the scheme's default port dropped (`:80` for http, `:443` for https);
4. the fragment dropped (`#section` is the same page);
5. dot segments resolved (`/a/./b/../c` is `/a/c`), an empty path is `/`; percent-escapes
   upper-cased (`%7e` is `%7E`), nothing decoded;
6. query parameters sorted by name (the values of one name keep their order), blank ones
   kept (`a=`), an empty query (`?`) dropped;
7. the trailing slash is kept as written: `/docs` and `/docs/` are two URLs (servers may
   answer them differently), except that the root is always `/`.
"""

import re
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 2048
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda match: match.group(0).upper(), text)


def _resolve_dots(path: str) -> str:
    """RFC 3986, 5.2.4 (remove_dot_segments), for an absolute path."""
    segments: list[str] = []
    parts = path.split("/")
    for index, segment in enumerate(parts[1:], start=1):
        last = index == len(parts) - 1
        if segment == ".":
            if last:
                segments.append("")
        elif segment == "..":
            if segments:
                segments.pop()
            if last:
                segments.append("")
        else:
            segments.append(segment)
    return "/" + "/".join(segments)


def _host(hostname: str) -> str | None:
    host = hostname.lower().rstrip(".")
    if not host:
        return None
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None


def _sorted_query(query: str) -> str:
    pairs = [pair for pair in query.split("&") if pair]
    pairs.sort(key=lambda pair: pair.split("=", 1)[0])
    return "&".join(pairs)


def normalise_url(url: str) -> str | None:
    """The canonical form of `url` (see the module), or None for no crawlable page."""
    if len(url) > MAX_URL_CHARS:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or parts.username is not None or parts.hostname is None:
        return None
    host = _host(parts.hostname)
    if host is None:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _resolve_dots(_upper_escapes(parts.path or "/"))
    return urlunsplit((scheme, netloc, path, _upper_escapes(_sorted_query(parts.query)), ""))
