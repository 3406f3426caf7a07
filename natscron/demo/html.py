"""The demo site's pages as HTML."""

from html import escape
from urllib.parse import urlencode

from natscron.demo.listings import LISTING_TYPES, Listing, city_of


def listing_url(slug: str, listing_type: str, page: int) -> str:
    return f"/listings/{slug}?{urlencode({'type': listing_type, 'page': page})}"


def _article(listing: Listing) -> str:
    price = f"${listing.price:,}"
    return (
        f'<article class="listing" data-id="{escape(listing.listing_id)}">'
        f'<h2 class="address">{escape(listing.address)}</h2>'
        f'<span class="price" data-value="{listing.price}">{price}</span> '
        f'<span class="beds">{listing.beds}</span> beds '
        f'<span class="baths">{listing.baths}</span> baths '
        f'<span class="sqft">{listing.sqft}</span> sqft '
        f'<a class="details" href="/listing/{escape(listing.listing_id)}">details</a>'
        "</article>"
    )


def listings_html(
    slug: str, listing_type: str, page: int, pages: int, listings: list[Listing]
) -> str:
    title = f"{city_of(slug)}: homes {listing_type.replace('_', ' ')}, page {page} of {pages}"
    nav = ""
    if page < pages:
        nav = f'<a class="next" href="{escape(listing_url(slug, listing_type, page + 1))}">Next</a>'
    body = "\n".join(_article(listing) for listing in listings)
    return (
        f"<!doctype html><html><head><title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1>\n{body}\n<nav>{nav}</nav></body></html>"
    )


def index_html(slugs: tuple[str, ...]) -> str:
    links = "".join(
        f'<li><a href="{escape(listing_url(slug, kind, 1))}">'
        f"{escape(city_of(slug))} {kind}</a></li>"
        for slug in slugs
        for kind in LISTING_TYPES
    )
    return f"<!doctype html><html><body><h1>Demo listings</h1><ul>{links}</ul></body></html>"
