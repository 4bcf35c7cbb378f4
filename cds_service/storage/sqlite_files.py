"""A SQLite database whose files are deleted, replaced or truncated under the running service.

An open connection keeps writing into a deleted file (answering 200 for records that vanish at the next
start), and a WAL index (`-shm`, memory-mapped) truncated under it kills the process with SIGBUS. So, at
every checkout (one `stat` or two, a few µs):
- the database file must still be the one the connection opened (same device and inode) and writable;
  otherwise every pooled connection is dropped and a new one is opened, which fails while the file is gone
  (the engine opens existing files only: `mode=rw`) -> the caller's write fails -> 503;
- a `-shm` shorter than SQLite's 32 KiB index region is extended back with zeros, which SQLite reads as an
  index to rebuild from the WAL, instead of faulting on the missing pages.
A truncation in the middle of a statement can still fault; `faulthandler` then logs where (app start-up).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import InvalidatePoolError

_IDENTITY = "cds_sqlite_identity"
_SHM_REGION = 32 * 1024  # SQLite's WAL-index region size (WALINDEX_PGSZ)


def guard_sqlite_files(engine: Engine, path: Path) -> None:
    shm = path.with_name(path.name + "-shm")

    def remember(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDENTITY] = _identity(path)

    def check(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        _extend_truncated_index(shm)
        current = _identity(path)
        if current is None or current != record.info.get(_IDENTITY) or not os.access(path, os.W_OK):
            raise InvalidatePoolError("SQLite database file removed, replaced or not writable")

    event.listen(engine, "connect", remember)
    event.listen(engine, "checkout", check)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _extend_truncated_index(shm: Path) -> None:
    try:
        size = shm.stat().st_size
        if 0 < size < _SHM_REGION or (size == 0 and _has_wal(shm)):
            os.truncate(shm, _SHM_REGION)
    except OSError:
        return  # no -shm (no connection has it open yet), or it cannot be changed: SQLite will say so


def _has_wal(shm: Path) -> bool:
    wal = shm.with_name(shm.name.removesuffix("-shm") + "-wal")
    try:
        return wal.stat().st_size > 0
    except OSError:
        return False
