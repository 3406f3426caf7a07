"""The workspace's layering, checked so that it cannot quietly erode.

natscron is one uv workspace with six distributions: the contract (natscron-shared),
four services that each ship as their own image-sized install (ticker, runner,
recorder, api) and the root project (CLI, demo, embedded dev stack). The split only pays
off while it holds, so three kinds of test guard it:

1. the static import graph of our source: the contract imports no service and not
   the app, a service imports only the contract and itself, no import cycles, and
   nothing but the recorder reaches into the recorder's modules (the storage schema is
   the contract's);
2. the built wheels install only top-level names that start with ``natscron``, so a
   service never drops a stray ``utils`` package into someone's site-packages;
3. a fresh venv with one service (synced from uv.lock, as the Dockerfile does) holds
   and imports none of the other services' heavy dependencies.

2 and 3 shell out to uv (offline: the cache that ``make`` filled has everything) and
take a few seconds; they run in the normal suite under a hard time budget.
"""

import ast
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("natscron", "shared", "services")
APP = "natscron"
CONTRACT = "natscron_shared"
SERVICES = ("natscron_ticker", "natscron_runner", "natscron_recorder", "natscron_api")
RECORDER = "natscron_recorder"
BENCH = "bench"

# Which of our top-level packages each of our packages may import. Third-party
# imports are always allowed; anything else named natscron* is not.
MAY_IMPORT: dict[str, frozenset[str]] = {
    CONTRACT: frozenset({CONTRACT}),
    **{service: frozenset({service, CONTRACT}) for service in SERVICES},
    APP: frozenset({APP, CONTRACT, *SERVICES}),
}

# Heavy dependencies, by distribution, with the top-level modules each installs.
HEAVY_DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "httpx": ("httpx",),
    "beautifulsoup4": ("bs4",),
    "pymongo": ("pymongo", "bson", "gridfs"),
    "fastapi": ("fastapi",),
    "uvicorn": ("uvicorn",),
    "pyjwt": ("jwt",),
}
API_ONLY = frozenset({"fastapi", "uvicorn", "pyjwt"})

# Which heavy dependencies each distribution must install without.
MUST_NOT_INSTALL: dict[str, frozenset[str]] = {
    "natscron-shared": frozenset(HEAVY_DEPENDENCIES),
    "natscron-ticker": frozenset(HEAVY_DEPENDENCIES),
    "natscron-runner": frozenset({"pymongo"}) | API_ONLY,
    "natscron-recorder": frozenset({"beautifulsoup4"}) | API_ONLY,  # httpx: it sends webhooks
    "natscron-api": frozenset({"httpx", "beautifulsoup4"}),
}

# What may import a module of the recorder, besides the recorder, and why. Everything else
# reads MongoDB through the contract (`natscron_shared.contract.storage`,
# `natscron_shared.runtime.mongo`) and starts the recorder through its package's entry
# (`from natscron_recorder import RecorderService`). Tests are not checked: the recorder's
# own tests use its modules, and others write documents with its writers so that what they
# read is what the recorder writes.
MAY_IMPORT_RECORDER_MODULES: dict[str, str] = {
    "bench.history": "it measures the recorder's own run history writes",
}

# Modules that need an extra of their own distribution: a venv of the distribution alone
# goes without them. Another distribution that imports one takes the extra; the owner
# imports one only lazily (inside a function, once it knows the extra is installed), and
# the contract never.
BROWSER_EXTRA = "natscron-runner[browser]"
OPTIONAL_MODULES: dict[str, str] = {
    "natscron_shared.runtime.mongo": "natscron-shared[mongo]",
    "natscron_shared.runtime.mongo_transaction": "natscron-shared[mongo]",
    **{
        f"natscron_runner.scrapers.{name}": BROWSER_EXTRA
        for name in (
            "browser_rules",
            "browser_scraper",
            "chromium",
            "chromium_scrapers",
            "cookie_scan",
            "cookie_setters",
            "page_tools",
            "sites",
        )
    },
}

UV_BUDGET_SECONDS = 60


# --- the workspace, as its pyproject.toml files declare it ------------------------------


@dataclass(frozen=True)
class Distribution:
    """One workspace member: its distribution name and the package dirs its wheel ships."""

    name: str
    package_dirs: Mapping[str, Path]


def load_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        return tomllib.load(file)


def read_distribution(member: Path) -> Distribution:
    """Hatch's ``packages`` entries are directories; the package is named by the last part."""
    config = load_toml(member / "pyproject.toml")
    packages = config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return Distribution(config["project"]["name"], {Path(p).name: member / p for p in packages})


def read_workspace(root: Path) -> list[Distribution]:
    """The root project first, then the members (globs allowed, as uv allows them)."""
    patterns = load_toml(root / "pyproject.toml")["tool"]["uv"]["workspace"]["members"]
    members = [path for pattern in patterns for path in sorted(root.glob(pattern))]
    return [read_distribution(root), *(read_distribution(member) for member in members)]


WORKSPACE = read_workspace(ROOT)
DISTRIBUTIONS = {distribution.name: distribution for distribution in WORKSPACE}
PACKAGE_DIRS = {name: path for d in WORKSPACE for name, path in d.package_dirs.items()}


# --- the static import graph -------------------------------------------------------------


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``target`` at ``line``; ``type_checking`` if under TYPE_CHECKING,
    ``lazy`` if inside a function."""

    importer: Module
    target: str
    line: int
    type_checking: bool
    lazy: bool = False

    def __str__(self) -> str:
        where = f"{self.importer.path}:{self.line}"
        return f"{self.importer.name} imports {self.target} ({where})"


def discover_modules(package_dirs: Mapping[str, Path]) -> dict[str, Module]:
    """Every .py file of the given packages, by dotted module name."""
    modules: dict[str, Module] = {}
    for package, directory in package_dirs.items():
        for path in sorted(directory.rglob("*.py")):
            parts = (package, *path.relative_to(directory).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            modules[name] = Module(name, path, is_package)
    return modules


def resolve_from(module: Module, target: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    if level == 0:
        assert target is not None
        return target
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    parts = package.split(".")
    if level > len(parts):
        raise ValueError(f"{module.path}: relative import beyond the top-level package")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{target}" if target else base


def is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class ImportCollector(ast.NodeVisitor):
    """All imports of one module, at any depth (lazy imports in functions count too)."""

    def __init__(self, module: Module, known_modules: Collection[str]) -> None:
        self.module = module
        self.known_modules = known_modules
        self.imports: list[Import] = []
        self.type_checking = False
        self.functions = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.functions += 1
        self.generic_visit(node)
        self.functions -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if not is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self.type_checking = self.type_checking, True
        for statement in node.body:
            self.visit(statement)
        self.type_checking = outer
        for statement in node.orelse:
            self.visit(statement)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        """``from pkg import name`` imports module ``pkg.name`` if there is one, else ``pkg``."""
        base = resolve_from(self.module, node.module, node.level)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self.add(submodule if submodule in self.known_modules else base, node)

    def add(self, target: str, node: ast.stmt) -> None:
        self.imports.append(
            Import(self.module, target, node.lineno, self.type_checking, self.functions > 0)
        )


def imports_of(module: Module, known_modules: Collection[str]) -> list[Import]:
    collector = ImportCollector(module, known_modules)
    collector.visit(ast.parse(module.path.read_text(encoding="utf-8"), str(module.path)))
    return collector.imports


def import_graph(modules: Mapping[str, Module]) -> list[Import]:
    return [found for module in modules.values() for found in imports_of(module, modules)]


def top_level(name: str) -> str:
    return name.partition(".")[0]


def layering_violations(
    imports: Iterable[Import], may_import: Mapping[str, Collection[str]]
) -> list[str]:
    """Imports of our (natscron*) packages that the importer's layer may not use."""
    return [
        str(found)
        for found in imports
        if top_level(found.target).startswith("natscron")
        and top_level(found.target) not in may_import[top_level(found.importer.name)]
    ]


def recorder_modules_imported(
    imports: Iterable[Import], allowed: Mapping[str, str] = MAY_IMPORT_RECORDER_MODULES
) -> list[str]:
    """Imports of a module below `natscron_recorder` from outside it (and not `allowed`)."""
    return [
        str(found)
        for found in imports
        if found.target.startswith(f"{RECORDER}.")
        and top_level(found.importer.name) != RECORDER
        and found.importer.name not in allowed
    ]


def runtime_edges(imports: Iterable[Import], modules: Collection[str]) -> dict[str, set[str]]:
    """Edges between our modules that run at import time (a module's self-import is no edge)."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for found in imports:
        source = found.importer.name
        if found.target in modules and found.target != source and not found.type_checking:
            edges[source].add(found.target)
    return edges


def find_cycles(edges: Mapping[str, Collection[str]]) -> list[tuple[str, ...]]:
    """One cycle per back edge of a depth-first search: none exactly when the graph is acyclic."""
    on_path: list[str] = []
    done: set[str] = set()
    cycles: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        on_path.append(node)
        for child in sorted(edges.get(node, ())):
            if child in on_path:
                cycles.append((*on_path[on_path.index(child) :], child))
            elif child not in done:
                visit(child)
        on_path.pop()
        done.add(node)

    for start in sorted(edges):
        if start not in done:
            visit(start)
    return cycles


@pytest.fixture(scope="module")
def our_modules() -> dict[str, Module]:
    return discover_modules(PACKAGE_DIRS)


@pytest.fixture(scope="module")
def our_imports(our_modules: dict[str, Module]) -> list[Import]:
    return import_graph(our_modules)


def test_every_workspace_package_has_a_layer() -> None:
    """A new package must be placed in MAY_IMPORT, or the layering tests would skip it."""
    unplaced = sorted(set(PACKAGE_DIRS) ^ set(MAY_IMPORT))
    assert not unplaced, f"packages in the workspace or in MAY_IMPORT, not both: {unplaced}"


def test_every_source_file_belongs_to_a_package(our_modules: dict[str, Module]) -> None:
    """A .py outside the shipped packages would escape the import graph (and the wheels)."""
    scanned = {module.path for module in our_modules.values()}
    found = {path for top in SOURCE_DIRS for path in (ROOT / top).rglob("*.py")}
    stray = sorted(str(path.relative_to(ROOT)) for path in found - scanned)
    assert not stray, f"source files outside every shipped package: {stray}"


def test_the_graph_sees_the_known_edges(our_imports: list[Import]) -> None:
    """Guards the layering tests against passing on an empty graph."""
    imported_by = {(top_level(i.importer.name), top_level(i.target)) for i in our_imports}
    assert {(service, CONTRACT) for service in SERVICES} <= imported_by
    assert {(APP, service) for service in SERVICES} <= imported_by


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_package_imports_only_what_its_layer_may(package: str, our_imports: list[Import]) -> None:
    """The contract imports no service nor the app; a service, only the contract and itself."""
    own = [found for found in our_imports if top_level(found.importer.name) == package]
    violations = layering_violations(own, MAY_IMPORT)
    assert not violations, "layering broken:\n" + "\n".join(violations)


@pytest.fixture(scope="module")
def bench_imports() -> list[Import]:
    return import_graph(discover_modules({BENCH: ROOT / BENCH}))


def test_only_the_recorder_imports_its_modules(
    our_imports: list[Import], bench_imports: list[Import]
) -> None:
    """The API, the CLI, the migration and the benchmarks read MongoDB through the contract."""
    violations = recorder_modules_imported([*our_imports, *bench_imports])
    assert not violations, "the recorder's modules imported from outside:\n" + "\n".join(violations)


def test_the_recorder_exceptions_still_import_the_recorder(bench_imports: list[Import]) -> None:
    """An exception nobody needs any more is removed, not kept as a loophole."""
    importers = {i.importer.name for i in bench_imports if i.target.startswith(f"{RECORDER}.")}
    assert set(MAY_IMPORT_RECORDER_MODULES) <= importers


def test_no_import_cycles(our_modules: dict[str, Module], our_imports: list[Import]) -> None:
    """A cycle makes import order matter and breaks when someone imports the 'wrong' end."""
    cycles = find_cycles(runtime_edges(our_imports, our_modules))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# --- the graph functions, on tiny synthetic trees -----------------------------------------


def write_tree(root: Path, files: Mapping[str, str]) -> dict[str, Module]:
    """Writes ``files`` under ``root`` and returns the modules of its top-level packages."""
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    tops = dict.fromkeys(Path(relative).parts[0] for relative in files)
    return discover_modules({top: root / top for top in tops})


def targets(modules: Mapping[str, Module], importer: str) -> list[str]:
    return [found.target for found in imports_of(modules[importer], modules)]


def test_contract_importing_a_service_lazily_is_reported(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "natscron_shared/__init__.py": "",
            "natscron_shared/x.py": "def f() -> None:\n    from natscron_ticker import y\n",
            "natscron_ticker/__init__.py": "",
            "natscron_ticker/y.py": "",
        },
    )
    violations = layering_violations(import_graph(modules), MAY_IMPORT)
    path = tmp_path / "natscron_shared" / "x.py"
    assert violations == [f"natscron_shared.x imports natscron_ticker.y ({path}:2)"]


def test_services_may_not_import_each_other_nor_the_app(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "natscron_runner/__init__.py": "import natscron_recorder.z\nimport natscron\n",
            "natscron_runner/ok.py": "from natscron_shared import names\nimport httpx\n",
            "natscron_recorder/__init__.py": "",
            "natscron_recorder/z.py": "",
            "natscron_shared/__init__.py": "",
            "natscron_shared/names.py": "",
            "natscron/__init__.py": "import natscron_runner.ok, natscron_recorder\n",
        },
    )
    violations = layering_violations(import_graph(modules), MAY_IMPORT)
    assert [v.split(" (")[0] for v in violations] == [
        "natscron_runner imports natscron_recorder.z",
        "natscron_runner imports natscron",
    ]


def test_only_the_recorder_and_the_package_entry_reach_the_recorder(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "natscron_recorder/__init__.py": "from natscron_recorder.service import S\n",
            "natscron_recorder/service.py": "from natscron_recorder import mongo\n",
            "natscron_recorder/mongo.py": "",
            "natscron/__init__.py": "from natscron_recorder import S\nimport natscron_recorder\n",
            "natscron/cli.py": "def f() -> None:\n    from natscron_recorder.mongo import X\n",
            "bench/__init__.py": "",
            "bench/history.py": "from natscron_recorder import service\n",
            "bench/load.py": "import natscron_recorder.service\n",
        },
    )
    violations = recorder_modules_imported(import_graph(modules), {"bench.history": "measures"})
    assert [v.split(" (")[0] for v in violations] == [
        "natscron.cli imports natscron_recorder.mongo",
        "bench.load imports natscron_recorder.service",
    ]


def test_type_checking_imports_count_for_layering(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "natscron_shared/__init__.py": (
                "import typing\nif typing.TYPE_CHECKING:\n    import natscron\n"
            ),
            "natscron/__init__.py": "",
        },
    )
    assert len(layering_violations(import_graph(modules), MAY_IMPORT)) == 1


def test_relative_imports_resolve_to_modules_or_their_package(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from . import a\nfrom .a import helper\nfrom .sub import *\n",
            "pkg/a.py": "from pkg import something_in_init\nfrom .sub.b import B\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/b.py": "from .. import a\nfrom ..a import x\nfrom . import b\n",
            "pkg/sub/c.py": "from ...pkg import z\n",
        },
    )
    assert targets(modules, "pkg") == ["pkg.a", "pkg.a", "pkg.sub"]
    assert targets(modules, "pkg.a") == ["pkg", "pkg.sub.b"]
    assert targets(modules, "pkg.sub.b") == ["pkg.a", "pkg.a", "pkg.sub.b"]
    with pytest.raises(ValueError, match="beyond the top-level package"):
        targets(modules, "pkg.sub.c")


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    """pkg/__init__ imports pkg.a, which takes a name from pkg/__init__: a real cycle."""
    modules = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n\nHELPER = 1\n",
            "pkg/a.py": "import pkg.b\n",
            "pkg/b.py": "def f() -> None:\n    from pkg import HELPER\n",
        },
    )
    cycles = find_cycles(runtime_edges(import_graph(modules), modules))
    assert cycles == [("pkg", "pkg.a", "pkg.b", "pkg")]


def test_type_checking_imports_and_self_imports_make_no_cycle(tmp_path: Path) -> None:
    modules = write_tree(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\nfrom pkg import A as B\n",
            "pkg/a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    import pkg\nelse:\n    import json\n"
            ),
        },
    )
    imports = import_graph(modules)
    assert [(i.target, i.type_checking) for i in imports if i.importer.name == "pkg.a"] == [
        ("typing", False),
        ("pkg", True),
        ("json", False),
    ]
    assert find_cycles(runtime_edges(imports, modules)) == []


# --- the built wheels ----------------------------------------------------------------------


def uv(*args: str, env: Mapping[str, str] | None = None) -> str:
    """Runs the workspace's own uv (a dev dependency), failing the test with uv's stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "uv", *args],
        cwd=ROOT,
        env={**clean_environment(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=UV_BUDGET_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"uv {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def clean_environment() -> dict[str, str]:
    """The caller's environment minus what would point uv at the project's own venv."""
    drop = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def normalize(distribution: str) -> str:
    """PEP 503 spelling, so wheel file names and project names compare equal."""
    return distribution.lower().replace("_", "-").replace(".", "-")


def wheel_top_level_names(wheel: Path) -> set[str]:
    """What a wheel puts at the top of site-packages (metadata and .data dirs excluded)."""
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
    return {top.removesuffix(".py") for top in tops if not top.endswith((".dist-info", ".data"))}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All workspace wheels, built once (offline: hatchling is in the uv cache)."""
    out = tmp_path_factory.mktemp("wheels")
    uv("build", "--all-packages", "--wheel", "--offline", "--quiet", "-o", str(out))
    return {normalize(wheel.name.split("-")[0]): wheel for wheel in out.glob("*.whl")}


def test_wheel_top_level_names_are_read_from_the_archive(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in ("natscron_x/__init__.py", "utils/a.py", "six.py", "x-1.dist-info/RECORD"):
            archive.writestr(name, "")
        archive.writestr("x-1.data/scripts/run", "")
    assert wheel_top_level_names(wheel) == {"natscron_x", "utils", "six"}


@pytest.mark.timeout(UV_BUDGET_SECONDS)
def test_a_wheel_is_built_for_every_distribution(wheels: dict[str, Path]) -> None:
    assert sorted(wheels) == sorted(DISTRIBUTIONS), "uv build made other wheels than expected"


@pytest.mark.timeout(UV_BUDGET_SECONDS)
@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
def test_wheel_installs_only_natscron_names(distribution: str, wheels: dict[str, Path]) -> None:
    """Names outside ``natscron*`` would collide with other projects in site-packages."""
    names = wheel_top_level_names(wheels[distribution])
    assert set(DISTRIBUTIONS[distribution].package_dirs) <= names, f"{distribution}: {names}"
    stray = sorted(name for name in names if not name.startswith("natscron"))
    assert not stray, f"{distribution}'s wheel installs top-level names {stray}"


# --- one service per venv ------------------------------------------------------------------


# Runs inside the one-distribution venv: imports every module of the package named by
# argv[1] but those named after it (modules of an extra the venv goes without), and reports
# where the package came from and everything that got imported.
PROBE = """
import importlib, importlib.metadata, json, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if info.name not in sys.argv[2:]:
        importlib.import_module(info.name)
contract = importlib.metadata.distribution("natscron-shared")
print(json.dumps({
    "file": package.__file__,
    "modules": sorted(sys.modules),
    "contract_from": json.loads(contract.read_text("direct_url.json") or "{}").get("url"),
}))
"""


@dataclass(frozen=True)
class ServiceVenv:
    """A venv holding one distribution and its locked dependencies, and what it imported."""

    distribution: str
    path: Path
    installed: set[str]
    probe: dict[str, Any]


def sync_alone(distribution: str, venv: Path) -> Path:
    """``uv sync --package`` into ``venv``, non-editable, exactly as uv.lock pins it.

    ``--locked`` fails on a uv.lock that no longer matches the pyproject files. The
    ``--reinstall-package`` flags rebuild our distributions: uv would otherwise reuse a
    cached wheel of a workspace member until its pyproject.toml changes, and the probe
    would import yesterday's code.
    """
    rebuild = [arg for name in DISTRIBUTIONS for arg in ("--reinstall-package", name)]
    uv(
        *("sync", "--locked", "--offline", "--no-dev", "--no-editable", "--quiet"),
        *("--package", distribution, "--python", sys.executable, *rebuild),
        env={"UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    return venv / "bin" / "python"


def probe(python: Path, package: str, cwd: Path) -> dict[str, Any]:
    """Imports every module of ``package`` in isolated mode (no cwd, no PYTHONPATH), but
    those of an extra: installed alone, a distribution has none of its extras."""
    optional = [module for module in OPTIONAL_MODULES if top_level(module) == package]
    result = subprocess.run(
        [str(python), "-I", "-c", PROBE, package, *optional],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=UV_BUDGET_SECONDS,
        check=False,
    )
    assert result.returncode == 0, f"importing {package} alone failed:\n{result.stderr}"
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def declared_dependencies(distribution: str) -> list[str]:
    (directory,) = {path.parent for path in DISTRIBUTIONS[distribution].package_dirs.values()}
    dependencies: list[str] = load_toml(directory / "pyproject.toml")["project"]["dependencies"]
    return dependencies


def test_optional_modules_are_imported_only_with_their_extra(our_imports: list[Import]) -> None:
    """A distribution that imports a module of an extra must take the extra, or its venv
    would lack what the module needs; and the contract itself never imports one."""
    distribution_of = {package: d.name for d in WORKSPACE for package in d.package_dirs}
    missing = []
    for found in our_imports:
        extra = OPTIONAL_MODULES.get(found.target)
        importer = top_level(found.importer.name)
        if extra is None or OPTIONAL_MODULES.get(found.importer.name) == extra:
            continue  # not an extra's module, or imported by a module of the same extra
        if importer == CONTRACT:
            missing.append(f"{found} (the contract must work without its extras)")
        elif extra.startswith(distribution_of[importer] + "["):
            if not found.lazy:
                missing.append(f"{found}: import the module of an extra inside a function")
        elif extra not in declared_dependencies(distribution_of[importer]):
            missing.append(f"{found}, but {distribution_of[importer]} lacks the extra {extra}")
    assert not missing, "\n".join(missing)


def test_the_extras_are_declared() -> None:
    for requirement in set(OPTIONAL_MODULES.values()):
        distribution, _, extra = requirement.rstrip("]").partition("[")
        (directory,) = {path.parent for path in DISTRIBUTIONS[distribution].package_dirs.values()}
        extras = load_toml(directory / "pyproject.toml")["project"]["optional-dependencies"]
        assert extra in extras, f"{distribution} declares no extra {extra}"


def test_every_member_is_checked_alone() -> None:
    """A new service must say which heavy dependencies it goes without (maybe none)."""
    members = set(DISTRIBUTIONS) - {normalize(APP)}
    assert set(MUST_NOT_INSTALL) == members, "MUST_NOT_INSTALL is out of step with the workspace"


@pytest.fixture(scope="module", params=sorted(MUST_NOT_INSTALL))
def service_venv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ServiceVenv:
    distribution: str = request.param
    venv = tmp_path_factory.mktemp(distribution) / "venv"
    python = sync_alone(distribution, venv)
    listed = json.loads(uv("pip", "list", "--python", str(python), "--format", "json"))
    (package,) = DISTRIBUTIONS[distribution].package_dirs
    return ServiceVenv(
        distribution,
        venv,
        {normalize(entry["name"]) for entry in listed},
        probe(python, package, venv.parent),
    )


@pytest.mark.timeout(UV_BUDGET_SECONDS)
def test_venv_holds_the_distribution_and_the_contract(service_venv: ServiceVenv) -> None:
    """Also shows the venv is really separate: the app and the other services are absent."""
    others = set(DISTRIBUTIONS) - {service_venv.distribution, "natscron-shared"}
    assert {service_venv.distribution, "natscron-shared"} <= service_venv.installed
    extra = sorted(others & service_venv.installed)
    assert not extra, f"installing {service_venv.distribution} also installs {extra}"


@pytest.mark.timeout(UV_BUDGET_SECONDS)
def test_venv_takes_the_contract_from_the_workspace(service_venv: ServiceVenv) -> None:
    """Not some natscron-shared from an index, and the code under test is the installed copy."""
    assert service_venv.probe["contract_from"] == (ROOT / "shared").as_uri()
    assert Path(service_venv.probe["file"]).is_relative_to(service_venv.path)


@pytest.mark.timeout(UV_BUDGET_SECONDS)
def test_venv_installs_none_of_the_foreign_heavy_dependencies(service_venv: ServiceVenv) -> None:
    forbidden = MUST_NOT_INSTALL[service_venv.distribution]
    leaked = sorted(forbidden & service_venv.installed)
    assert not leaked, f"installing {service_venv.distribution} also installs {leaked}"


@pytest.mark.timeout(UV_BUDGET_SECONDS)
def test_venv_imports_no_foreign_heavy_dependency(service_venv: ServiceVenv) -> None:
    """Every module is imported, not only those the service's entry point happens to reach."""
    forbidden = {
        module
        for distribution in MUST_NOT_INSTALL[service_venv.distribution]
        for module in HEAVY_DEPENDENCIES[distribution]
    }
    loaded = {top_level(name) for name in service_venv.probe["modules"]}
    leaked = sorted(forbidden & loaded)
    assert not leaked, f"importing {service_venv.distribution}'s modules loads {leaked}"
