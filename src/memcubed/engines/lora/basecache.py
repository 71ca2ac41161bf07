"""The base model's own answers to the constant probe sets, remembered per model fingerprint, in the process
and on disk.

Every consolidation asks the base model the default control questions (``CONTROL``: the drift the gate
measures) and rehearsal prompts (``REHEARSAL``: trained with its own answers). Their answers depend only on the
model, so they are computed once per model: kept process-wide (any probe of kind ``control``), and, for the
default sets only, in one file per model fingerprint, so a freshly started worker process does not ask
them again. Nothing a caller wrote reaches that file: an entry whose question or prompt is not in the
default sets is never written, and one read back is refused.

The file (``<folder>/base-<key>.json``) is keyed by everything that changes the answers: the model's
fingerprint, its end-of-sequence ids and the ids of a fixed probe in its chat template (so a changed
tokenizer, template or template encoding never reuses old answers). It records what it was computed with
(format, that identity, torch and transformers versions) and a sha256 of its body. One that does not
parse, is truncated, was made for another model or library version, fails its digest, or holds an entry
that is malformed, foreign, or whose hit disagrees with its output, is ignored as a whole: its answers are
computed again and the file is rewritten (atomically, by rename).

It is a file another local user could try to plant, so it is also ignored whole when it or its folder is
not this user's own or is writable by others, when it is a link or over ``MAX_FILE_BYTES``, when it holds
more entries than the probe sets can give (``VARIANTS`` slack or length settings of each), or an answer
longer than its generation limit allows. It is written 0600 in a folder made 0700 (``privatefile``); a
folder that is not private is not written to.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from memcubed.backends.models.local import LocalTransformersLM
from memcubed.backends.models.packaged import cache_root
from memcubed.backends.privatefile import private, read_private, write_private
from memcubed.engines.lora.control import CONTROL, REHEARSAL
from memcubed.engines.lora.evaluate import ProbeResult
from memcubed.engines.lora.pairs import Example, recalled

__all__ = ["FORMAT", "MAX_FILE_BYTES", "PROBE", "VARIANTS", "BaseAnswers", "cache_folder", "clear_memory"]

FORMAT = 2
"""The file layout's version: a file of another format is ignored (2: keyed by eos ids and template too)."""
MAX_FILE_BYTES = 1 << 20
"""A longer file is ignored unread (every default answer at ``VARIANTS`` settings fits in about 100 KiB)."""
VARIANTS = 4
"""Answer slack and rehearsal length settings a file keeps answers for (the most recently used ones)."""
PROBE = "Probe: which words does the chat template put around this message?"
"""The fixed message whose chat-template ids are part of the key."""
_MAX_TOKENS = 256
"""The most answer slack or rehearsal tokens ``LoRAConfig`` allows."""

_MEMORY_SIZE = 1024
ResultKey = tuple[str, str, str, str, bool, int]
"""(key, question, answer, reference, chat, answer slack tokens)."""
RehearsalKey = tuple[str, str, int]
"""(key, prompt, answer tokens)."""
_RESULTS: OrderedDict[ResultKey, ProbeResult] = OrderedDict()
"""Base-model results of control probes, least recently used first (bounded by ``_MEMORY_SIZE``)."""
_REHEARSAL: dict[RehearsalKey, str] = {}
"""The base model's answers to ``REHEARSAL`` prompts: a constant set."""
_READ: set[tuple[str, str]] = set()
"""(folder, key) pairs whose file this process has read already."""
_LOCK = threading.RLock()
"""Guards the dicts above: job worker threads of one process share them."""
_CONTROL = frozenset(CONTROL)
_PROMPTS = frozenset(REHEARSAL)


def cache_folder() -> Path:
    """The default folder of the files: ``<memcubed cache>/lora`` (``$MEMCUBED_CACHE_DIR`` or ``~/.cache/memcubed``)."""
    return cache_root() / "lora"


def clear_memory() -> None:
    """Forget every answer this process remembers (the files stay; they are read again when next needed)."""
    with _LOCK:
        _RESULTS.clear()
        _REHEARSAL.clear()
        _READ.clear()


def _default_control(probe: Example) -> bool:
    return (probe.kind == "control" and probe.chat and not probe.reference and not probe.fact_id
            and (probe.prompt, probe.answer) in _CONTROL)


class BaseAnswers:
    """The remembered base-model answers of one model.

    Args:
        fingerprint: the model's fingerprint (``LocalTransformersLM.fingerprint``).
        folder: where its file lives (default ``cache_folder()``); it is read when first needed.
        eos: the end-of-sequence ids generation stops at.
        probe: the ids of ``PROBE`` as a user turn of the chat template.
        token_chars: the most characters one token decodes to (bounds the length of an answer read back).
    """

    def __init__(self, fingerprint: str, folder: Path | None = None, *, eos: Iterable[int] = (),
                 probe: Sequence[int] = (), token_chars: int = 64) -> None:
        self.fingerprint = fingerprint
        self.folder = cache_folder() if folder is None else folder
        self.token_chars = token_chars
        self._model = {"fingerprint": fingerprint, "eos": sorted(set(eos)),
                       "probe": hashlib.sha256(json.dumps(list(probe)).encode()).hexdigest()}
        self.key = _digest(self._model)
        """What the answers depend on, hashed: names the file and keys the process's memory."""

    @classmethod
    def of(cls, lm: LocalTransformersLM, folder: Path | None = None, *, eos: Iterable[int] = ()) -> BaseAnswers:
        """The answers of ``lm`` (its fingerprint, ``eos`` and its own end ids, its template's render of ``PROBE``)."""
        token_chars = max(map(len, lm.tokenizer.get_vocab()), default=64)  # a token decodes to no more characters
        return cls(lm.fingerprint, folder, eos=[*lm.eos_token_ids, *eos],
                   probe=lm.chat_ids([{"role": "user", "content": PROBE}]), token_chars=token_chars)

    @property
    def path(self) -> Path:
        """The file."""
        return self.folder / f"base-{self.key}.json"

    # -- control probes ---------------------------------------------------
    def result(self, probe: Example, slack: int) -> ProbeResult | None:
        """The base model's remembered result of a control probe, or None."""
        with _LOCK:
            self._read()
            key = self._key(probe, slack)
            found = _RESULTS.get(key)
            if found is not None:
                _RESULTS.move_to_end(key)
            return found

    def keep_results(self, results: list[ProbeResult], slack: int) -> None:
        """Remember the base model's results of control probes (others are ignored); the default ones go to disk."""
        with _LOCK:
            fresh = False
            for result in results:
                if result.probe.kind != "control":
                    continue
                key = self._key(result.probe, slack)
                fresh = fresh or (key not in _RESULTS and _default_control(result.probe))
                _RESULTS[key] = result
                _RESULTS.move_to_end(key)
            while len(_RESULTS) > _MEMORY_SIZE:
                _RESULTS.popitem(last=False)
            if fresh:
                self._write()

    # -- rehearsal answers -----------------------------------------------
    def rehearsal(self, prompt: str, tokens: int) -> str | None:
        """The base model's remembered answer of ``tokens`` tokens to a rehearsal prompt, or None."""
        with _LOCK:
            self._read()
            return _REHEARSAL.get((self.key, prompt, tokens))

    def keep_rehearsal(self, answers: dict[str, str], tokens: int) -> None:
        """Remember the base model's answers to rehearsal prompts (``REHEARSAL`` ones only)."""
        kept = {p: a for p, a in answers.items() if p in _PROMPTS}
        with _LOCK:
            for prompt, answer in kept.items():
                _REHEARSAL[(self.key, prompt, tokens)] = answer
            if kept:
                self._write()

    # -- the file ---------------------------------------------------------
    def _key(self, probe: Example, slack: int) -> ResultKey:
        return (self.key, probe.prompt, probe.answer, probe.reference, probe.chat, slack)

    def _identity(self) -> dict[str, Any]:
        import torch
        import transformers

        return {"format": FORMAT, **self._model, "torch": torch.__version__, "transformers": transformers.__version__}

    def _read(self) -> None:
        """Take in this model's file, once per process and folder (the caller holds ``_LOCK``)."""
        path = self.path
        if (str(self.folder), self.key) in _READ:
            return
        _READ.add((str(self.folder), self.key))
        parsed = _parse(read_private(path, limit=MAX_FILE_BYTES), self._identity(), self.token_chars)
        if parsed is None:
            return
        control, rehearsal = parsed
        for (question, answer, slack), (hit, loss, output) in control.items():
            probe = Example("", "control", question, answer, chat=True)
            _RESULTS.setdefault(self._key(probe, slack), ProbeResult(probe=probe, hit=hit, loss=loss, output=output))
        for (prompt, tokens), answer in rehearsal.items():
            _REHEARSAL.setdefault((self.key, prompt, tokens), answer)

    def _write(self) -> None:
        """Write every remembered default-set answer of this model to its file (the caller holds ``_LOCK``)."""
        results = [(k, r) for k, r in _RESULTS.items()
                   if k[0] == self.key and _default_control(r.probe) and math.isfinite(r.loss)]
        slacks = _latest(k[5] for k, _ in results)
        control = sorted([question, answer, slack, result.hit, result.loss, result.output]
                         for (_, question, answer, _, _, slack), result in results if slack in slacks)
        answers = [(k, a) for k, a in _REHEARSAL.items() if k[0] == self.key and k[1] in _PROMPTS]
        lengths = _latest(k[2] for k, _ in answers)
        rehearsal = sorted([prompt, tokens, answer] for (_, prompt, tokens), answer in answers if tokens in lengths)
        body = {"identity": self._identity(), "control": control, "rehearsal": rehearsal}
        text = json.dumps({**body, "sha256": _digest(body)}, sort_keys=True, separators=(",", ":"))
        try:
            if self.folder.exists() and not private(os.stat(self.folder)):
                return  # another user could rewrite it there; it would not be read back anyway
            write_private(self.path, text.encode("utf-8"))
        except OSError:
            return  # a cache that cannot be written is only a cache: the answers stay in the process


def _latest(settings: Iterable[int]) -> set[int]:
    """The ``VARIANTS`` settings used last, of ``settings`` in order of use (least recent first)."""
    return set(list(dict.fromkeys(reversed(list(settings))))[:VARIANTS])


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


Parsed = tuple[dict[tuple[str, str, int], tuple[bool, float, str]], dict[tuple[str, int], str]]


def _parse(data: bytes | None, identity: dict[str, Any], token_chars: int) -> Parsed | None:
    """The file's entries, or None when it is missing or cannot be trusted whole (see the module's docstring)."""
    if data is None:
        return None
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict) or set(raw) != {"identity", "control", "rehearsal", "sha256"}:
        return None
    body = {k: raw[k] for k in ("identity", "control", "rehearsal")}
    if raw["identity"] != identity or raw["sha256"] != _digest(body) or not isinstance(raw["control"], list) \
            or not isinstance(raw["rehearsal"], list) or len(raw["control"]) > VARIANTS * len(_CONTROL) \
            or len(raw["rehearsal"]) > VARIANTS * len(_PROMPTS):
        return None
    control: dict[tuple[str, str, int], tuple[bool, float, str]] = {}
    rehearsal: dict[tuple[str, int], str] = {}
    try:
        for question, answer, slack, hit, loss, output in raw["control"]:
            if (question, answer) not in _CONTROL or type(slack) is not int or not 0 <= slack <= _MAX_TOKENS \
                    or type(hit) is not bool or type(loss) not in (int, float) or not math.isfinite(loss) \
                    or not isinstance(output, str) or hit != recalled(answer, output) \
                    or len(output) > (len(answer.encode("utf-8")) + slack) * token_chars:  # a token per byte at most
                return None
            control[(question, answer, slack)] = (hit, float(loss), output)
        for prompt, tokens, answer in raw["rehearsal"]:
            if prompt not in _PROMPTS or type(tokens) is not int or not 1 <= tokens <= _MAX_TOKENS \
                    or not isinstance(answer, str) or len(answer) > tokens * token_chars:
                return None
            rehearsal[(prompt, tokens)] = answer
    except (TypeError, ValueError):  # not a list, or an entry of the wrong length
        return None
    return control, rehearsal
