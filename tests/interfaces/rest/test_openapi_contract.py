"""Schemathesis over the whole OpenAPI of a real server: no 5xx, responses match their documented schemas.

Driven through schemathesis' Python API with one bounded Hypothesis run per operation (its lazy pytest
fixture loader does not work with this pytest), against the session's real ``memcubed serve`` process.
"""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from memcubed.testing.server import RunningServer

EXAMPLES = 12
NOT_FUZZED = {"POST /chat", "POST /generate", "POST /generate/adapters", "POST /jobs", "POST /bundles/import",
              "POST /plans/propose", "POST /working-set"}
"""Operations that run a language model inside the request (random bodies ask for up to 4096 new tokens,
minutes each on a CPU; a plan proposal up to planner_max_new_tokens; setting a working set loads the model to
count and compile its tokens), and the generic job submission, whose ``params`` schema depends on ``kind``
(each kind is fuzzed through its own route, /cache and /consolidate). They are tested in
test_rest_operations.py, test_rest_plan.py and test_workset_interfaces.py. The bundle upload's body is a zip
file whose validity no schema can state (any bytes are "schema-valid"): its hostile bodies are tested in
tests/interfaces/rest/test_rest_bundle.py."""


def test_every_operation_honours_its_contract(server: RunningServer) -> None:
    # Fetched here with a generous timeout: schemathesis' own loader gives up after 10 s, which a busy shared
    # machine can exceed while the server builds its schema.
    schema = schemathesis.openapi.from_dict(httpx.get(f"{server.url}/openapi.json", timeout=120).json())
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in NOT_FUZZED:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=headers, timeout=120)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
        checked += 1
    assert checked >= 20
    assert not failures, "\n\n".join(failures)
