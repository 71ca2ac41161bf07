"""Files only their owner can have written: written 0600 by rename, read back only when still private.

A cache under the user's cache folder is reused across processes, so a file there must not be one another
local user planted or could have edited. :func:`write_private` creates its folder 0700 and the file 0600
(``mkstemp``), then renames it into place. :func:`read_private` reads a file only when it and its folder
are owned by this user and writable by no one else, it is a regular file (not a link: opened with
``O_NOFOLLOW``) and not longer than a limit; otherwise it reads as absent, so a cache recomputes instead.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["private", "read_private", "write_private"]


def private(status: os.stat_result) -> bool:
    """Whether a file's or folder's ``stat`` shows it owned by this process's user and writable by no other."""
    owner = os.geteuid() if hasattr(os, "geteuid") else status.st_uid  # no owners to compare on Windows
    return status.st_uid == owner and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_private(path: Path, *, limit: int) -> bytes | None:
    """The bytes of ``path``, or None when it is missing, not a regular file, a link, not private (see
    :func:`private`, the folder too) or longer than ``limit`` bytes."""
    try:
        if not private(os.stat(path.parent)):
            return None
        # No link followed, and no wait on a planted FIFO; then judge the file opened, not whatever the name is now.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or not private(status) or status.st_size > limit:
            return None
        data = os.read(fd, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with ``data`` (mode 0600); a missing folder is created 0700.

    Raises:
        OSError: the folder cannot be made or written.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
