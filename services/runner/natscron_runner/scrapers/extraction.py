"""Reading items off a page's HTML with field specs: what `http` and `crawl` fetched or what
`browser` rendered, so every scraper extracts exactly alike."""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag

from natscron_runner.scrapers.listing_params import FieldSpec, ListingParams, is_http_url
from natscron_shared.contract.messages import ScrapedItem

SKIP_MISSING_KEY = "missing_key"


@dataclass(frozen=True)
class Page:
    """What one listing page held: items (None where the key was missing) and the next page."""

    items: list[ScrapedItem | None]
    next_url: str | None


def read_field(element: Tag, spec: FieldSpec) -> str | None:
    target = element.select_one(spec.selector) if spec.selector else element
    if target is None:
        return None
    if spec.attr is None:
        return target.get_text(" ", strip=True)
    value = target.get(spec.attr)
    if value is None:
        return None
    return " ".join(value) if isinstance(value, list) else str(value)


def read_fields(element: Tag, specs: dict[str, FieldSpec]) -> dict[str, str | None]:
    return {name: read_field(element, spec) for name, spec in specs.items()}


def read_items(
    root: Tag, item_selector: str, specs: dict[str, FieldSpec], key_field: str
) -> list[ScrapedItem | None]:
    """One item per match of `item_selector`; None where its key field is empty."""
    items: list[ScrapedItem | None] = []
    for element in root.select(item_selector):
        data = read_fields(element, specs)
        key = data[key_field]
        items.append(ScrapedItem(key=key, data=data) if key else None)
    return items


def parse_page(html: str, url: str, params: ListingParams) -> Page:
    """Pure parsing (run it in a worker thread, so big pages do not block the loop)."""
    soup = BeautifulSoup(html, "html.parser")
    items = read_items(soup, params.item_selector, params.field_specs(), params.key_field)
    next_url = None
    if params.next_page_selector:
        link = soup.select_one(params.next_page_selector)
        href = link.get("href") if link is not None else None
        if isinstance(href, str) and href.strip():
            candidate = urljoin(url, href.strip())
            next_url = candidate if is_http_url(candidate) else None
    return Page(items=items, next_url=next_url)


def keyed_items(items: list[ScrapedItem | None], skip: Callable[[str], None]) -> list[ScrapedItem]:
    """The items that have a key; each one without is reported to `skip`."""
    keyed = []
    for item in items:
        if item is None:
            skip(SKIP_MISSING_KEY)
        else:
            keyed.append(item)
    return keyed
