"""Which natscron scraper runs each kind of source schedule, and with which params.

`--scraper-map FILE` is YAML: each key a kind (`natscron.migration.kinds`), each value
`scraper` and, optionally, `params`, a template of the params built from the record's
fields (`natscron.migration.templates`); without `params` the kind's own params are used.
`--scraper NAME` runs every kind the file does not map with NAME and the kind's own params.
A kind neither maps is unmapped: the migration lists it and writes nothing (docs/migration.md).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from natscron.migration.kinds import KNOWN_KINDS, TEMPLATE_FIELDS, base_kind
from natscron.migration.records import Scrape
from natscron.migration.templates import TemplateError, placeholders, render
from natscron_shared.contract.errors import BadRequestError, problems_sentence
from natscron_shared.contract.models import Identifier


class ScraperMapError(BadRequestError):
    """The scraper map file cannot be read or says something natscron cannot use."""


class MapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scraper: Identifier
    params: dict[str, Any] | None = None
    """A params template; None: the kind's own params."""

    def params_for(self, scrape: Scrape) -> dict[str, Any]:
        """Raises `TemplateError` when the record lacks a field the template puts in text."""
        if self.params is None:
            return scrape.params
        return render(self.params, scrape.fields)


@dataclass(frozen=True)
class ScraperMap:
    entries: Mapping[str, MapEntry] = field(default_factory=dict)
    fallback: str | None = None
    """`--scraper NAME`: the scraper of every kind without an entry."""

    def entry(self, kind: str) -> MapEntry | None:
        """The kind's entry, else its base kind's, else the fallback; None: unmapped."""
        found = self.entries.get(kind) or self.entries.get(base_kind(kind))
        if found is None and self.fallback is not None:
            return MapEntry(scraper=self.fallback)
        return found

    def choose(self, scrape: Scrape) -> tuple[str, dict[str, Any]] | None:
        """The scraper and params of a scrape; None if its kind is unmapped. A scrape that
        names its own scraper keeps it, with its own params."""
        if scrape.own_scraper is not None:
            return scrape.own_scraper, scrape.params
        entry = self.entry(scrape.kind)
        return None if entry is None else (entry.scraper, entry.params_for(scrape))


def load_scraper_map(path: Path | None, fallback: str | None) -> ScraperMap:
    if path is None:
        return ScraperMap(fallback=fallback)
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScraperMapError(f"cannot read the scraper map {path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ScraperMapError(
            f"the scraper map {path} is not a mapping of kinds ({', '.join(KNOWN_KINDS)})"
        )
    entries = {str(kind): _entry(path, str(kind), value) for kind, value in loaded.items()}
    return ScraperMap(entries, fallback)


def _entry(path: Path, kind: str, value: object) -> MapEntry:
    if kind not in KNOWN_KINDS:
        raise ScraperMapError(
            f"the scraper map {path} maps {kind!r}, which is not a kind;"
            f" the kinds are {', '.join(KNOWN_KINDS)}"
        )
    try:
        entry = MapEntry.model_validate(value)
    except ValidationError as exc:
        problems = problems_sentence(exc.errors())
        raise ScraperMapError(f"the scraper map {path}, kind {kind}: {problems}") from None
    allowed = TEMPLATE_FIELDS[base_kind(kind)]
    try:
        unknown = sorted(set(placeholders(entry.params)) - set(allowed))
    except TemplateError as exc:
        raise ScraperMapError(f"the scraper map {path}, kind {kind}: {exc}") from None
    if unknown:
        raise ScraperMapError(
            f"the scraper map {path}, kind {kind}: the params name {', '.join(unknown)};"
            f" a {base_kind(kind)} has {', '.join(allowed)}"
        )
    return entry
