"""Reading items off a parsed page with field specs: the `http` and `crawl` scrapers'."""

from bs4 import Tag

from natscron_runner.scrapers.http_params import FieldSpec
from natscron_shared.contract.messages import ScrapedItem


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
