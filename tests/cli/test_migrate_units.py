"""The migration's pure parts: seed 003's frequencies as crons, params templates, and the
scraper map file, with the sentences their refusals give."""

from pathlib import Path

import pytest

from natscron.migration.frequency import frequency_cron
from natscron.migration.legacy_values import LegacyValueError
from natscron.migration.records import Scrape
from natscron.migration.scraper_map import ScraperMap, ScraperMapError, load_scraper_map
from natscron.migration.templates import TemplateError, render


@pytest.mark.parametrize(
    ("frequency", "time_config", "cron"),
    [
        ("hourly", {"minute": 15}, "15 * * * *"),
        ("hourly", {}, "0 * * * *"),
        ("daily", {"hour": 2, "minute": 0}, "0 2 * * *"),
        ("Daily", {"hour": 23}, "0 23 * * *"),
        ("weekly", {"day": "monday", "hour": 2, "minute": 0}, "0 2 * * mon"),
        ("weekly", {"day": "Sun", "hour": 6, "minute": 30}, "30 6 * * sun"),
        ("monthly", {"day": 31, "hour": 3, "minute": 5}, "5 3 31 * *"),
    ],
)
def test_seed_003_frequencies_become_crons(
    frequency: str, time_config: dict[str, object], cron: str
) -> None:
    assert frequency_cron(frequency, time_config) == cron


@pytest.mark.parametrize(
    ("frequency", "time_config", "sentence"),
    [
        ("yearly", {}, "frequency 'yearly' is not one of hourly, daily, weekly, monthly"),
        ("daily", {"hour": 24}, "time_config hour 24 is not a whole number 0-23"),
        ("daily", {"hour": "2"}, "time_config hour '2' is not a whole number 0-23"),
        ("daily", {"hour": 2, "day": "monday"}, "a daily schedule has day; natscron reads only"),
        ("weekly", {"day": 1, "hour": 2}, "day 1 of a weekly schedule is not a day's name"),
        ("monthly", {"hour": 2}, "time_config of a monthly schedule has no day"),
        ("daily", "02:00", "time_config '02:00' is not a JSON object"),
    ],
)
def test_frequencies_natscron_cannot_read_are_refused_with_a_sentence(
    frequency: str, time_config: object, sentence: str
) -> None:
    with pytest.raises(LegacyValueError, match=sentence):
        frequency_cron(frequency, time_config)


FIELDS = {"domain": "example.com", "profile_id": None, "pages": ["/a", "/b"], "limit": 5}


def test_a_template_keeps_types_drops_empty_fields_and_fills_text() -> None:
    template = {
        "domain": "{domain}",
        "profile": "{profile_id}",
        "pages": "{pages}",
        "urls": ["https://{domain}/", "{profile_id}", "{{literal}}"],
        "nested": {"limit": "{limit}", "fixed": 50, "flag": True},
    }
    assert render(template, FIELDS) == {
        "domain": "example.com",
        "pages": ["/a", "/b"],
        "urls": ["https://example.com/", "{literal}"],
        "nested": {"limit": 5, "fixed": 50, "flag": True},
    }


def test_an_empty_field_in_text_is_an_error() -> None:
    with pytest.raises(TemplateError, match="needs profile_id, which this record has not"):
        render({"url": "https://x/{profile_id}"}, FIELDS)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scrapers.yaml"
    path.write_text(text)
    return path


def test_the_map_finds_a_kind_then_its_base_then_the_fallback(tmp_path: Path) -> None:
    path = write(tmp_path, "listing:\n  scraper: http\nlisting.sold:\n  scraper: sold\n")
    scrapers = load_scraper_map(path, "catch_all")
    sold = Scrape("listing.sold", {}, {"listing_type": "sold"})
    rent = Scrape("listing.for_rent", {}, {"listing_type": "for_rent"})
    crawl = Scrape("crawl", {"url": "https://a/"}, {"url": "https://a/"})
    assert scrapers.choose(sold) == ("sold", {"listing_type": "sold"})
    assert scrapers.choose(rent) == ("http", {"listing_type": "for_rent"})
    assert scrapers.choose(crawl) == ("catch_all", {"url": "https://a/"})
    assert ScraperMap().choose(crawl) is None
    own = Scrape("crawl", {}, {"depth": 2}, own_scraper="mine")
    assert ScraperMap().choose(own) == ("mine", {"depth": 2})


@pytest.mark.parametrize(
    ("text", "sentence"),
    [
        ("- crawl\n", "is not a mapping of kinds"),
        ("crawling:\n  scraper: crawl\n", "maps 'crawling', which is not a kind"),
        ("crawl:\n  params: {}\n", "kind crawl: scraper: Field required"),
        ("crawl:\n  scraper: crawl\n  params: {u: '{domain}'}\n", "the params name domain"),
        ("crawl:\n  scraper: crawl\n  params: {u: '{url.host}'}\n", "a placeholder is a field"),
        ("crawl: [\n", "cannot read the scraper map"),
    ],
)
def test_a_map_natscron_cannot_use_is_refused_naming_the_problem(
    tmp_path: Path, text: str, sentence: str
) -> None:
    with pytest.raises(ScraperMapError, match=sentence):
        load_scraper_map(write(tmp_path, text), None)
