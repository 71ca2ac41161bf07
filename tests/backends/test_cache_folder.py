"""``build_cache_folder``, which the ONNX export and the static distillation publish through: a build lands whole
or not at all, and a first use that loses the rename keeps the winner's folder only when it is complete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.backends.models.packaged import build_cache_folder, cache_root
from memcubed.engines.lora import basecache


def _complete(folder: Path) -> bool:
    return (folder / "model.bin").is_file()


def _write(work: Path) -> None:
    (work / "model.bin").write_bytes(b"weights")


def test_a_build_is_renamed_into_place_and_leaves_no_work_folder(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "model"
    build_cache_folder(target, _write, ready=_complete, prefix=".build-")
    assert (target / "model.bin").read_bytes() == b"weights"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model"]


def test_a_failed_build_leaves_neither_target_nor_work_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def _fail(work: Path) -> None:
        (work / "model.bin").write_bytes(b"half")
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError, match="export crashed"):
        build_cache_folder(target, _fail, ready=_complete, prefix=".build-")
    assert list(tmp_path.iterdir()) == []


def test_a_lost_race_keeps_the_winners_complete_folder(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def _race(work: Path) -> None:  # another first use publishes while this one builds
        target.mkdir()
        (target / "model.bin").write_bytes(b"winner")
        (target / "extra").write_bytes(b"")  # non-empty: the rename onto it fails
        (work / "model.bin").write_bytes(b"loser")

    build_cache_folder(target, _race, ready=_complete, prefix=".build-")
    assert (target / "model.bin").read_bytes() == b"winner"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_incomplete_folder_in_the_way_is_an_error_not_a_cache_hit(tmp_path: Path) -> None:
    target = tmp_path / "model"

    def _blocked(work: Path) -> None:
        target.mkdir()
        (target / "partial").write_bytes(b"")  # complete by no ``ready``
        _write(work)

    with pytest.raises(OSError):
        build_cache_folder(target, _blocked, ready=_complete, prefix=".build-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert not _complete(target)


def test_the_test_session_has_its_own_cache_with_the_users_conversions_linked(lm: LocalTransformersLM,
                                                                               tmp_path: Path) -> None:
    root = cache_root()
    assert root.is_relative_to(tmp_path.parents[1])  # under this session's pytest folder, not the user's
    model = lm.source  # the converted packaged model, found in the session's cache
    assert isinstance(model, Path) and model.parent == root / "models"
    assert basecache.cache_folder().parent == root
    for link in (root / kind / name for kind in ("models", "onnx", "static") for name in os.listdir(root / kind)):
        assert not link.is_symlink() or not link.resolve().is_relative_to(root)  # links lead out, to the user's
