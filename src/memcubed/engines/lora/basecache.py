"""The base model's own answers to the constant probe sets, remembered per model fingerprint, in the process
and on disk.

Every consolidation asks the base model the default control questions (``CONTROL``: the drift the gate
measures) and rehearsal prompts (``REHEARSAL``: trained with its own answers). Their answers depend only on the
model, so they are computed once per model: kept process-wide (any probe of kind ``control``), and, for the
default sets only, in one file per model fingerprint, so a freshly started worker process does not ask
them again. Nothing a caller wrote reaches that file: an entry whose question or prompt is not in the
default sets is never written, and one read back is refused.

The file (``<folder>/base-<fingerprint>.json``) records what it was computed with (format, fingerprint,
torch and transformers versions) and a sha256 of its body. One that does not parse, is truncated, was
made for another model or library version, fails its digest, or holds an entry that is malformed,
foreign, or whose hit disagrees with its output, is ignored as a whole: its answers are computed again
and the file is rewritten (atomically, by rename).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from memcubed.backends.models.packaged import cache_root
from memcubed.engines.lora.control import CONTROL, REHEARSAL
from memcubed.engines.lora.evaluate import ProbeResult
from memcubed.engines.lora.pairs import Example, recalled

__all__ = ["FORMAT", "BaseAnswers", "cache_folder", "clear_memory"]

FORMAT = 1
"""The file layout's version: a file of another format is ignored."""

_MEMORY_SIZE = 1024
ResultKey = tuple[str, str, str, str, bool, int]
"""(fingerprint, question, answer, reference, chat, answer slack tokens)."""
RehearsalKey = tuple[str, str, int]
"""(fingerprint, prompt, answer tokens)."""
_RESULTS: OrderedDict[ResultKey, ProbeResult] = OrderedDict()
"""Base-model results of control probes, least recently used first (bounded by ``_MEMORY_SIZE``)."""
_REHEARSAL: dict[RehearsalKey, str] = {}
"""The base model's answers to ``REHEARSAL`` prompts: a constant set."""
_READ: set[tuple[str, str]] = set()
"""(folder, fingerprint) pairs whose file this process has read already."""
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
    """

    def __init__(self, fingerprint: str, folder: Path | None = None) -> None:
        self.fingerprint = fingerprint
        self.folder = cache_folder() if folder is None else folder

    @property
    def path(self) -> Path:
        """The file."""
        return self.folder / f"base-{self.fingerprint}.json"

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
            return _REHEARSAL.get((self.fingerprint, prompt, tokens))

    def keep_rehearsal(self, answers: dict[str, str], tokens: int) -> None:
        """Remember the base model's answers to rehearsal prompts (``REHEARSAL`` ones only)."""
        kept = {p: a for p, a in answers.items() if p in _PROMPTS}
        with _LOCK:
            for prompt, answer in kept.items():
                _REHEARSAL[(self.fingerprint, prompt, tokens)] = answer
            if kept:
                self._write()

    # -- the file ---------------------------------------------------------
    def _key(self, probe: Example, slack: int) -> ResultKey:
        return (self.fingerprint, probe.prompt, probe.answer, probe.reference, probe.chat, slack)

    def _identity(self) -> dict[str, Any]:
        import torch
        import transformers

        return {"format": FORMAT, "fingerprint": self.fingerprint, "torch": torch.__version__,
                "transformers": transformers.__version__}

    def _read(self) -> None:
        """Take in this model's file, once per process and folder (the caller holds ``_LOCK``)."""
        path = self.path
        if (str(self.folder), self.fingerprint) in _READ:
            return
        _READ.add((str(self.folder), self.fingerprint))
        parsed = _parse(path, self._identity())
        if parsed is None:
            return
        control, rehearsal = parsed
        for (question, answer, slack), (hit, loss, output) in control.items():
            probe = Example("", "control", question, answer, chat=True)
            _RESULTS.setdefault(self._key(probe, slack), ProbeResult(probe=probe, hit=hit, loss=loss, output=output))
        for (prompt, tokens), answer in rehearsal.items():
            _REHEARSAL.setdefault((self.fingerprint, prompt, tokens), answer)

    def _write(self) -> None:
        """Write every remembered default-set answer of this model to its file (the caller holds ``_LOCK``)."""
        path = self.path
        control = sorted([question, answer, slack, result.hit, result.loss, result.output]
                         for (fp, question, answer, _, _, slack), result in _RESULTS.items()
                         if fp == self.fingerprint and _default_control(result.probe) and math.isfinite(result.loss))
        rehearsal = sorted([prompt, tokens, answer] for (fp, prompt, tokens), answer in _REHEARSAL.items()
                           if fp == self.fingerprint and prompt in _PROMPTS)
        body = {"identity": self._identity(), "control": control, "rehearsal": rehearsal}
        text = json.dumps({**body, "sha256": _digest(body)}, sort_keys=True, separators=(",", ":"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".base-", suffix=".tmp", dir=path.parent)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        except OSError:
            return  # a cache that cannot be written is only a cache: the answers stay in the process


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


Parsed = tuple[dict[tuple[str, str, int], tuple[bool, float, str]], dict[tuple[str, int], str]]


def _parse(path: Path, identity: dict[str, Any]) -> Parsed | None:
    """The file's entries, or None when it is missing or cannot be trusted whole (see the module's docstring)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict) or set(raw) != {"identity", "control", "rehearsal", "sha256"}:
        return None
    body = {k: raw[k] for k in ("identity", "control", "rehearsal")}
    if raw["identity"] != identity or raw["sha256"] != _digest(body):
        return None
    control: dict[tuple[str, str, int], tuple[bool, float, str]] = {}
    rehearsal: dict[tuple[str, int], str] = {}
    try:
        for question, answer, slack, hit, loss, output in raw["control"]:
            if (question, answer) not in _CONTROL or type(slack) is not int or slack < 0 or type(hit) is not bool \
                    or type(loss) not in (int, float) or not math.isfinite(loss) or not isinstance(output, str) \
                    or hit != recalled(answer, output):
                return None
            control[(question, answer, slack)] = (hit, float(loss), output)
        for prompt, tokens, answer in raw["rehearsal"]:
            if prompt not in _PROMPTS or type(tokens) is not int or tokens < 1 or not isinstance(answer, str):
                return None
            rehearsal[(prompt, tokens)] = answer
    except (TypeError, ValueError):  # not a list, or an entry of the wrong length
        return None
    return control, rehearsal
