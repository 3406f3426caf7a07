"""URL normalisation and the crawl's scope: when two links are one page, which are followed."""

import pytest

from natscron_runner.scrapers.crawl_params import CrawlParams
from natscron_runner.scrapers.crawl_scope import Scope
from natscron_runner.scrapers.frontier import Frontier
from natscron_runner.scrapers.urls import normalise_url


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("HTTP://Example.COM/a", "http://example.com/a"),
        ("http://example.com.:80/a", "http://example.com/a"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        ("http://example.com/a#section", "http://example.com/a"),
        ("http://example.com/a/./b/../c", "http://example.com/a/c"),
        ("http://example.com/a/..", "http://example.com/"),
        ("http://example.com/%7euser", "http://example.com/%7Euser"),
        ("http://example.com/?b=2&a=1&a=0", "http://example.com/?a=1&a=0&b=2"),
        ("http://example.com/p?", "http://example.com/p"),
        ("http://example.com/p?a=", "http://example.com/p?a="),
        ("http://example.com/docs/", "http://example.com/docs/"),
        ("http://example.com/docs", "http://example.com/docs"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_normalisation_rules(url: str, normalised: str) -> None:
    assert normalise_url(url) == normalised


@pytest.mark.parametrize(
    "url",
    [
        "mailto:someone@example.com",
        "javascript:void(0)",
        "ftp://example.com/file",
        "http://user:secret@example.com/",
        "http://example.com:notaport/",
        "http:///no-host",
        "http://example.com/" + "x" * 3000,
    ],
)
def test_what_is_no_page_to_crawl(url: str) -> None:
    assert normalise_url(url) is None


def test_scope_is_the_seeds_hosts_with_subdomains_and_the_patterns() -> None:
    params = CrawlParams(urls=["http://example.com/"], deny=[r"/private/"])
    scope = Scope.of(params, ["http://example.com/"])
    assert scope.follows("http://example.com/a")
    assert scope.follows("https://docs.example.com/a")
    assert not scope.follows("http://notexample.com/a")
    assert not scope.follows("http://example.com/private/a")

    listed = CrawlParams(
        urls=["http://example.com/"], allowed_domains=["Other.ORG"], allow=[r"/blog/"]
    )
    scope = Scope.of(listed, ["http://example.com/"])
    assert scope.follows("http://other.org/blog/1")
    assert not scope.follows("http://other.org/shop/1")
    assert not scope.follows("http://example.com/blog/1")


def test_the_frontier_queues_each_url_once_within_its_bound_and_round_trips() -> None:
    frontier = Frontier.start(["http://a/", "http://a/"], max_queue=3)
    assert list(frontier.queue) == [("http://a/", 0)]
    assert frontier.offer("http://a/x", 1) and not frontier.offer("http://a/x", 2)
    assert frontier.offer("http://a/y", 1)
    assert not frontier.offer("http://a/z", 1), "the queue is full"
    frontier.in_flight = ("http://a/", 0)
    frontier.note_disallowed("http://a/secret")
    copy = Frontier.from_state(frontier.to_state())
    assert copy == frontier
    with pytest.raises(ValueError, match="version"):
        Frontier.from_state({"version": 99})
    with pytest.raises(ValueError, match="unreadable"):
        Frontier.from_state({**frontier.to_state(), "queue": [["only-a-url"]]})
    assert frontier.trim() == 2 and list(frontier.queue) == [("http://a/", 0)]


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"item_selector": "li"}, "needs a key_field"),
        ({"key_field": "title"}, "not one of fields"),
        ({"deny": ["("]}, "invalid regular expression"),
        ({"allowed_domains": ["not a host"]}, "not a host name"),
        ({"link_selector": "a[[["}, "invalid CSS selector"),
        ({"max_pages": 0}, "max_pages"),
        ({"headers": {"User-Agent": "x"}}, "user_agent"),
        ({"headers": {"X-Bad": "a\r\nb"}}, "line break"),
        ({"cookies": {"session": "a;b"}}, "';'"),
        ({"proxy": "corp proxy"}, "proxy"),
    ],
)
def test_invalid_crawl_params_are_refused(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        CrawlParams.model_validate({"urls": ["http://example.com/"], **change})
