"""Polite fetching's pure parts: hosts as KV tokens, a schedule's rules resolved against
the runner's settings (proxies from the environment), Retry-After and the backoff."""

from datetime import UTC, datetime, timedelta

import pytest

from natscron_runner.scrapers.errors import PermanentScrapeError
from natscron_runner.scrapers.polite import FetchParams, PoliteSettings
from natscron_runner.scrapers.polite.backoff import next_backoff, retry_after_seconds
from natscron_runner.scrapers.polite.hosts import Host, origin_of
from natscron_runner.scrapers.polite.rules import proxy_variable, resolve_rules

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_host_is_name_and_port_and_its_token_is_a_kv_key() -> None:
    assert Host.of("https://Example.com./a") == Host("example.com", 443)
    assert Host.of("http://example.com:8080/") == Host("example.com", 8080)
    assert Host.of("http://example.com/").token == "example.com.80"
    assert Host.of("http://[::1]:9/").token == "=3a=3a1.9"
    assert origin_of("HTTPS://Example.com/x?y") == "https://example.com:443"
    with pytest.raises(ValueError, match="names no host"):
        Host.of("http:///x")


def test_rules_take_the_stricter_rate_and_the_schedules_user_agent() -> None:
    settings = PoliteSettings(user_agent="natscron-test/1", max_requests_per_second=4)
    plain = resolve_rules(FetchParams(), settings, {}, "job")
    assert plain.user_agent == "natscron-test/1" and plain.min_interval_seconds == 0.25
    own = resolve_rules(
        FetchParams(user_agent="team-bot/2", max_requests_per_second=0.5, headers={"X-A": "1"}),
        settings,
        {},
        "job",
    )
    assert own.user_agent == "team-bot/2" and own.min_interval_seconds == 2.0
    assert own.request_headers() == {"X-A": "1", "User-Agent": "team-bot/2"}
    assert resolve_rules(FetchParams(), PoliteSettings(), {}, "job").min_interval_seconds is None


def test_a_proxy_is_named_and_its_url_comes_from_the_environment(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert proxy_variable("corp-eu") == "NATSCRON_PROXY_CORP_EU"
    environ = {"NATSCRON_PROXY_CORP_EU": "http://user:pass@127.0.0.1:3128"}
    rules = resolve_rules(FetchParams(proxy="corp-eu"), PoliteSettings(), environ, "job")
    assert rules.proxy_url == "http://user:pass@127.0.0.1:3128"
    assert "pass" not in repr(rules), "the proxy's credentials are never shown"
    with pytest.raises(PermanentScrapeError, match="set NATSCRON_PROXY_OTHER") as refused:
        resolve_rules(FetchParams(proxy="other"), PoliteSettings(), environ, "job")
    assert "pass" not in str(refused.value)
    resolve_rules(FetchParams(obey_robots=False), PoliteSettings(), {}, "job-7")
    assert "job job-7 does not obey robots.txt" in caplog.text


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds("Sun, 01 Mar 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0.0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_backoff_doubles_without_retry_after_is_capped_and_never_shortens() -> None:
    first = next_backoff(None, NOW, 503, None, 300, "r1")
    assert first.until == NOW + timedelta(seconds=1) and first.strikes == 1
    second = next_backoff(first, NOW, 503, None, 300, "r1")
    assert second.until == NOW + timedelta(seconds=2) and second.strikes == 2
    told = next_backoff(second, NOW, 429, "120", 60, "r2")
    assert told.until == NOW + timedelta(seconds=60), "capped"
    shorter = next_backoff(told, NOW, 429, "1", 60, "r1")
    assert shorter.until == told.until, "a backoff announced stands"
