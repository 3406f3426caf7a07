"""`natscron scraper new NAME`: a package to start a scraper of one's own from.

It holds the scraper (with its params model, so `natscron apply` checks a schedule's params
before it is written), a test against a page served on 127.0.0.1, and the `natscron.scrapers`
entry point that makes a runner it is installed into offer it (docs/scrapers.md).
"""

import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from string import Template

from natscron_shared.contract.errors import BadRequestError

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,29}$")
"""A scraper name that is also the root of a Python package's and a distribution's name."""
TEMPLATES = files(__package__) / "files"
FILES = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "src/{package}/__init__.py": "package_init.py.tmpl",
    "src/{package}/scraper.py": "scraper.py.tmpl",
    "src/{package}/py.typed": "py.typed.tmpl",
    "tests/test_scraper.py": "test_scraper.py.tmpl",
}
"""Where each file goes in the package (`{package}`: its Python package), from which template."""


@dataclass(frozen=True)
class ScraperNames:
    """Every name the package derives from the scraper's."""

    scraper: str

    @property
    def package(self) -> str:
        return "natscron_scraper_" + self.scraper.replace("-", "_")

    @property
    def distribution(self) -> str:
        return "natscron-scraper-" + self.scraper.replace("_", "-")

    @property
    def camel(self) -> str:
        return "".join(part.capitalize() for part in re.split(r"[-_]", self.scraper) if part)

    def substitutions(self) -> dict[str, str]:
        return {
            "scraper": self.scraper,
            "package": self.package,
            "distribution": self.distribution,
            "scraper_class": f"{self.camel}Scraper",
            "params_class": f"{self.camel}Params",
        }


def default_directory(name: str) -> Path:
    return Path(ScraperNames(name).distribution)


def new_scraper_package(name: str, directory: Path) -> list[Path]:
    """Write the package of scraper `name` into `directory` (new, or empty); the files
    written. `BadRequestError` for a name that cannot be one, or a directory in use."""
    if not NAME.match(name):
        raise BadRequestError(
            f"{name!r} cannot name a scraper package: lowercase letters, digits, '_' and '-',"
            " starting with a letter, at most 30"
        )
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BadRequestError(f"{directory} exists and is not an empty directory; choose another")
    names = ScraperNames(name)
    values = names.substitutions()
    written: list[Path] = []
    for target, template in FILES.items():
        path = directory / target.format(package=names.package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template((TEMPLATES / template).read_text()).substitute(values))
        written.append(path)
    return written
