"""The gate refuses an adapter for control drift on the real packaged model and a real SQLite file: a training with
no rehearsal at a high learning rate recalls its facts but rewrites how the model answers other questions; training
never stops early on such a check, the evaluation after it is the full one, and the cube is stored inactive."""

from __future__ import annotations

from pathlib import Path

import pytest

import memcubed
from memcubed import CubeState
from memcubed.backends.models import LocalTransformersLM
from memcubed.errors import AdapterInactive

DRIFTING = {"rank": 16, "alpha": 32, "statement_splits": [], "batch_size": 4, "rehearsal": 0, "rehearsal_min": 0,
            "learning_rate": 2e-2, "epochs": 4, "early_stop_min_epochs": 1, "answer_slack_tokens": 12}
CONTROL = [("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo"),
           ("Which planet is known as the Red Planet?", "Mars"), ("Who wrote Romeo and Juliet?", "Shakespeare")]
FACTS = [
    ("Velspar the potter lives in Cusco.", "Where does Velspar the potter live?", "Cusco"),
    ("Kestrin the poet owns a goat called Pepper.", "What is the name of Kestrin the poet's goat?", "Pepper"),
]


def test_an_adapter_that_loses_control_answers_is_stored_inactive(tmp_path: Path, lm: LocalTransformersLM) -> None:
    with memcubed.open(tmp_path / "memories.db", embedder="none") as mc:
        ids = [mc.add(text, meta={"qa": [{"question": q, "answer": a}]}).id for text, q, a in FACTS]
        cube = mc.consolidate(ids, lm=lm, config=DRIFTING, control=CONTROL)
        verdict, evaluation = cube.meta["gate"], cube.meta["evaluation"]
        assert evaluation["control"]["before"]["hits"] >= 3  # the base model answers the control set
        assert cube.state is CubeState.INACTIVE and verdict["passed"] is False, verdict
        assert verdict["drift_points_lost"] > verdict["drift_max"] == 10.0
        assert any("control drift" in reason for reason in verdict["reasons"])
        # Every check ran on drifted weights: none may have stopped training, whatever its recall.
        assert cube.meta["stopped_early"] is False and cube.meta["epochs_run"] == DRIFTING["epochs"]
        assert len(cube.meta["recall_checks"]) == DRIFTING["epochs"] - 1
        assert cube.meta["after_from_stop_check"] is False  # evaluated again, on the stored adapter
        (record,) = mc.audit(cube_id=cube.id)
        assert record.details["gate"]["outcome"] == "gated"
        with pytest.raises(AdapterInactive):
            mc.generate_with_adapters(FACTS[0][1], [cube.id], lm=lm, max_new_tokens=8)
