"""The model allow-list: operations and jobs name a model by a configured id, and nothing else is ever loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

import memcubed
from memcubed import ConfigurationError, ValidationError
from memcubed.backends import models as model_backends
from memcubed.backends.models import LocalTransformersLM
from memcubed.kernel.base import utcnow
from memcubed.kernel.models import ModelRegistry
from memcubed.schemas.jobs import JobRecord, JobState
from memcubed.settings import Settings
from memcubed.testing.conformance.fixtures import OpenMc

HOSTILE = ["local:/etc", "../x", "/etc/passwd", "HuggingFaceTB/SmolLM2-360M-Instruct", "local:HuggingFaceTB/x",
           "openai:gpt-4o", "local ", "LOCAL", "", "x" * 5000]
FILESYSTEM_WORDS = ("/etc", "folder", "directory", "file", "path", "hub", "exist")


def _loaded_specs() -> set[str]:
    return set(model_backends._LOADED)


@pytest.mark.parametrize("name", HOSTILE)
def test_an_unknown_model_id_is_refused_naming_the_allowed_ids(name: str) -> None:
    registry = ModelRegistry({"local": "local", "gpt": "openai:gpt-4o-mini"}, base_url="http://127.0.0.1:9")
    before = _loaded_specs()
    for attempt in (lambda: registry.check(name), lambda: registry.get(name), lambda: registry.open(name)):
        with pytest.raises(ValidationError) as caught:
            attempt()
        assert caught.value.details == {"field": "model", "allowed": ["gpt", "local"]}
        assert "gpt, local" in caught.value.message
        assert not any(word in caught.value.message.lower() for word in FILESYSTEM_WORDS)
    assert _loaded_specs() == before and registry.loaded() == []


def test_non_strings_are_refused() -> None:
    registry = ModelRegistry({"local": "local"})
    for value in (1, ["local"], {"id": "local"}, b"local"):
        with pytest.raises(ValidationError):
            registry.check(value)


def test_an_api_model_is_refused_where_kv_is_needed() -> None:
    registry = ModelRegistry({"local": "local", "gpt": "openai:gpt-4o-mini"}, base_url="http://127.0.0.1:9")
    assert registry.check("gpt") == "gpt" and registry.check(None) == "local"
    with pytest.raises(ConfigurationError) as caught:
        registry.check("gpt", open_model=True)
    assert caught.value.details["allowed"] == ["local"]


def test_the_default_must_be_configured() -> None:
    with pytest.raises(ConfigurationError):
        ModelRegistry({"gpt": "openai:gpt-4o-mini"})
    with pytest.raises(ConfigurationError):
        ModelRegistry({})
    with pytest.raises(ConfigurationError):
        memcubed.open(Path("/nonexistent-dir-never-created") / "x.db", embedder="none",
                      settings=Settings(models={"gpt": "openai:m"}))


def test_settings_read_the_allow_list_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMCUBED_MODELS", '{"local": "local", "gpt": "openai:gpt-4o-mini"}')
    monkeypatch.setenv("MEMCUBED_DEFAULT_MODEL", "gpt")
    registry = ModelRegistry.from_settings(Settings())
    assert registry.ids() == ["gpt", "local"] and registry.default == "gpt"


@pytest.mark.parametrize("name", ["local:/etc", "../x", "HuggingFaceTB/SmolLM2-360M-Instruct"])
def test_a_job_naming_an_unknown_model_is_never_queued(open_mc: OpenMc, db_path: Path, name: str) -> None:
    mc = open_mc(db_path, embedder="none")
    cube = mc.add("the ferry leaves at nine")
    before = _loaded_specs()
    for kind in ("cache", "consolidate"):
        with pytest.raises(ValidationError) as caught:
            mc.submit_job(kind, cube_ids=[cube.id], model=name)
        assert caught.value.details["allowed"] == ["local"]
    assert mc.jobs() == [] and _loaded_specs() == before


def test_a_queued_job_with_an_unknown_model_fails_without_loading_it(open_mc: OpenMc, db_path: Path) -> None:
    """A job already in the queue (an older server's, or an id the operator has since removed) is resolved
    against the worker's allow-list too."""
    mc = open_mc(db_path, embedder="none")
    cube = mc.add("the ferry leaves at nine")
    job = JobRecord(id="01a20ee7-ce89-7000-b5f9-03900b03a199", kind="cache", principal="admin",
                    params={"cube_ids": [cube.id], "model": "local:/etc", "mode": "exact",
                            "storage_dtype": "float32"}, created_at=utcnow())
    with mc.kernel.store.transaction():
        mc.kernel.store.insert_job(job)
    before = _loaded_specs()
    [ran] = mc.run_jobs()
    assert ran.state is JobState.FAILED and ran.error is not None
    assert ran.error["code"] == "validation_error" and ran.error["details"]["allowed"] == ["local"]
    assert "/etc" not in ran.error["message"]
    assert _loaded_specs() == before


def test_an_api_model_cannot_cache(open_mc: OpenMc, db_path: Path) -> None:
    settings = Settings(models={"local": "local", "gpt": "openai:gpt-4o-mini"}, model_base_url="http://127.0.0.1:9")
    mc = open_mc(db_path, embedder="none", settings=settings)
    cube = mc.add("the ferry leaves at nine")
    with pytest.raises(ConfigurationError):
        mc.submit_job("cache", cube_ids=[cube.id], model="gpt")
    with pytest.raises(ValidationError):
        mc.cache([cube.id], model="local:/etc")
    assert mc.jobs() == []


def test_models_load_once_per_process_and_are_shared(open_mc: OpenMc, tmp_path: Path,
                                                     lm: LocalTransformersLM) -> None:
    first = open_mc(tmp_path / "a.db", embedder="none")
    second = open_mc(tmp_path / "b.db", embedder="none")
    assert first.kernel.models.open("local") is second.kernel.models.get() is lm
    assert first.kernel.models.loaded() == ["local"]
