"""A run lock: at most one `dtg score` per ledger at a time (fcntl.flock on a lock file).

The kernel releases a flock when its holder dies, even by kill -9, so a crashed run never leaves a
stale lock behind. Holding the lock also means every 'running' ledger row belongs to a dead run.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from dtg.errors import DtgError

BUSY_EXIT_CODE = 3
"""Exit code of `dtg score --no-wait` when another run holds the lock (cron can tell "busy" from "failed")."""


class LockBusy(DtgError):
    """Another process holds the lock and we were told not to wait."""


class RunLock:
    """Exclusive lock on `path`; `wait=True` blocks until free (up to `timeout` seconds if given)."""

    def __init__(self, path: str | Path, wait: bool = False, timeout: float | None = None) -> None:
        self.path = Path(path)
        self.wait = wait
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._lock(fd)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def _lock(self, fd: int) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not self.wait or (deadline is not None and time.monotonic() >= deadline):
                    raise LockBusy(f"another dtg score run holds the lock (pid {self._holder(fd)}); "
                                   "rerun later or pass --wait", file=self.path) from None
                time.sleep(0.1)

    @staticmethod
    def _holder(fd: int) -> str:
        try:
            return os.pread(fd, 32, 0).decode().strip() or "unknown"
        except OSError:
            return "unknown"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
