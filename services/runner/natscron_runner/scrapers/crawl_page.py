"""What the crawl reads off one page: its items and the links it leads to."""

from dataclasses import dataclass
from urllib.parse import urljoin

from bs4 import BeautifulSoup

from natscron_runner.scrapers.crawl_params import CrawlParams
from natscron_runner.scrapers.extraction import read_fields, read_items
from natscron_runner.scrapers.urls import normalise_url
from natscron_shared.contract.messages import ScrapedItem


@dataclass(frozen=True)
class CrawlPage:
    items: list[ScrapedItem | None]
    """None where an item's key was empty."""
    links: list[str]
    """Normalised, in page order, each once."""


def parse_crawl_page(html: str, url: str, depth: int, params: CrawlParams) -> CrawlPage:
    """Pure parsing (runs in a worker thread). Links resolve against `<base href>`, if
    the page has one, else against the page's URL."""
    soup = BeautifulSoup(html, "html.parser")
    base = soup.find("base", href=True)
    base_href = base.get("href") if base is not None else None
    base_url = urljoin(url, base_href) if isinstance(base_href, str) else url
    links: dict[str, None] = {}
    for anchor in soup.select(params.link_selector):
        href = anchor.get("href")
        if isinstance(href, str) and href.strip():
            link = normalise_url(urljoin(base_url, href.strip()))
            if link is not None:
                links[link] = None
    specs = params.field_specs()
    if params.item_selector is not None:
        assert params.key_field is not None
        items = read_items(soup, params.item_selector, specs, params.key_field)
    else:
        data: dict[str, object] = {"url": url, "depth": depth, **read_fields(soup, specs)}
        key = url if params.key_field is None else data[params.key_field]
        items = [ScrapedItem(key=key, data=data) if isinstance(key, str) and key else None]
    return CrawlPage(items=items, links=list(links))
