"""One search at a time in a folder: a lock on DIR/search.lock held for the search's life.

The lock is the operating system's (flock), so it is released when its process ends in
any way, SIGKILL and crashes included: a killed search never leaves a stale lock. The
file stays in the folder (removing it would let two processes hold locks on two
different files of one name); it says who holds or last held the lock, so that a refused
search can name the one that is running. Readers (`nasforge report`, the dashboard) take
no lock. flock does not reach across machines on every network file system: a store on
one is not covered (docs/search.md).
"""

from __future__ import annotations

import errno
import os
import socket
import sys
import time
from pathlib import Path

from .config import ConfigError

LOCK_FILE = "search.lock"


class SearchLock:
    """The held lock of one search folder; `release()` (or the process's end) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, folder: Path) -> SearchLock:
        """Lock `folder` for this process; ConfigError naming the holder when it is taken,
        or saying that the folder is read-only."""
        path = folder / LOCK_FILE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise _unwritable(folder, err) from None
        if sys.platform == "win32":  # no flock: one writer is the user's to keep
            return cls(path, fd)
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise _busy(folder, holder) from None
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = None


def check_unlocked(folder: Path) -> None:
    """ConfigError naming the holder when a search holds `folder`'s lock; creates nothing."""
    path = folder / LOCK_FILE
    if sys.platform == "win32" or not path.is_file():
        return
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _busy(folder, _read(fd)) from None
    finally:
        os.close(fd)  # also releases the shared lock just taken


def _read(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 200).decode("utf-8", "replace").strip()
    return text or "a process that has not yet said who it is"


def _unwritable(folder: Path, err: OSError) -> ConfigError:
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ConfigError(
            f"{folder} is read-only ({err.strerror}): a search cannot write there. "
            f"`nasforge report {folder}` reads it as it is; to continue the search, copy "
            "the whole folder to a writable place and resume it there"
        )
    return ConfigError(f"cannot create {folder / LOCK_FILE}: {err.strerror or err}")


def _busy(folder: Path, holder: str) -> ConfigError:
    return ConfigError(
        f"another search is running in {folder}: {holder} (it holds {folder / LOCK_FILE}). "
        "One search writes a folder at a time: wait for it to end or stop it, then run "
        "the command again (with --resume to continue it), or choose another --out"
    )
