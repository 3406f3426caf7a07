"""natscron beyond POSIX: every module imports where POSIX is missing, as on Windows
(checked here, on Linux, in a Python where the POSIX-only modules cannot be imported and
the POSIX-only signals and `os` calls are gone), and `natscron.portable` keeps its promises
on this platform. Its Windows branches run only on Windows."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from natscron.errors import StackLockedError
from natscron.portable import pid_alive, try_lock
from natscron.stack import hold_stack_lock
from tests.workspace.test_layout import PACKAGE_DIRS, discover_modules

POSIX_ONLY_MODULES = ("fcntl", "termios", "tty", "pty", "resource", "grp", "pwd", "syslog")
WINDOWS_SIGNALS = frozenset(
    {"SIGABRT", "SIGFPE", "SIGILL", "SIGINT", "SIGSEGV", "SIGTERM", "SIGBREAK"}
)
POSIX_ONLY_OS_CALLS = ("fork", "setsid", "killpg", "getpgid", "getuid", "geteuid", "uname")

IMPORT_ALL = textwrap.dedent(
    """
    import importlib, importlib.abc, json, os, pkgutil, signal, sys

    hidden, windows_signals, os_calls, packages = json.loads(sys.argv[1])

    class PosixHidden(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name in hidden:
                raise ImportError(f"No module named {name!r} (hidden: as on Windows)")
            return None

    sys.meta_path.insert(0, PosixHidden())
    for name in hidden:
        sys.modules.pop(name, None)
    for name in [n for n in vars(signal) if n.startswith("SIG") and not n.startswith("SIG_")]:
        if name not in windows_signals:
            delattr(signal, name)
    for name in os_calls:
        delattr(os, name)

    imported, failed = [], {}

    def load(name):
        try:
            module = importlib.import_module(name)
        except BaseException as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
            return None
        imported.append(name)
        return module

    for package in packages:
        top = load(package)
        if top is None:
            continue
        for info in pkgutil.walk_packages(
            top.__path__, package + ".", onerror=lambda name: load(name)
        ):
            load(info.name)
    print(json.dumps({"imported": imported, "failed": failed}))
    """
)


def test_every_natscron_module_imports_without_posix_only_modules() -> None:
    packages = sorted(PACKAGE_DIRS)
    argument = json.dumps(
        [POSIX_ONLY_MODULES, sorted(WINDOWS_SIGNALS), POSIX_ONLY_OS_CALLS, packages]
    )
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, argument],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["failed"] == {}
    assert set(result["imported"]) == set(discover_modules(PACKAGE_DIRS))


def test_the_walk_would_see_an_import_time_use_of_a_hidden_module() -> None:
    """The check itself can fail: a module that imports `fcntl` is reported."""
    script = IMPORT_ALL.replace("module = importlib.import_module(name)", "import fcntl", 1)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            json.dumps([POSIX_ONLY_MODULES, sorted(WINDOWS_SIGNALS), [], ["natscron.cli"]]),
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    failed = json.loads(done.stdout.splitlines()[-1])["failed"]
    assert failed["natscron.cli"] == "ImportError: No module named 'fcntl' (hidden: as on Windows)"


def test_a_file_locked_once_cannot_be_locked_again_until_closed(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with path.open("a+b") as first, path.open("a+b") as second:
        assert try_lock(first)
        assert not try_lock(second)
        first.close()
        assert try_lock(second)


def test_a_second_stack_lock_names_the_holder(tmp_path: Path) -> None:
    with (
        hold_stack_lock(tmp_path),
        pytest.raises(StackLockedError) as refused,
        hold_stack_lock(tmp_path),
    ):
        pass
    assert f"pid {os.getpid()}" in str(refused.value)
    with hold_stack_lock(tmp_path):
        pass


def test_a_pid_is_alive_until_its_process_is_reaped() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
