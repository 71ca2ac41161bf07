"""The consolidation gate on the real packaged model and real SQLite files: an adapter that passes is served;
one that fails (a real training that does not recall its facts) is stored inactive with its evaluation,
refused on every path, and its evaluation stays the owner's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import memcubed
from memcubed import CubeKind, CubeState
from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import recalled
from memcubed.interfaces.rest import create_app

BASE = {"rank": 16, "alpha": 32, "statement_splits": [], "batch_size": 4, "rehearsal": 0,
        "answer_slack_tokens": 12}
PASSING = {**BASE, "epochs": 5, "learning_rate": 3e-3, "recall_min": 1.0, "drift_max": 50.0}
FAILING = {**BASE, "epochs": 1, "learning_rate": 1e-5}  # a real, too-weak training: the default gate refuses it
CONTROL = [("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo")]
FACTS = [
    ("Velspar the potter lives in Cusco.", "Where does Velspar the potter live?", "Cusco"),
    ("Kestrin the poet owns a goat called Pepper.", "What is the name of Kestrin the poet's goat?", "Pepper"),
]


class Gated:
    """One store: alice's facts, a passing adapter and a failing one trained on them."""

    def __init__(self, mc: memcubed.Memcubed, lm: LocalTransformersLM) -> None:
        self.mc, self.lm = mc, lm
        mc.create_principal("bob")
        self.alice = mc.as_principal(mc.create_principal("alice").name)
        self.bob = mc.as_principal("bob")
        self.facts = [self.alice.add(text, meta={"qa": [{"question": q, "answer": a}]}) for text, q, a in FACTS]
        ids = [f.id for f in self.facts]
        self.passing = self.alice.consolidate(ids, lm=lm, config=PASSING, control=CONTROL)
        self.failing = self.alice.consolidate(ids, lm=lm, config=FAILING, control=CONTROL)


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, lm: LocalTransformersLM) -> Iterator[Gated]:
    with memcubed.open(tmp_path_factory.mktemp("gate") / "memories.db", embedder="none") as mc:
        yield Gated(mc, lm)


def test_a_passing_adapter_is_served_and_audited_as_passed(gated: Gated) -> None:
    cube = gated.passing
    assert cube.state is CubeState.ACTIVE and cube.meta["gate"]["passed"] is True, cube.meta["gate"]
    assert cube.meta["gate"]["recall"] == 1.0 and cube.meta["gate"]["reasons"] == []
    # Trained to the criterion: a stop comes only at a check that recalled every probe with the control set in
    # bound (an earlier check may have recalled everything and lost control answers: training went on).
    checks, epochs = cube.meta["recall_checks"], cube.meta["epochs_run"]
    assert 1 <= epochs <= cube.meta["epochs"] and cube.meta["stopped_early"] == (epochs < cube.meta["epochs"])
    assert not cube.meta["stopped_early"] or checks[-1] == 1.0
    (record,) = gated.alice.audit(cube_id=cube.id)
    assert record.op == "consolidate" and record.details["gate"]["outcome"] == "passed"
    assert record.details["gate"]["recall"] == 1.0 and record.details["gate"]["drift_max"] == 50.0
    answer = gated.alice.generate_with_adapters(FACTS[1][1], [cube.id], lm=gated.lm, max_new_tokens=16)
    assert recalled("Pepper", answer.text) and answer.adapters == [cube.id]


def test_a_failing_adapter_is_stored_inactive_with_its_evaluation(gated: Gated) -> None:
    cube = gated.alice.get(gated.failing.id)
    assert cube.kind is CubeKind.PARAMETER and cube.state is CubeState.INACTIVE
    assert cube.payload is not None and gated.mc.kernel.blobs.exists(cube.payload.sha256)  # kept, never served
    verdict, evaluation = cube.meta["gate"], cube.meta["evaluation"]
    assert verdict["passed"] is False and verdict["recall"] < 0.5 and verdict["recall_min"] == 0.5
    assert cube.meta["stopped_early"] is False and cube.meta["epochs_run"] == 1  # one epoch: never checked
    assert any("recall" in reason for reason in verdict["reasons"])
    assert evaluation["facts"]["after"]["probes"] == 2 and evaluation["control"]["before"]["probes"] == 2
    (record,) = gated.alice.audit(cube_id=cube.id)
    assert record.details["gate"] == {"outcome": "gated", "recall": verdict["recall"], "recall_min": 0.5,
                                      "drift_points_lost": verdict["drift_points_lost"], "drift_max": 10.0,
                                      "control_probes": 2}
    listed = {c.id for c in gated.alice.list_cubes(filters={"kinds": ["parameter"]})}
    assert gated.passing.id in listed and cube.id not in listed  # not listed as active
    inactive = gated.alice.list_cubes(filters={"kinds": ["parameter"], "states": ["inactive"]})
    assert [c.id for c in inactive] == [cube.id]


def test_an_inactive_adapter_is_refused_on_every_path(gated: Gated) -> None:
    alice, lm, failing = gated.alice, gated.lm, gated.failing.id
    with pytest.raises(memcubed.AdapterInactive) as refused:
        alice.generate_with_adapters(FACTS[0][1], [failing], lm=lm)
    assert refused.value.code == "adapter_inactive" and "recall" in str(refused.value)
    with pytest.raises(memcubed.AdapterInactive):  # beside a passing adapter: the whole request is refused
        alice.generate_with_adapters(FACTS[0][1], [gated.passing.id, failing], lm=lm)
    key = gated.mc.create_api_key("alice").key
    with TestClient(create_app(gated.mc.kernel), base_url="http://127.0.0.1") as rest:
        reply = rest.post("/generate/adapters", json={"query": FACTS[0][1], "parameter_ids": [failing]},
                          headers={"Authorization": f"Bearer {key}"})
        assert reply.status_code == 409 and reply.json()["error"]["code"] == "adapter_inactive", reply.text
        served = rest.post("/generate/adapters", json={"query": FACTS[1][1], "parameter_ids": [gated.passing.id],
                                                       "max_new_tokens": 4}, headers={"Authorization": f"Bearer {key}"})
        assert served.status_code == 200 and served.json()["adapters"] == [gated.passing.id]


def test_another_principal_cannot_see_or_use_the_evaluation(gated: Gated) -> None:
    bob, failing = gated.bob, gated.failing.id
    with pytest.raises(memcubed.NotFound):
        bob.get(failing)
    with pytest.raises(memcubed.NotFound):  # NotFound, not AdapterInactive: bob learns nothing about the cube
        bob.generate_with_adapters(FACTS[0][1], [failing], lm=gated.lm)
    with pytest.raises(memcubed.NotFound):
        bob.audit(cube_id=failing)
    assert failing not in {c.id for c in bob.list_cubes(filters={"states": ["inactive", "active"]})}
    key = gated.mc.create_api_key("bob").key
    with TestClient(create_app(gated.mc.kernel), base_url="http://127.0.0.1") as rest:
        assert rest.get(f"/cubes/{failing}", headers={"Authorization": f"Bearer {key}"}).status_code == 404


def test_undelete_and_recompile_keep_a_failing_adapter_inactive(gated: Gated) -> None:
    alice, lm = gated.alice, gated.lm
    cube = alice.consolidate([gated.facts[0].id], lm=lm, config=FAILING, control=CONTROL)
    alice.delete(cube.id)
    back = alice.undelete(cube.id)
    assert back.state is CubeState.INACTIVE  # not ``active``: an undelete must not serve it
    with pytest.raises(memcubed.AdapterInactive):
        alice.generate_with_adapters(FACTS[0][1], [cube.id], lm=lm)
    again = alice.recompile(cube.id, lm=lm, control=CONTROL)
    assert again.state is CubeState.INACTIVE and again.version > back.version
    assert alice.audit(cube_id=cube.id)[-1].details["gate"]["outcome"] == "gated"
    with pytest.raises(memcubed.AdapterInactive):
        alice.generate_with_adapters(FACTS[0][1], [cube.id], lm=lm)


def test_a_consolidate_job_reports_the_gate(gated: Gated) -> None:
    job = gated.alice.submit_job("consolidate", cube_ids=[gated.facts[1].id], config=FAILING, control=CONTROL)
    (done,) = gated.alice.run_jobs()
    assert done.id == job.id and done.state is memcubed.JobState.SUCCEEDED, done.error
    assert done.result is not None and done.result["state"] == "inactive"
    assert done.result["gate"]["outcome"] == "gated"
    assert gated.alice.get(done.result["cube_id"]).state is CubeState.INACTIVE
    with pytest.raises(memcubed.ValidationError):
        gated.alice.submit_job("consolidate", cube_ids=[gated.facts[1].id], config={**FAILING, "drift_max": -1})

