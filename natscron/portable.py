"""What POSIX and Windows do differently, one call each: an exclusive lock on an open file
that the OS drops when its holder dies, and whether a process is alive.

The platform's own modules (`fcntl`; `msvcrt` and kernel32) are imported inside the calls,
never at import time, so every natscron module imports on every platform
(tests/cli/test_portable.py).
"""

import os
import sys
from typing import BinaryIO

WINDOWS_LOCKED_BYTE = 2**31 - 2
"""Windows locks are mandatory: a locked byte cannot be read by anyone else. The lock is
on one byte far past the end of the file, so the holder's pid at its start stays readable."""


def try_lock(file: BinaryIO) -> bool:
    """Take an exclusive lock on `file` without waiting; False if another process has it.
    The lock lasts until the file is closed or the process dies, however it dies."""
    if sys.platform == "win32":
        import msvcrt

        file.seek(WINDOWS_LOCKED_BYTE)
        try:
            msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
        except PermissionError:
            return False
        finally:
            file.seek(0)
        return True
    import fcntl

    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (one we may not signal counts)."""
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


if sys.platform == "win32":
    PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    ERROR_ACCESS_DENIED = 5
    STILL_ACTIVE = 259

    def _windows_pid_alive(pid: int) -> bool:
        """Not `os.kill(pid, 0)`: on Windows, signal 0 is CTRL_C_EVENT, sent to the process."""
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return ctypes.get_last_error() == ERROR_ACCESS_DENIED
        try:
            code = ctypes.c_ulong()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
