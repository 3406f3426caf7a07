"""NATSCRON_TEST_SERVERS, as a user meets it: a `pytest` run in a subprocess with the
`tests.servers` plugin, on a test file that needs no server."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import docker_error

REPO = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, servers: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_trivial.py").write_text("def test_nothing() -> None:\n    pass\n")
    environment = {**os.environ, "PYTHONPATH": str(REPO), "NATSCRON_TEST_SERVERS": servers}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.servers", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_embedded_is_reported_in_the_header(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "embedded")
    assert run.returncode == pytest.ExitCode.OK, run.stdout + run.stderr
    assert "natscron test servers: embedded (nats-server 2." in run.stdout


def test_an_unknown_choice_stops_the_session_with_the_choices(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "kubernetes")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "NATSCRON_TEST_SERVERS='kubernetes': choose one of embedded, containers" in run.stderr


@pytest.mark.skipif(docker_error() is None, reason="a Docker engine answers here")
def test_containers_without_docker_stop_the_session_without_falling_back(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "containers")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR
    assert "NATSCRON_TEST_SERVERS=containers needs a Docker engine, and none answers" in run.stderr
    assert "passed" not in run.stdout
