"""Private files: written 0600 in a 0700 folder, read back only while this user's own and writable by no one else;
a link, a planted or loosened file or folder, or an oversized file reads as absent."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from memcubed.backends.privatefile import read_private, write_private

NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_a_written_file_is_private_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cache.json"
    write_private(path, b"{}")
    write_private(path, b'{"a": 1}')  # replaced whole
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert read_private(path, limit=8) == b'{"a": 1}'
    assert [p.name for p in path.parent.iterdir()] == ["cache.json"]  # no temporary left


def test_a_missing_file_reads_as_absent(tmp_path: Path) -> None:
    assert read_private(tmp_path / "none.json", limit=10) is None
    assert read_private(tmp_path / "no" / "folder.json", limit=10) is None


def _link(path: Path) -> None:
    target = path.with_name("elsewhere")
    path.rename(target)
    path.symlink_to(target)


ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HOSTILE: dict[str, Callable[[Path], None]] = {
    "group-writable file": lambda p: p.chmod(0o620),
    "other-writable file": lambda p: p.chmod(0o602),
    **({"file of another user": lambda p: os.chown(p, NOBODY, NOBODY)} if ROOT else {}),  # only root gives files
    "group-writable folder": lambda p: p.parent.chmod(0o770),
    "other-writable folder": lambda p: p.parent.chmod(0o707),
    **({"folder of another user": lambda p: os.chown(p.parent, NOBODY, NOBODY)} if ROOT else {}),
    "link": _link,
    "folder in its place": lambda p: (p.unlink(), p.mkdir()),
    "FIFO in its place": lambda p: (p.unlink(), os.mkfifo(p, 0o600)),  # would block a plain open
}


@pytest.mark.parametrize("plant", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_planted_or_loosened_file_reads_as_absent(tmp_path: Path, plant: Callable[[Path], None]) -> None:
    path = tmp_path / "private" / "cache.json"
    write_private(path, b"{}")
    plant(path)
    assert read_private(path, limit=10) is None


def test_an_oversized_file_reads_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "private" / "cache.json"
    write_private(path, b"x" * 11)
    assert read_private(path, limit=10) is None
    assert read_private(path, limit=11) == b"x" * 11
