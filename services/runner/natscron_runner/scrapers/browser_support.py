"""Whether this runner can drive a browser: Playwright installed, and a Chromium to launch.

Imports no Playwright, so a runner without the `browser` extra can ask.
"""

import importlib.util
import os
import shutil
from pathlib import Path


def chromium_executable(configured: Path | None) -> str | None:
    """The configured Chromium if given, else `chromium` on the PATH."""
    if configured is not None:
        return str(configured)
    return shutil.which("chromium")


def why_no_browser(configured: Path | None) -> str | None:
    """Why the browser scrapers cannot run here, or None when they can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (the natscron-runner[browser] extra)"
    executable = chromium_executable(configured)
    if executable is None:
        return "no `chromium` on the PATH (install Debian's, or set NATSCRON_CHROMIUM_PATH)"
    if not os.access(executable, os.X_OK):
        return f"NATSCRON_CHROMIUM_PATH={executable} is not an executable file"
    return None
