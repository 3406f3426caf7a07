"""Which site a host belongs to: its registrable domain (Public Suffix List), so a cookie
can be told first party or third party to the site being scanned."""

import functools
import ipaddress
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()


def registrable_domain(host: str) -> str:
    """`www.example.co.uk` -> `example.co.uk`. An IP address, or a host that is itself a
    public suffix or has no listed one (`localhost`), is its own site."""
    host = host.strip(".").lower()
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return _suffixes().privatesuffix(host) or host
    return host


def site_of(url: str) -> str:
    return registrable_domain(urlsplit(url).hostname or "")


def same_site(url: str, site: str) -> bool:
    return site_of(url) == site
