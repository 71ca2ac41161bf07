"""The base model's answers to the default control and rehearsal sets are kept on disk per model fingerprint, on the
real packaged SmolLM2: a fresh process (its memory forgotten) reads them instead of asking the model again; a
corrupted, truncated, tampered or foreign file is ignored and rebuilt; nothing a caller wrote reaches the file."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from memcubed.backends.models import LocalTransformersLM
from memcubed.engines.lora import LoRAConfig, LoRAEngine, basecache, control_probes
from memcubed.engines.lora.basecache import BaseAnswers, _digest
from memcubed.engines.lora.control import REHEARSAL
from memcubed.errors import Cancelled

CONFIG = LoRAConfig(rehearsal=2, rehearsal_min=0, rehearsal_tokens=6, answer_slack_tokens=4, eval_batch_size=8)
CONTROL = control_probes()[:3]
CANARY = "canary-7Qx2 the vault code is 5531"


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    basecache.clear_memory()
    yield
    basecache.clear_memory()


def _fresh_process_evaluates(engine: LoRAEngine) -> list[tuple[bool, str, float]]:
    """Evaluate the control probes as a newly started process would: (hit, output, loss) of each."""
    basecache.clear_memory()
    return [(r.hit, r.output, r.loss) for r in engine.evaluate(CONTROL).results]


def _known_without_the_model(engine: LoRAEngine) -> bool:
    """Whether a newly started process has every control result without generating: an evaluation that would
    generate anything is cancelled before its first batch."""
    basecache.clear_memory()
    try:
        engine.evaluate(CONTROL, should_cancel=lambda: True)
    except Cancelled:
        return False
    return True


def test_a_fresh_process_reads_the_answers_instead_of_asking_the_model(lm: LocalTransformersLM,
                                                                       tmp_path: Path) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path)
    assert not _known_without_the_model(engine)
    computed = _fresh_process_evaluates(engine)
    assert engine.base.path.is_file()
    assert _known_without_the_model(engine)
    assert _fresh_process_evaluates(engine) == computed
    first = engine.rehearsal(2)
    basecache.clear_memory()
    assert engine.rehearsal(2) == first
    saved = json.loads(engine.base.path.read_text(encoding="utf-8"))
    assert sorted(p for p, _, _ in saved["rehearsal"]) == sorted(REHEARSAL[:2])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "digest", "hit", "foreign", "library"])
def test_a_damaged_or_foreign_file_is_ignored_and_rebuilt(lm: LocalTransformersLM, tmp_path: Path,
                                                          damage: str) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path)
    computed = _fresh_process_evaluates(engine)
    path = engine.base.path
    good = path.read_text(encoding="utf-8")
    raw = json.loads(good)
    body = {k: raw[k] for k in ("identity", "control", "rehearsal")}
    if damage == "garbage":
        path.write_bytes(b"\x00\xff not json")
    elif damage == "truncated":
        path.write_text(good[: len(good) // 2], encoding="utf-8")
    elif damage == "empty":
        path.write_text("", encoding="utf-8")
    elif damage == "digest":  # a wrong answer, the digest left as it was: a flipped bit
        raw["control"][0][5] = "Paris Paris Paris"
        path.write_text(json.dumps(raw), encoding="utf-8")
    elif damage == "hit":  # a hit that its own output does not show, digest recomputed
        body["control"][0][3] = not body["control"][0][3]
        path.write_text(json.dumps({**body, "sha256": _digest(body)}), encoding="utf-8")
    elif damage == "foreign":  # made for the same entries by another model
        body["identity"]["fingerprint"] = "0" * 64
        path.write_text(json.dumps({**body, "sha256": _digest(body)}), encoding="utf-8")
    else:  # another torch version
        body["identity"]["torch"] = "0.0.1"
        path.write_text(json.dumps({**body, "sha256": _digest(body)}), encoding="utf-8")
    assert not _known_without_the_model(engine)  # not taken from the file
    again = _fresh_process_evaluates(engine)
    assert [(h, o) for h, o, _ in again] == [(h, o) for h, o, _ in computed]
    assert max(abs(a[2] - b[2]) for a, b in zip(again, computed, strict=True)) < 1e-5
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(good)  # rebuilt whole


def test_another_models_file_is_not_used_under_its_name(lm: LocalTransformersLM, tmp_path: Path) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path)
    _fresh_process_evaluates(engine)
    other = BaseAnswers("f" * 64, tmp_path)
    shutil.copy(engine.base.path, other.path)  # this model's file, renamed as another model's
    basecache.clear_memory()
    assert other.result(CONTROL[0], CONFIG.answer_slack_tokens) is None
    assert other.rehearsal(REHEARSAL[0], CONFIG.rehearsal_tokens) is None
    assert engine.base.result(CONTROL[0], CONFIG.answer_slack_tokens) is not None
    assert engine.base.result(CONTROL[0], CONFIG.answer_slack_tokens + 1) is None  # another slack: not the same


def test_nothing_a_caller_wrote_reaches_the_file(lm: LocalTransformersLM, tmp_path: Path) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path)
    own = [replace(CONTROL[0], prompt=f"{CANARY}. What is the capital of France?"),  # a caller's control question
           replace(CONTROL[1], answer=CANARY)]  # a default question with a caller's answer
    engine.evaluate([*own, CONTROL[2]])
    engine.base.keep_rehearsal({f"Repeat: {CANARY}": CANARY}, CONFIG.rehearsal_tokens)
    text = engine.base.path.read_text(encoding="utf-8")
    assert "canary-7Qx2" not in text and "5531" not in text
    saved = json.loads(text)
    assert [row[0] for row in saved["control"]] == [CONTROL[2].prompt] and saved["rehearsal"] == []
    # A file that holds a question outside the default set is refused whole, even with a good digest.
    body = {k: saved[k] for k in ("identity", "control", "rehearsal")}
    body["control"].append([f"{CANARY}?", "5531", CONFIG.answer_slack_tokens, True, 0.5, "5531 yes"])
    engine.base.path.write_text(json.dumps({**body, "sha256": _digest(body)}), encoding="utf-8")
    basecache.clear_memory()
    assert engine.base.result(CONTROL[2], CONFIG.answer_slack_tokens) is None


def test_a_cache_folder_that_cannot_be_written_only_costs_the_answers(lm: LocalTransformersLM,
                                                                      tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder", encoding="utf-8")
    engine = LoRAEngine(lm, CONFIG, cache_dir=blocked / "lora")
    first = engine.evaluate(CONTROL).results
    assert engine.evaluate(CONTROL).results == first  # still remembered in the process
    assert not (blocked / "lora").exists()


def test_the_file_is_private_in_a_private_folder(lm: LocalTransformersLM, tmp_path: Path) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path / "lora")
    _fresh_process_evaluates(engine)
    assert stat.S_IMODE(engine.base.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(engine.base.path.parent.stat().st_mode) == 0o700


def _planted(path: Path, plant: str) -> None:
    """Make the good file at ``path`` into one another local user could have planted or edited."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    body = {k: raw[k] for k in ("identity", "control", "rehearsal")}

    def rewrite() -> None:
        path.write_text(json.dumps({**body, "sha256": _digest(body)}), encoding="utf-8")

    if plant == "group-writable":
        path.chmod(0o660)
    elif plant == "other-owned":
        os.chown(path, 65534, 65534)
    elif plant == "link":
        elsewhere = path.with_name("elsewhere.json")
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
    elif plant == "oversized":  # good JSON, good digest, padded past the limit
        path.write_text(json.dumps(raw) + " " * basecache.MAX_FILE_BYTES, encoding="utf-8")
    elif plant == "long answer":  # an output far longer than answer + slack tokens can decode to
        answer = body["control"][0][1]
        body["control"][0][5] = f"{answer} " + "x" * 100_000
        body["control"][0][3] = True
        rewrite()
    elif plant == "long rehearsal":
        body["rehearsal"][0][2] = "y" * 100_000
        rewrite()
    elif plant == "huge slack":  # one more entry, at a slack no configuration allows
        body["control"].append([*body["control"][0][:2], 10**9, *body["control"][0][3:]])
        rewrite()
    elif plant == "too many entries":  # every rehearsal prompt at more lengths than a file keeps
        body["rehearsal"] = [[p, n, "fine"] for p in REHEARSAL for n in range(1, basecache.VARIANTS + 2)]
        rewrite()
    else:
        raise AssertionError(plant)


PLANTS = ["group-writable", "link", "oversized", "long answer", "long rehearsal", "huge slack", "too many entries",
          *(["other-owned"] if os.geteuid() == 0 else [])]  # only root can give a file away


@pytest.mark.parametrize("plant", PLANTS)
def test_a_planted_file_is_ignored_and_recomputed(lm: LocalTransformersLM, tmp_path: Path, plant: str) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path / "lora")
    computed = _fresh_process_evaluates(engine)
    engine.rehearsal(2)
    good = json.loads(engine.base.path.read_text(encoding="utf-8"))
    _planted(engine.base.path, plant)
    basecache.clear_memory()
    assert engine.base.rehearsal(REHEARSAL[0], CONFIG.rehearsal_tokens) is None  # nothing taken from it
    assert not _known_without_the_model(engine)
    again = _fresh_process_evaluates(engine)
    assert [(h, o) for h, o, _ in again] == [(h, o) for h, o, _ in computed]
    path = engine.base.path
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_uid == os.geteuid()
    assert {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if k != "sha256"} == \
        {**{k: v for k, v in good.items() if k != "sha256"}, "rehearsal": []}  # rewritten from what was recomputed


# Only root can give a folder away, so "other-owned" runs where the suite runs as root (CI here does).
@pytest.mark.parametrize("loosen", ["group-writable", *(["other-owned"] if os.geteuid() == 0 else [])])
def test_a_folder_others_can_write_is_neither_read_nor_written(lm: LocalTransformersLM, tmp_path: Path,
                                                                loosen: str) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path / "lora")
    computed = _fresh_process_evaluates(engine)
    before = engine.base.path.read_bytes()
    folder = engine.base.path.parent
    folder.chmod(0o770) if loosen == "group-writable" else os.chown(folder, 65534, 65534)
    assert not _known_without_the_model(engine)
    assert _fresh_process_evaluates(engine) == computed
    assert engine.base.path.read_bytes() == before  # not rewritten there either


def test_a_changed_template_or_end_token_never_reuses_old_answers(lm: LocalTransformersLM, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LoRAEngine(lm, CONFIG, cache_dir=tmp_path)
    _fresh_process_evaluates(engine)
    assert BaseAnswers.of(lm, tmp_path, eos=[engine._eos]).key == engine.base.key  # the same model: the same key
    eos = BaseAnswers.of(lm, tmp_path, eos=[engine._eos, 7])
    monkeypatch.setattr(lm.tokenizer, "chat_template", lm.tokenizer.chat_template.replace("SmolLM", "Molly"))
    template = BaseAnswers.of(lm, tmp_path, eos=[engine._eos])
    assert template.fingerprint == engine.base.fingerprint  # the fingerprint alone would not have seen it
    for other in (eos, template):
        assert other.key != engine.base.key
        shutil.copy(engine.base.path, other.path)  # the old answers, under the new name
        basecache.clear_memory()
        assert other.result(CONTROL[0], CONFIG.answer_slack_tokens) is None
