"""``migrate`` copies into new stores only, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import memcubed
from memcubed import Conflict

OpenMc = Callable[..., memcubed.Memcubed]


def test_migrate_refuses_a_target_that_holds_data(open_mc: OpenMc, location: str, tmp_path: Path) -> None:
    open_mc(location).add("already here")
    source = str(tmp_path / "source.db")
    open_mc(source).add("to copy")
    with pytest.raises(Conflict):
        memcubed.migrate(source, location)
