"""The REST error table: every MemcubedError class has exactly one status; only server faults are 5xx."""

from __future__ import annotations

import inspect

import pytest

import memcubed.errors as errors
from memcubed.interfaces.rest.errors import STATUS, error_response, status_of

CLASSES = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
           if cls.__module__ == errors.__name__ and issubclass(cls, errors.MemcubedError)]
SERVER_FAULTS = {errors.MemcubedError, errors.StorageError, errors.IntegrityError, errors.BackendUnavailable,
                 errors.DependencyMissing, errors.UpstreamError, errors.UpstreamTimeout}


def test_every_class_is_listed_once() -> None:
    assert set(STATUS) == set(CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_status_and_body(cls: type[errors.MemcubedError]) -> None:
    status = status_of(cls("boom", id="x"))
    assert (status >= 500) == (cls in SERVER_FAULTS)
    response = error_response(cls("boom", id="x"))
    assert response.status_code == status
    assert response.body == (f'{{"error":{{"code":"{cls.code}","message":"boom","details":{{"id":"x"}}}}}}'.encode())
    assert ("www-authenticate" in response.headers) == (cls is errors.AuthenticationFailed)
    assert ("retry-after" in response.headers) == (cls is errors.RateLimited)


@pytest.mark.parametrize(("upstream", "status"), [(400, 400), (404, 404), (429, 429), (401, 502), (403, 502),
                                                  (500, 502), (None, 502)])
def test_an_upstream_4xx_keeps_its_status(upstream: int | None, status: int) -> None:
    assert status_of(errors.UpstreamError("upstream", status=upstream)) == status
    assert status_of(errors.UpstreamTimeout("upstream", status=400)) == 504


def test_an_unlisted_subclass_takes_its_parents_status() -> None:
    class Stale(errors.Conflict):
        code = "stale_thing"

    assert status_of(Stale("x")) == 409
