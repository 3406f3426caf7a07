"""`natscron scraper new NAME` writes a package that works as written: its own tests pass
against their local page, it passes ruff, and once its entry point is installed the runner's
registry finds the scraper, advertises its params schema and runs it against a local site."""

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from natscron.cli.main import main
from natscron.demo import PAGE_SIZE, DemoListingsSite, listing_params
from natscron.demo.listings import listings_page
from natscron.scraper_template import ScraperNames
from natscron_runner.advertise import describe_scrapers
from natscron_runner.scrapers.base import ScrapeContext
from natscron_runner.scrapers.registry import ENTRY_POINT_GROUP, ScraperRegistry
from natscron_shared.contract.catalogue import (
    Catalogue,
    ParamsRejectedError,
    ScraperEntry,
    check_job,
)

NAME = "sold-listings"
NAMES = ScraperNames(NAME)
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "sold"
    assert main(["scraper", "new", NAME, "--dir", str(directory)]) == 0
    return directory


def installed_entry_points(package: Path, site: Path) -> None:
    """What installing the package records, without building it: a dist-info with its
    metadata and the entry points of its pyproject.toml, on a path Python searches."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    dist_info = site / f"{NAMES.package}-{project['version']}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    sections = [
        f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items())
        for group, points in project["entry-points"].items()
    ]
    (dist_info / "entry_points.txt").write_text("\n".join(sections))


@pytest.fixture
def registered(package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    installed_entry_points(package, tmp_path / "site")
    monkeypatch.syspath_prepend(str(package / "src"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield
    for module in [name for name in sys.modules if name.startswith(NAMES.package)]:
        del sys.modules[module]


def test_the_package_has_a_scraper_its_params_a_test_and_the_entry_point(package: Path) -> None:
    files = {path.relative_to(package).as_posix() for path in package.rglob("*") if path.is_file()}
    assert files == {
        "pyproject.toml",
        "README.md",
        "src/natscron_scraper_sold_listings/__init__.py",
        "src/natscron_scraper_sold_listings/scraper.py",
        "src/natscron_scraper_sold_listings/py.typed",
        "tests/test_scraper.py",
    }
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["name"] == "natscron-scraper-sold-listings"
    assert project["entry-points"] == {
        ENTRY_POINT_GROUP: {NAME: "natscron_scraper_sold_listings:SoldListingsScraper"}
    }
    scraper = (package / "src" / NAMES.package / "scraper.py").read_text()
    assert "class SoldListingsParams(FetchParams):" in scraper
    assert 'name = "sold-listings"' in scraper


def test_its_own_tests_pass_against_their_local_page(package: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_it_passes_ruff(package: Path) -> None:
    for check in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(BIN / "ruff"), *check, "."],
            cwd=package,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.usefixtures("registered")
async def test_installed_the_runner_offers_and_runs_it() -> None:
    registry = ScraperRegistry()
    assert NAME in registry.names()
    about = describe_scrapers(registry)[NAME]
    assert (
        about.description == "One item per element matching `item_selector` on the page at `url`."
    )
    assert about.params_schema["additionalProperties"] is False
    catalogue = Catalogue(
        [
            ScraperEntry(
                scraper=NAME,
                params_schema=about.params_schema,
                runner_id="r",
                advertised_at=datetime.now(UTC),
            )
        ]
    )
    with pytest.raises(ParamsRejectedError, match="params.url"):
        check_job(catalogue, NAME, {"url": "ftp://example.test/"})

    site = DemoListingsSite()
    await site.start()
    try:
        params = {
            "url": listing_params(site.url, "austin-tx")["urls"][0],
            "item_selector": "article.listing",
        }
        assert check_job(catalogue, NAME, params) == "default"
        context = ScrapeContext(job_id="j-1", scheduled_job_id=None, attempt=1)
        items = [item async for item in registry.get(NAME).scrape(params, context)]
    finally:
        await site.stop()
    expected = listings_page("austin-tx", "for_sale", 1, datetime.now(UTC))
    assert [item.key for item in items] == [listing.listing_id for listing in expected]
    assert len(items) == PAGE_SIZE
    assert context.metadata == {"items_found": PAGE_SIZE}


def test_a_bad_name_or_a_used_directory_is_refused(
    package: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["scraper", "new", NAME, "--dir", str(package)]) == 2
    assert "exists and is not an empty directory" in capsys.readouterr().err
    assert main(["scraper", "new", "Sold.Listings", "--dir", str(tmp_path / "x")]) == 2
    assert "'Sold.Listings' cannot name a scraper package" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
